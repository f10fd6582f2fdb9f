"""Benchmark: where silver's cost of the ``missing_column`` check goes (A/B, one session).

What is measured
    TPC-H ``lineitem`` is landed in bronze once (no file lacks a column, so bronze's log
    records ``missing_columns: []``). Then the same silver conform step as
    ``bench/quality.py``'s plain table (declared types, keys, dedup, overwrite, no
    expectations) runs as four tables from the same bronze rows, alternating per
    repetition, each with one way of testing for columns absent from a row's file:

    * ``per_column``: every declared non-optional column tested on every row,
      ``coalesce(array_contains(_lf_missing_columns, col), false)`` plus its reason (the
      rule of 53e12db, before the log was asked);
    * ``guarded``: the same per-column tests, each behind ``size(_lf_missing_columns) > 0``
      (Spark's ``AND`` evaluates its right side only when the left is true);
    * ``read_only``: the array is read and one predicate per row tests it
      (``size(_lf_missing_columns) > 0``), no per-column test: the cost of reading the
      nested column plus a single guard;
    * ``log``: the current code: the Delta log says no column is missing, the array is
      not read.

    per_column - read_only is the cost of the per-column expressions; read_only - log the
    cost of reading the array column (and one predicate). The figure is the silver step's
    wall-clock seconds (``StepResult.seconds``), median over the repetitions.

Why it is fair
    Same process, session, input version, columns, keys and write mode; the order rotates
    per repetition; one untimed run of each first; garbage collected before each step;
    each repetition after a metadata-only bronze commit (as quality.py). The four tables
    must land and quarantine the same row counts in every repetition.

Run from the repository root (shares ``--work``'s data cache with lineitem.py)::

    .venv/bin/python bench/missing_columns.py --scale 0.1 --reps 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lineitem as li
import quality as q

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

VARIANTS = ("per_column", "guarded", "read_only", "log")
TABLES = {v: f"silver.li_mc_{v}" for v in VARIANTS}


def use_variant(variant: str) -> None:
    """Point silver's flagging at ``variant`` (module attributes the step looks up)."""
    from pyspark.sql import functions as F

    from lakeforge.io.files import META_MISSING_COLUMNS
    from lakeforge.quality.gate import BAD
    from lakeforge.steps import casting, conform, rows

    flag: Callable[..., Any] = rows.flag_rows
    lack: Callable[..., set[str]] = casting.may_lack
    absent: Callable[..., Any] = casting.absent_from_file
    if variant in ("per_column", "guarded"):

        def lack(df: DataFrame, table: str, sources: Sequence[str]) -> set[str]:
            return set(sources) if META_MISSING_COLUMNS in df.columns else set()

    if variant == "guarded":

        def absent(columns: Sequence[str], source: str, name: str) -> Any:
            test = F.size(META_MISSING_COLUMNS) > 0
            test = test & F.array_contains(F.col(META_MISSING_COLUMNS), F.lit(source))
            hit = F.coalesce(test, F.lit(False))
            return casting.Absent(hit, F.when(hit, F.lit(casting.missing_reason(name))))

    elif variant == "read_only":

        def flag(df: DataFrame, step: Any) -> DataFrame:
            out = rows.flag_rows(df, step)
            return out.withColumn(BAD, F.col(BAD) | (F.size(META_MISSING_COLUMNS) > 0))

    setattr(rows, "may_lack", lack)  # noqa: B010 (a benchmark's switch)
    setattr(rows, "absent_from_file", absent)  # noqa: B010
    setattr(conform, "flag_rows", flag)  # noqa: B010


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work", type=Path, default=li.REPO / "bench" / "work")
    ap.add_argument("--results", type=Path, default=li.REPO / "bench" / "RESULTS.md")
    args = ap.parse_args(argv)
    started, load_start = li.now_utc(), li.loadavg()
    data = li.generate_lineitem(args.work.resolve(), args.scale)
    root = args.work.resolve() / "missing-project"
    li.write_yaml(root / "conf" / "local.yml", li.profile_yaml(data.glob))
    paths = {v: root / "jobs" / v / "pipeline.yml" for v in VARIANTS}
    for v, path in paths.items():
        li.write_yaml(path, q.pipeline(v, TABLES[v], data.glob, []))
        li.check_config(path)
    project = li.Project(root=root, pipeline=paths["log"], warmup=paths["log"])
    samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
    try:
        spark = li.start_session(project)
        li.reset_tables(spark, project.warehouse)
        try:
            for v in VARIANTS:  # bronze lands in the first; untimed
                use_variant(v)
                q.run_step(spark, paths[v], TABLES[v], f"warmup-{v}", True)
            for rep in range(1, args.reps + 1):
                q.new_bronze_version(spark, rep)
                turn = rep % len(VARIANTS)
                order = VARIANTS[turn:] + VARIANTS[:turn]
                counts = set()
                for v in order:
                    use_variant(v)
                    got = q.run_step(spark, paths[v], TABLES[v], f"rep{rep}", False)
                    samples[v].append(got.seconds)
                    counts.add((got.step.rows_written, got.step.rows_quarantined))
                    li.log(f"rep{rep} {v}: {got.seconds:.2f}s")
                if len(counts) != 1:
                    raise li.BenchError(f"rep{rep}: variants disagree on rows: {counts}")
            facts = li.versions(project)
        finally:
            spark.stop()
            use_variant("log")
    except li.BenchError as exc:
        li.log(f"FAILED: {exc}")
        return 1
    med = {v: statistics.median(s) for v, s in samples.items()}
    table = "\n".join(
        f"| {i + 1} | " + " | ".join(f"{samples[v][i]:.2f}" for v in VARIANTS) + " |"
        for i in range(args.reps)
    )
    section = f"""## {started} — `{li.display_command()}`

- machine: {li.cpu_model()}, {li.meminfo_total()}; load average {load_start} at start, {li.loadavg()} at end
- versions: {", ".join(f"{k} {v}" for k, v in facts.items())}
- data: TPC-H lineitem scale {data.scale:g}, {data.rows:,} rows read by each step; silver as quality.py's plain table (16 declared columns, keys, dedup, overwrite)

Silver step, seconds (wall clock):

| rep | {" | ".join(VARIANTS)} |
|---|{"---:|" * len(VARIANTS)}
{table}
| **median** | {" | ".join(f"**{med[v]:.2f}**" for v in VARIANTS)} |

Against `log`: {", ".join(f"{v} {med[v] / med['log'] - 1:+.1%}" for v in VARIANTS[:-1])}.
"""
    li.append_results(args.results, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
