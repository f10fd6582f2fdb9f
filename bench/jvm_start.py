"""What a fresh lakeforge process pays before and around its steps, with and without the
JVM class archive (lakeforge.runtime.cds, made by ``lakeforge jars warm``).

Each repetition is one fresh ``lakeforge`` process, as a user or a scheduler starts it, on
the warm-up's small pipeline (lakeforge.cli.warmup: bronze CSV, a silver MERGE with a
quarantine, a silver SCD2, a gold query; a few rows), in a project of its own per variant
(own Derby metastore), with the JVM's default JIT and GC. Three commands per variant and
repetition, in this order:

- ``first run``: a new delivery (new files every repetition: the run lands rows in every
  table), ``lakeforge run``;
- ``no-op run``: ``lakeforge run`` again, nothing new;
- ``sql``: ``lakeforge sql "SELECT 1"`` (JVM start, session, metastore; no table).

The two variants alternate which goes first. Reported: medians per command and variant,
the pairwise ratio archive / no archive, and each step's own seconds as lakeforge reports
them, so that the fixed cost (process wall time minus the steps) shows separately.

    .venv/bin/python bench/jvm_start.py            # 3 repetitions
    .venv/bin/python bench/jvm_start.py --reps 5
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lineitem as li

from lakeforge.cli.warmup import DELIVERIES, HEADER, PIPELINE
from lakeforge.runtime import cds

LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")
COMMANDS = ("first run", "no-op run", "sql")
ON, OFF = "archive", "no archive"

PROFILE = """\
spark:
  master: local[1]
  class_archive: {archive}
  conf:
    spark.sql.shuffle.partitions: 1
    spark.default.parallelism: 1
    spark.databricks.delta.snapshotPartitions: 1
    spark.ui.enabled: "false"
warehouse: lakehouse/warehouse
metastore: {{kind: derby, path: lakehouse/metastore_db}}
jar_bundles: [delta]
"""

STEP_SECONDS = re.compile(r"\((\d+(?:\.\d+)?)s\)\s*$")


def make_project(root: Path, archive: bool) -> None:
    shutil.rmtree(root, ignore_errors=True)
    (root / "conf").mkdir(parents=True)
    (root / "conf" / "local.yml").write_text(PROFILE.format(archive=str(archive).lower()))
    (root / "pipeline.yml").write_text(PIPELINE)


def timed(root: Path, *args: str) -> tuple[float, float]:
    """(process wall seconds, the steps' own seconds) of one lakeforge command."""
    env = dict(os.environ)
    env["LAKEFORGE_JARS_DIR"] = str(li.REPO / ".lakeforge" / "jars")
    t0 = time.monotonic()
    proc = subprocess.run(
        [LAKEFORGE, *args], cwd=root, env=env, capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{args} failed in {root}:\n{proc.stderr[-3000:]}")
    steps = sum(float(m.group(1)) for m in map(STEP_SECONDS.search, proc.stderr.splitlines()) if m)
    return wall, steps


def one_variant(root: Path, rep: int) -> dict[str, tuple[float, float]]:
    raw = root / "data" / "raw" / "orders"
    raw.mkdir(parents=True, exist_ok=True)
    rows = DELIVERIES[rep % len(DELIVERIES)]
    # A new file name every repetition, with its own keys shifted: rows land in every table.
    shifted = "".join(
        f"{int(line.split(',', 1)[0]) + 100 * rep},{line.split(',', 1)[1]}\n"
        for line in rows.splitlines()
    )
    (raw / f"orders_rep{rep}.csv").write_text(HEADER + shifted)
    return {
        "first run": timed(root, "run", "pipeline.yml"),
        "no-op run": timed(root, "run", "pipeline.yml"),
        "sql": timed(root, "sql", "SELECT 1"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work", type=Path, default=li.REPO / "bench" / "work" / "jvm_start")
    ap.add_argument("--results", type=Path, default=li.REPO / "bench" / "RESULTS.md")
    args = ap.parse_args(argv)
    archive = cds.archive_path()
    if not archive.is_file():
        raise SystemExit(f"no class archive at {archive}: run `lakeforge jars warm` first")
    started, load_start = li.now_utc(), li.loadavg()
    roots = {ON: args.work / "archive", OFF: args.work / "no_archive"}
    make_project(roots[ON], True)
    make_project(roots[OFF], False)
    samples: dict[str, list[dict[str, tuple[float, float]]]] = {ON: [], OFF: []}
    # One untimed round first: the page cache holds the jars and the archive for both.
    for variant in (ON, OFF):
        one_variant(roots[variant], 0)
    for rep in range(1, args.reps + 1):
        order = (ON, OFF) if rep % 2 else (OFF, ON)
        for variant in order:
            samples[variant].append(one_variant(roots[variant], rep))
            li.log(f"rep {rep} {variant}: {samples[variant][-1]}")

    def med(variant: str, command: str, index: int) -> float:
        return statistics.median(s[command][index] for s in samples[variant])

    lines = [
        f"## {started} — `.venv/bin/python bench/jvm_start.py --reps {args.reps}`",
        "",
        *(
            ["> Smoke test only (fewer than 3 repetitions): not a measurement.", ""]
            if args.reps < 3
            else []
        ),
        f"- machine: {li.cpu_model()}, {li.meminfo_total()}; load average {load_start} at "
        f"start, {li.loadavg()} at end",
        f"- archive: {archive} ({archive.stat().st_size / 1e6:.0f} MB)",
        "- one fresh `lakeforge` process per command; JVM default JIT and GC; `local[1]`",
        "",
        "| command | no archive: wall (steps) | archive: wall (steps) | archive / none, "
        "pairwise | fixed cost (wall - steps), none -> archive |",
        "|---|---|---|---|---|",
    ]
    for command in COMMANDS:
        ratios = [
            a[command][0] / b[command][0] for a, b in zip(samples[ON], samples[OFF], strict=True)
        ]
        off_wall, off_steps = med(OFF, command, 0), med(OFF, command, 1)
        on_wall, on_steps = med(ON, command, 0), med(ON, command, 1)
        lines.append(
            f"| {command} | {off_wall:.1f} s ({off_steps:.1f}) | {on_wall:.1f} s ({on_steps:.1f}) "
            f"| {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) "
            f"| {off_wall - off_steps:.1f} -> {on_wall - on_steps:.1f} s |"
        )
    lines.append("")
    lines.append(
        "Per repetition (wall s): "
        + "; ".join(
            f"{v}: " + ", ".join(f"{s[c][0]:.1f}" for s in samples[v] for c in COMMANDS)
            for v in (OFF, ON)
        )
    )
    section = "\n".join(lines) + "\n\n"
    li.append_results(args.results, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
