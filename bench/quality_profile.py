"""Where the cost of expectations goes: JVM CPU samples of the two steps of bench/quality.py.

What it does
    The same set-up, tables and alternation as ``bench/quality.py`` (rebuilding existing
    tables), but each timed step runs under its own Java Flight Recorder recording
    (``profile`` settings: a CPU sample of every running Java thread about every 10-20 ms).
    It then counts, per variant, the samples of Spark's task threads and of the other JVM
    threads (the driver), and, among the task threads' samples, those whose stack passes
    through a few telling frames (the write's Observation, the code-generated stages, the
    dedup window, the Parquet writer), and the top frames that grew most.

Why
    On this 2-core machine wall-clock medians of the same code spread by tens of percent;
    CPU samples counted over several repetitions are far steadier, and they say *where* the
    extra time goes. They do not replace ``bench/quality.py``'s wall-clock figure (the
    target is about wall-clock time): they explain it. Python time (py4j, the report) is
    outside the JVM and not sampled.

Run from the repository root::

    .venv/bin/python bench/quality_profile.py              # scale 0.2, 4 reps
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lineitem as li
import quality as q

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Stack frames (substrings) that name where a task thread's sample was spent.
MARKERS = {
    "AggregatingAccumulator": "a write's Observation (Spark CollectMetrics aggregates)",
    "GeneratedIteratorForCodegenStage": "code-generated stages (scan, casts, checks, filters)",
    "WindowEvaluator": "the dedup window",
    "ParquetOutputWriter": "the Parquet writer",
    "UnsafeExternalSorter": "sorting (window, writes)",
    "JacksonGenerator": "quarantine records (to_json)",
}
# Spark renames its task threads per task ("Executor task launch worker for task ...",
# "Executor task idle worker#N" between tasks); a recording keeps the name it first saw.
TASK_THREAD = "Executor task "


@dataclass
class Profile:
    """Sample counts over one variant's steps."""

    steps: int = 0
    task: int = 0  # samples of Spark task threads
    other: int = 0  # samples of every other JVM thread (driver, Delta, GC is not sampled)
    markers: collections.Counter[str] = field(default_factory=collections.Counter)
    tops: collections.Counter[str] = field(default_factory=collections.Counter)
    # JIT compilations over the recording's threshold (100 ms with ``profile``): count and
    # milliseconds, of Spark's generated classes and of the rest. Compiler threads are not
    # sampled, but on 2 cores their CPU is taken from the tasks.
    jit: collections.Counter[str] = field(default_factory=collections.Counter)


def jfr_tool(spark: SparkSession) -> str:
    home = spark.sparkContext._jvm.java.lang.System.getProperty("java.home")  # type: ignore[union-attr]
    return str(Path(home) / "bin" / "jfr")


def recorded(spark: SparkSession, out: Path, step: Any) -> Any:
    """Run ``step()`` under a Flight Recorder recording dumped to ``out``."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    recording = jvm.jdk.jfr.Recording(jvm.jdk.jfr.Configuration.getConfiguration("profile"))
    recording.start()
    try:
        return step()
    finally:
        recording.stop()
        recording.dump(jvm.java.io.File(str(out)).toPath())
        recording.close()


def read_samples(tool: str, path: Path) -> list[tuple[str, list[str]]]:
    """(thread name, frames top first) of every execution sample in a recording."""
    text = subprocess.run(
        [tool, "print", "--events", "jdk.ExecutionSample", "--stack-depth", "96", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    samples: list[tuple[str, list[str]]] = []
    thread, in_stack = "", False
    frames: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("jdk.ExecutionSample"):
            thread, frames, in_stack = "", [], False
        elif line.startswith("sampledThread"):
            thread = line.split("=", 1)[1].strip()
        elif line.startswith("stackTrace"):
            in_stack = True
        elif in_stack and line.startswith("]"):
            in_stack = False
        elif in_stack and line != "...":
            frames.append(line.split("(")[0])
        elif line == "}":
            samples.append((thread, frames))
    return samples


def read_compilations(tool: str, path: Path) -> list[tuple[str, float]]:
    """(compiled method, milliseconds) of every long JIT compilation in a recording."""
    text = subprocess.run(
        [tool, "print", "--events", "jdk.Compilation", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    out: list[tuple[str, float]] = []
    method, millis = "", 0.0
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("duration"):
            value, unit = line.split("=", 1)[1].split()
            millis = float(value) * {"s": 1000.0, "ms": 1.0, "us": 0.001}.get(unit, 1.0)
        elif line.startswith("method"):
            method = line.split("=", 1)[1].strip()
        elif line == "}":
            out.append((method, millis))
    return out


def tally_jit(profile: Profile, compilations: list[tuple[str, float]]) -> None:
    for method, millis in compilations:
        kind = "generated" if "GeneratedClass" in method else "other"
        profile.jit[f"{kind} n"] += 1
        profile.jit[f"{kind} ms"] += round(millis)


def tally(profile: Profile, samples: list[tuple[str, list[str]]]) -> None:
    profile.steps += 1
    for thread, frames in samples:
        if TASK_THREAD not in thread:
            profile.other += 1
            continue
        profile.task += 1
        seen = {m for m in MARKERS for f in frames if m in f}
        profile.markers.update(seen)
        if frames:
            profile.tops[frames[0]] += 1


def render(
    command: str, scale: float, rows: int, prof: dict[str, Profile], facts: dict[str, str]
) -> str:
    p, c = prof[q.PLAIN], prof[q.CHECKED]

    def line(label: str, a: int, b: int) -> str:
        grow = f"{b / a - 1:+.1%}" if a else "new"
        return f"| {label} | {a:,} | {b:,} | {b - a:+,} | {grow} |"

    marker_rows = "\n".join(
        line(f"{desc} (`{m}`)", p.markers[m], c.markers[m]) for m, desc in MARKERS.items()
    )
    grown = sorted(set(p.tops) | set(c.tops), key=lambda f: p.tops[f] - c.tops[f])[:12]
    top_rows = "\n".join(
        f"| `{f}` | {p.tops[f]:,} | {c.tops[f]:,} | {c.tops[f] - p.tops[f]:+,} |" for f in grown
    )
    return f"""## {li.now_utc()} — `{command}`

- machine: {li.cpu_model()}, {li.meminfo_total()}
- versions: {", ".join(f"{k} {v}" for k, v in facts.items())}
- what: JVM CPU samples (Java Flight Recorder, `profile` settings) of the silver step of
  `bench/quality.py`, rebuilding existing tables, {p.steps} steps of each variant,
  alternating; scale {scale:g} ({rows:,} rows); not wall-clock time (see bench/README.md)

| samples | without expectations | with 10 | difference | growth |
|---|---:|---:|---:|---:|
{line("Spark task threads, all", p.task, c.task)}
{line("other JVM threads (driver, Delta log)", p.other, c.other)}
{line("JIT: long compilations of Spark's generated code", p.jit["generated n"], c.jit["generated n"])}
{line("JIT: their milliseconds", p.jit["generated ms"], c.jit["generated ms"])}
{line("JIT: other long compilations", p.jit["other n"], c.jit["other n"])}
{line("JIT: their milliseconds", p.jit["other ms"], c.jit["other ms"])}
{marker_rows}

Task-thread top frames that grew most:

| frame | without | with 10 | difference |
|---|---:|---:|---:|
{top_rows}
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.2)
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--work", type=Path, default=li.REPO / "bench" / "work")
    ap.add_argument("--results", type=Path, default=li.REPO / "bench" / "RESULTS.md")
    args = ap.parse_args(argv)
    try:
        data, project, paths = q.prepare(args.work, args.scale)
        spark = li.start_session(project)
        li.reset_tables(spark, project.warehouse)
        prof = {q.PLAIN: Profile(), q.CHECKED: Profile()}
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        # The Flight Recorder only samples threads created after it started: an empty
        # recording from the start keeps it up, so that Spark's task threads (created by
        # the first job) are sampled by every step's recording.
        keep_alive = jvm.jdk.jfr.Recording()
        keep_alive.start()
        try:
            tool = jfr_tool(spark)
            for table in (q.PLAIN, q.CHECKED):  # first runs create the tables: untimed
                q.run_step(spark, paths[table], table, "warmup", True)
            with tempfile.TemporaryDirectory() as tmp:
                for rep in range(1, args.reps + 1):
                    q.new_bronze_version(spark, rep)
                    for table in (q.CHECKED, q.PLAIN) if rep % 2 else (q.PLAIN, q.CHECKED):
                        out = Path(tmp) / f"{rep}-{table}.jfr"
                        tag = f"jfr{rep}"
                        recorded(
                            spark,
                            out,
                            lambda t=table, tag=tag: q.run_step(spark, paths[t], t, tag, False),
                        )
                        tally(prof[table], read_samples(tool, out))
                        tally_jit(prof[table], read_compilations(tool, out))
                        li.log(f"rep{rep} {table}: {prof[table].task:,} task samples so far")
            facts = li.versions(project)
        finally:
            keep_alive.close()
            spark.stop()
    except li.BenchError as exc:
        li.log(f"FAILED: {exc}")
        return 1
    section = render(li.display_command(), data.scale, data.rows, prof, facts)
    li.append_results(args.results, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
