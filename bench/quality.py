"""Benchmark: the cost of expectations in a silver step.

What is measured
    TPC-H ``lineitem`` (scale 0.2 by default: about 1.2M rows) is landed in bronze once.
    Then the same silver conform step (declared types, keys, dedup, overwrite) runs as two
    tables from the same bronze rows, alternating per repetition. By default each
    repetition rebuilds the existing tables (a daily rebuild's steady state) after a
    metadata-only bronze commit, so that the step is not skipped; ``--new-tables`` drops them before
    every step instead (a first run, which creates the table):

    * ``silver.li_plain``: no expectations;
    * ``silver.li_checked``: 10 expectations, 8 row-level and 2 table-level, with the
      actions a real suite mixes: ``drop`` (quantity above 49, about 2% of rows),
      ``quarantine`` (return flag, quantity), ``warn`` (discount, tax, ship mode, ship and
      receipt date order, comment length: some rows fail it), and table-level ``warn``
      (row count, mean extended price).

    The figure is the silver step's wall-clock seconds (``StepResult.seconds``: reading
    bronze, casts, checks, dedup, both writes, the accounting and, for the checked table,
    the counting of the expectations, the results
    table and the HTML report). Dropped rows are set aside in the quarantine table
    (reason ``drop:<name>``), so the checked step's quarantine write carries them.
    Rebuilding an existing table, its write and the quarantine's count the expectations
    themselves (a Spark Observation on each: ``observation``); creating a table, Spark
    does not report observations, so one job over the landed rows read back and a small
    one over the rows set aside count them (``aggregation``). The results section names
    which way the checked step took in each repetition.
    Overhead = median(checked) / median(plain) - 1.
    Target: at most 25%. This machine's noise is of the size of the effect (single
    repetitions have ranged from -22% to +72% on the same code), so the verdict comes with
    a 90% bootstrap interval of that overhead over the repetitions (:func:`interval`):
    "met" when the whole interval is at or under the target, "NOT met" when it is all
    above, "undecided" when it straddles it.

Why it is fair
    Same process, session, input version, columns, keys and write mode; the order
    alternates (odd repetitions: checked first); one untimed run of each first (JIT,
    Great Expectations' import); garbage collected before each step. Correctness is checked
    in every repetition: the checked table holds exactly the plain table's rows that pass
    the drop and quarantine expectations (a SQL count), at least as many rows were
    dropped as the plain table has keys with quantity above 49, and the quarantine holds
    exactly the dropped rows under a ``drop:`` reason.

Run from the repository root (data is shared with bench/lineitem.py under ``--work``)::

    .venv/bin/python bench/quality.py                  # scale 0.2 (1.2M rows), 9 reps
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lineitem as li

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakeforge.results import StepResult

TARGET_OVERHEAD = 0.25
PLAIN, CHECKED = "silver.li_plain", "silver.li_checked"

EXPECTATIONS: list[dict[str, Any]] = [
    {
        "expect_column_values_to_be_between": {"column": "l_quantity", "max_value": 49},
        "action": "drop",
        "name": "quantity_below_50",
    },
    {
        "expect_column_values_to_be_between": {"column": "l_quantity", "min_value": 1},
        "action": "quarantine",
        "name": "quantity_positive",
    },
    {
        "expect_column_values_to_be_in_set": {
            "column": "l_returnflag",
            "value_set": ["A", "N", "R"],
        },
        "action": "quarantine",
        "name": "known_return_flag",
    },
    {
        "expect_column_values_to_be_between": {
            "column": "l_discount",
            "min_value": 0,
            "max_value": 0.1,
        }
    },
    {"expect_column_values_to_be_between": {"column": "l_tax", "min_value": 0, "max_value": 0.08}},
    {
        "expect_column_values_to_be_in_set": {
            "column": "l_shipmode",
            "value_set": ["AIR", "FOB", "MAIL", "RAIL", "REG AIR", "SHIP", "TRUCK"],
        }
    },
    {
        "expect_column_pair_values_a_to_be_greater_than_b": {
            "column_A": "l_receiptdate",
            "column_B": "l_shipdate",
        }
    },
    {
        "expect_column_value_lengths_to_be_between": {
            "column": "l_comment",
            "min_value": 12,
            "max_value": 43,
        }
    },
    {"expect_table_row_count_to_be_between": {"min_value": 1, "max_value": 100_000_000}},
    {
        "expect_column_mean_to_be_between": {
            "column": "l_extendedprice",
            "min_value": 30000,
            "max_value": 45000,
        }
    },
]


def pipeline(
    name: str, table: str, glob: str, expectations: list[dict[str, Any]]
) -> dict[str, Any]:
    silver: dict[str, Any] = {
        "from": li.LF_BRONZE,
        "keys": list(li.KEYS),
        "mode": "overwrite",
        "columns": dict(li.LINEITEM),
    }
    if expectations:
        silver["expectations"] = expectations
    return {
        "name": name,
        "description": "bench/quality.py: one silver step with or without expectations",
        "bronze": {
            "lineitem": {"source": {"format": "csv", "path": glob, "options": dict(li.CSV_OPTIONS)}}
        },
        "silver": {table.split(".")[1]: silver},
    }


@dataclass(frozen=True)
class Sample:
    variant: str
    seconds: float
    step: StepResult


def run_step(spark: SparkSession, path: Path, table: str, tag: str, new_table: bool) -> Sample:
    from lakeforge.pipeline.executor import execute
    from lakeforge.plan.builder import build_plan
    from lakeforge.plan.load import load_pipeline

    if new_table:
        for t in (table, f"{table}__quarantine"):
            spark.sql(f"DROP TABLE IF EXISTS {t}")
    li.jvm_gc(spark)
    loaded = load_pipeline(path)
    result = execute(build_plan(loaded), spark, loaded.project_root, run_id=li.new_run_id(tag))
    if not result.ok:
        raise li.BenchError(f"{table}: run failed: {result.error}")
    step = result.step(table)
    if not step.committed:
        raise li.BenchError(f"{table}: the step committed nothing (timed a skip?)")
    return Sample(table, step.seconds, step)


def measured_by(sample: Sample) -> str:
    """How the checked step counted its expectations (its report's meta)."""
    import json

    if sample.step.quality_report is None:
        return "-"
    report = json.loads(Path(sample.step.quality_report).with_suffix(".json").read_text())
    return str(report["meta"].get("measured_by"))


def new_bronze_version(spark: SparkSession, rep: int) -> None:
    """A metadata-only commit to bronze: a new input version with the same rows, so that
    both steps rebuild their existing tables (the same input version would be skipped)."""
    spark.sql(f"ALTER TABLE {li.LF_BRONZE} SET TBLPROPERTIES ('bench.rep' = '{rep}')")


def check(spark: SparkSession, plain: Sample, checked: Sample) -> None:
    p, c = plain.step, checked.step
    if p.rows_read != c.rows_read:
        raise li.BenchError(f"rows read differ: {p.rows_read} vs {c.rows_read}")
    # The checked table holds exactly the plain table's rows that pass the drop and
    # quarantine expectations (duplicates are exact copies: dropped or kept together).
    kept = li.scalar(
        spark.sql(
            f"SELECT count(*) FROM {PLAIN} WHERE l_quantity BETWEEN 1 AND 49 "
            "AND l_returnflag IN ('A', 'N', 'R')"
        )
    )
    if c.rows_written != kept:
        raise li.BenchError(f"checked table has {c.rows_written} rows, expected {kept}")
    over_49 = li.scalar(spark.sql(f"SELECT count(*) FROM {PLAIN} WHERE l_quantity > 49"))
    if c.rows_dropped < over_49:
        raise li.BenchError(f"dropped {c.rows_dropped}, but {over_49} keys have quantity > 49")
    aside = li.scalar(
        spark.sql(
            f"SELECT count(*) FROM {CHECKED}__quarantine "
            "WHERE forall(reasons, r -> r LIKE 'drop:%')"
        )
    )
    if aside != c.rows_dropped:
        raise li.BenchError(f"{aside} rows set aside as dropped, the step counted {c.rows_dropped}")
    if c.expectations != len(EXPECTATIONS):
        raise li.BenchError(f"{c.expectations} expectations evaluated, not {len(EXPECTATIONS)}")


def prepare(work: Path, scale: float) -> tuple[li.Dataset, li.Project, dict[str, Path]]:
    """Generate (or reuse) the data and write the two pipelines, checked without a JVM."""
    data = li.generate_lineitem(work.resolve(), scale)
    root = work.resolve() / "quality-project"
    li.write_yaml(root / "conf" / "local.yml", li.profile_yaml(data.glob))
    paths = {
        PLAIN: root / "jobs" / "plain" / "pipeline.yml",
        CHECKED: root / "jobs" / "checked" / "pipeline.yml",
    }
    li.write_yaml(paths[PLAIN], pipeline("plain", PLAIN, data.glob, []))
    li.write_yaml(paths[CHECKED], pipeline("checked", CHECKED, data.glob, EXPECTATIONS))
    for path in paths.values():
        li.check_config(path)
    return data, li.Project(root=root, pipeline=paths[PLAIN], warmup=paths[PLAIN]), paths


def overhead_of(plain: list[float], checked: list[float]) -> float:
    return statistics.median(checked) / statistics.median(plain) - 1


def interval(
    plain: list[float], checked: list[float], level: float = 0.90, draws: int = 4000
) -> tuple[float, float]:
    """A percentile bootstrap interval of :func:`overhead_of`: resample the repetitions
    (each a pair: the two steps ran back to back, so they share that moment's noise) with
    replacement. Seeded: the same samples always give the same interval."""
    import random

    rng = random.Random(20261122)
    n = len(plain)
    stats = []
    for _ in range(draws):
        picks = [rng.randrange(n) for _ in range(n)]
        stats.append(overhead_of([plain[i] for i in picks], [checked[i] for i in picks]))
    stats.sort()
    tail = (1 - level) / 2
    return stats[int(tail * draws)], stats[min(draws - 1, int((1 - tail) * draws))]


def verdict(low: float, high: float, target: float = TARGET_OVERHEAD) -> str:
    if high <= target:
        return "met"
    if low > target:
        return "NOT met"
    return "undecided: the interval straddles the target"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.2, help="TPC-H scale factor (default 0.2)")
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument(
        "--new-tables",
        action="store_true",
        help="drop both tables before every step (a first run), instead of rebuilding them",
    )
    ap.add_argument("--work", type=Path, default=li.REPO / "bench" / "work")
    ap.add_argument("--results", type=Path, default=li.REPO / "bench" / "RESULTS.md")
    args = ap.parse_args(argv)
    started, load_start = li.now_utc(), li.loadavg()
    try:
        data, project, paths = prepare(args.work, args.scale)
        spark = li.start_session(project)
        li.reset_tables(spark, project.warehouse)  # fresh bronze and system tables
        samples: dict[str, list[float]] = {PLAIN: [], CHECKED: []}
        try:
            li.log(f"{data.rows:,} rows; bronze + warm-up (untimed)")
            warm_plain = run_step(spark, paths[PLAIN], PLAIN, "warmup", True)
            warm_checked = run_step(spark, paths[CHECKED], CHECKED, "warmup", True)
            check(spark, warm_plain, warm_checked)
            how: list[str] = []
            for rep in range(1, args.reps + 1):
                if not args.new_tables:
                    new_bronze_version(spark, rep)
                order = (CHECKED, PLAIN) if rep % 2 == 1 else (PLAIN, CHECKED)
                got = {}
                for table in order:
                    got[table] = run_step(spark, paths[table], table, f"rep{rep}", args.new_tables)
                    samples[table].append(got[table].seconds)
                    li.log(f"rep{rep} {table}: {got[table].seconds:.2f}s")
                check(spark, got[PLAIN], got[CHECKED])
                how.append(measured_by(got[CHECKED]))
            last = got[CHECKED].step
            facts = li.versions(project)
        finally:
            spark.stop()
    except li.BenchError as exc:
        li.log(f"FAILED: {exc}")
        return 1
    med = {k: statistics.median(v) for k, v in samples.items()}
    overhead = overhead_of(samples[PLAIN], samples[CHECKED])
    low, high = interval(samples[PLAIN], samples[CHECKED])
    paired = statistics.median(
        c / p - 1 for p, c in zip(samples[PLAIN], samples[CHECKED], strict=True)
    )
    rows = "\n".join(
        f"| {i + 1} | {samples[PLAIN][i]:.2f} | {samples[CHECKED][i]:.2f} | "
        f"{samples[CHECKED][i] / samples[PLAIN][i] - 1:+.1%} |"
        for i in range(args.reps)
    )
    smoke = (
        ""
        if args.reps >= 3 and data.rows >= 1_000_000
        else (
            "\n> Smoke test only (under 1M rows or fewer than 3 repetitions): not a measurement.\n"
        )
    )
    section = f"""## {started} — `{li.display_command()}`
{smoke}
- machine: {li.cpu_model()}, {li.meminfo_total()}; load average {load_start} at start, {li.loadavg()} at end
- versions: {", ".join(f"{k} {v}" for k, v in facts.items())}
- data: TPC-H lineitem scale {data.scale:g}, {data.rows:,} rows read by each step (bronze landed once, untimed)
- step: silver conform, keys {list(li.KEYS)}, dedup, mode overwrite, declared types; {li.MASTER}, {li.SPARK_CONF}
- tables: {"dropped before every step (a first run: CREATE TABLE AS SELECT)" if args.new_tables else "rebuilt in place every rep (after the untimed first run), each rep after a metadata-only bronze commit (a new input version, the same rows)"}; the checked step's expectations were counted by: {", ".join(how)}
- expectations on `{CHECKED}`: {len(EXPECTATIONS)} (8 row-level: drop 1, quarantine 2, warn 5; 2 table-level warn); last rep: {last.rows_dropped:,} rows dropped, {last.rows_quarantined:,} quarantined, {last.expectations_failed} of {last.expectations} expectations did not hold
- checked in every rep: the checked table's rows = the plain table's rows passing the drop and quarantine expectations (SQL count); dropped >= plain rows with `l_quantity > 49`

Silver step, seconds (wall clock):

| rep | without expectations | with {len(EXPECTATIONS)} expectations | overhead |
|---|---:|---:|---:|
{rows}
| **median** | **{med[PLAIN]:.2f}** | **{med[CHECKED]:.2f}** | **{overhead:+.1%}** |

Overhead of expectations (of the medians): **{overhead:+.1%}**; 90% bootstrap interval over the reps {low:+.1%} to {high:+.1%}; median of the per-rep overheads {paired:+.1%}. Target <= {TARGET_OVERHEAD:.0%}: **{verdict(low, high)}**.
"""
    li.append_results(args.results, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
