"""Benchmark: lakeforge's bronze and silver steps against hand-written PySpark + Delta.

What is measured
    TPC-H ``lineitem`` (scale factor 1: about 6M rows, ~760 MB of CSV in 8 files) goes
    through two steps, twice per repetition: once by lakeforge (the ``bronze.lineitem``
    ingest and ``silver.lineitem`` conform steps of a generated scratch project, run
    through lakeforge's Python API) and once by a hand-written PySpark + Delta version of
    the same work (``hand_bronze`` / ``hand_silver`` below, which import nothing from
    lakeforge). Wall-clock seconds of bronze, silver and their total are reported per
    repetition, with medians and the ratio lakeforge / hand-written of the medians.

    * bronze: read the CSV files as strings (malformed lines kept, their text in
      ``_lf_corrupt_record``), add the lineage columns (run, batch, ingestion time, source
      file path / size / mtime from ``_metadata``), append to a Delta table registered in
      the metastore as one idempotent commit (Delta txn id), read back its version and
      row count from the commit.
    * silver: read bronze at its latest version, ``try_cast`` every declared column,
      compute each row's failure reasons (malformed line / cast failed / key null) in one
      pass; write valid rows to the silver table (overwrite) and failing rows, as JSON
      records with their reasons, to a quarantine table (overwrite). Rows in come from
      ``count(*)`` of the version read (Delta answers it from file statistics), rows landed
      and quarantined from the commits' metrics. With dedup on (the default), valid rows
      are cut to one per key (``row_number()`` over the keys, newest ``_lf_ingested_at``
      first) and the duplicates removed are counted.

    The hand-written side does not keep lakeforge's own bookkeeping (ingestion log, run
    and table-version records in the ``lakeforge`` system schema, spec hashes): that
    overhead is part of what the ratio measures.

    For lakeforge, bronze runs from the start of ``load_pipeline`` to the end of the bronze
    step (config loading, planning, schemas and system tables included), silver from there
    to the end of the silver step, total until ``execute`` returns. The hand-written side
    is timed the same way around its two functions (its bronze creates its schema too).

Why it is fair
    * Same invocation, same SparkSession (lakeforge's own ``build_session`` on a scratch
      ``local[2]`` profile), same input files, metastore and warehouse; the same output
      tables, column for column (checked), and the same row accounting on both sides.
    * Both sides run once, untimed, over one TPC-H file first (JIT, class loading, Derby);
      the order then alternates per repetition (odd: lakeforge first).
    * Every repetition starts from empty tables (untimed): every table of the ``bronze``
      and ``silver`` schemas is dropped and its folder removed, lakeforge's system tables
      (schema ``lakeforge``) are emptied but kept, as in any project after its first run,
      Delta's table cache is cleared, and the JVM collects garbage before each side.
    * The hand-written side is what a careful engineer would write, not a strawman: an
      explicit all-string read schema (no header sniffing), one pass for the checks, row
      counts from Delta statistics and commit metrics (never a data scan). It does no less
      data work than lakeforge: same reads, writes, columns, checks and counts.
    * Correctness is checked in the same run. Next to the TPC-H files the input holds one
      small file of anomalies (``lineitem.anomalies.csv``): 1,000 exact duplicates of
      existing keys, 6 rows that fail a cast or have a null key, 2 malformed lines. So the
      expected rows in bronze, silver and quarantine are known independently, and in every
      repetition both sides must land exactly those counts, with identical table schemas;
      after the last repetition, identical bronze, silver and quarantine contents
      (checksums). Any difference fails the run before results are written.

Silver deduplication
    If lakeforge's silver config has a ``dedup`` key, the job declares
    ``dedup: {order_by: [_lf_ingested_at desc]}``. Otherwise this lakeforge keeps one row
    per ``keys`` on its own, and nothing is declared. With ``--no-dedup`` the hand-written
    side keeps duplicates; a lakeforge that removes them anyway fails the correctness check
    (the sides would not be doing the same work).

Run from the repository root (generated data is cached under ``--work``)::

    .venv/bin/python bench/lineitem.py                       # scale 1, 3 reps, dedup on
    .venv/bin/python bench/lineitem.py --scale 0.05 --reps 2 --results /tmp/r.md

Results are appended to ``--results`` (default ``bench/RESULTS.md``) under a heading with
the date and the exact command.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lakeforge.results import StepResult

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.10
# The scratch profile: 2 cores (the machine is shared), few partitions, no UI.
MASTER = "local[2]"
SPARK_CONF: dict[str, str] = {
    # 2 cores; 4 keeps each dedup sort partition well under the task's memory at scale 1
    # (adaptive execution coalesces further when they are small).
    "spark.sql.shuffle.partitions": "4",
    # Delta rebuilds table state with this many partitions; its default (50) is for clusters.
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.ui.enabled": "false",
    # local mode runs tasks in the driver; the default heap (1g) is tight for 6M-row sorts.
    "spark.driver.memory": "2g",
}

# TPC-H lineitem, in file order, with the types silver declares.
LINEITEM: tuple[tuple[str, str], ...] = (
    ("l_orderkey", "bigint"),
    ("l_partkey", "bigint"),
    ("l_suppkey", "bigint"),
    ("l_linenumber", "int"),
    ("l_quantity", "decimal(15,2)"),
    ("l_extendedprice", "decimal(15,2)"),
    ("l_discount", "decimal(15,2)"),
    ("l_tax", "decimal(15,2)"),
    ("l_returnflag", "string"),
    ("l_linestatus", "string"),
    ("l_shipdate", "date"),
    ("l_commitdate", "date"),
    ("l_receiptdate", "date"),
    ("l_shipinstruct", "string"),
    ("l_shipmode", "string"),
    ("l_comment", "string"),
)
COLUMNS = tuple(name for name, _ in LINEITEM)
KEYS = ("l_orderkey", "l_linenumber")
CSV_OPTIONS = {"header": "true", "sep": ","}

# lakeforge's column names, written out (not imported): the hand-written side owes it nothing.
RUN_ID, BATCH_ID, INGESTED_AT = "_lf_run_id", "_lf_batch_id", "_lf_ingested_at"
SOURCE_FILE, SOURCE_SIZE, SOURCE_MTIME = "_lf_source_file", "_lf_source_size", "_lf_source_mtime"
CORRUPT = "_lf_corrupt_record"

# lakeforge's tables come from the generated job; the hand-written side writes next to
# them, in the same schemas, so both share the metastore and the warehouse layout.
LF_BRONZE, LF_SILVER = "bronze.lineitem", "silver.lineitem"
LF_QUARANTINE = "silver.lineitem__quarantine"
HAND_BRONZE, HAND_SILVER = "bronze.lineitem_hand", "silver.lineitem_hand"
HAND_QUARANTINE = "silver.lineitem_hand__quarantine"
# Before every repetition the layer schemas' tables are dropped; the system schema's
# tables (lakeforge's run records and ingestion log) are emptied but kept: otherwise the
# ingestion log would skip every file as already ingested.
LAYER_SCHEMAS = ("bronze", "silver")
SYSTEM_SCHEMA = "lakeforge"

LAKEFORGE, HAND = "lakeforge", "hand-written"
SIDES = (LAKEFORGE, HAND)


class BenchError(Exception):
    """A benchmark run that cannot produce trustworthy figures."""


# ---------------------------------------------------------------------------------------
# Data: TPC-H lineitem as CSV (generated once per scale factor) plus a file of anomalies
# ---------------------------------------------------------------------------------------

ANOMALIES_FILE = "lineitem.anomalies.csv"
DUPLICATES = 1000


@dataclass(frozen=True)
class Dataset:
    """The input files and what they must produce, known without Spark."""

    scale: float
    folder: Path
    tpch_files: tuple[Path, ...]
    tpch_rows: dict[str, int]  # file name -> data rows
    bytes: int
    tool_version: str
    duplicates: int  # exact copies of TPC-H rows in the anomalies file
    invalid: int  # anomalies rows that silver must quarantine

    @property
    def glob(self) -> str:
        """Every input file: the TPC-H parts and the anomalies."""
        return str(self.folder / "lineitem.*.csv")

    @property
    def warmup_glob(self) -> str:
        """One TPC-H part and the anomalies (the duplicates copy rows of the first part)."""
        first = self.tpch_files[0].name.removeprefix("lineitem.").removesuffix(".csv")
        return str(self.folder / f"lineitem.{{{first},anomalies}}.csv")

    @property
    def rows(self) -> int:
        return sum(self.tpch_rows.values()) + self.duplicates + self.invalid


def parts_for(scale: float) -> int:
    """Several files, ~100 MB each at most: globbing and file splits as in real drops."""
    return max(4, math.ceil(scale * 8))


def tpchgen() -> str:
    here = Path(sys.executable).parent / "tpchgen-cli"
    found = str(here) if here.is_file() else shutil.which("tpchgen-cli")
    if found is None:
        raise BenchError("tpchgen-cli not found (pip install tpchgen-cli, or ./dev setup)")
    return found


def count_data_lines(path: Path) -> int:
    """Data rows of one CSV file: lines after the header (TPC-H has no embedded newlines)."""
    expected = ",".join(COLUMNS).encode()
    lines = 0
    last = b"\n"
    with path.open("rb") as f:
        header = f.readline()
        if header.rstrip(b"\r\n") != expected:
            raise BenchError(f"{path}: unexpected header {header[:200]!r}")
        while chunk := f.read(1 << 24):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (0 if last == b"\n" else 1)


def write_anomalies(first_part: Path, target: Path) -> tuple[int, int]:
    """Write the anomalies file; returns (duplicates, rows silver must quarantine).

    Duplicates are exact copies of the first part's first rows, so whichever copy a side
    keeps, silver's contents are the same. Invalid rows use line numbers 8+ (TPC-H has
    1..7), so they never share a key with a valid row.
    """
    with first_part.open() as f:
        header = f.readline()
        copies = [line for _, line in zip(range(DUPLICATES), f, strict=False)]
    template = copies[0].rstrip("\n").split(",", 15)
    col = {name: i for i, name in enumerate(COLUMNS)}

    def variant(linenumber: str, **values: str) -> str:
        fields = list(template)
        fields[col["l_linenumber"]] = linenumber
        for name, value in values.items():
            fields[col[name]] = value
        return ",".join(fields) + "\n"

    invalid = [
        variant("8", l_quantity="abc"),  # cast_failed: decimal
        variant("9", l_shipdate="1996-02-30"),  # cast_failed: no such date
        variant("10", l_orderkey="12x"),  # cast_failed on a key
        variant("11", l_extendedprice="1.2.3"),  # cast_failed: decimal
        variant(""),  # null key: l_linenumber
        variant("12", l_orderkey=""),  # null key: l_orderkey
        ",".join(template[:5]) + "\n",  # malformed: too few fields
        ",".join(template) + ",surplus\n",  # malformed: too many fields
    ]
    target.write_text(header + "".join(copies) + "".join(invalid))
    return len(copies), len(invalid)


def generate_lineitem(work: Path, scale: float) -> Dataset:
    """Generate (or reuse) ``lineitem`` at ``scale`` under ``work/data``; add the anomalies."""
    parts = parts_for(scale)
    home = work / "data" / f"tpch-sf{scale:g}-parts{parts}"
    manifest = home / "dataset.json"
    if not manifest.is_file():
        tool = tpchgen()
        tmp = home.with_name(home.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        cmd = [tool, "csv", "--scale-factor", f"{scale:g}", "--tables", "lineitem"]
        cmd += ["--parts", str(parts), "--output-dir", str(tmp), "--quiet"]
        log(f"generating lineitem at scale {scale:g} in {parts} files: {shlex.join(cmd)}")
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        generated = sorted((tmp / "lineitem").glob("lineitem.*.csv"))
        if len(generated) != parts:
            raise BenchError(f"expected {parts} files from tpchgen-cli, got {len(generated)}")
        version = subprocess.run(
            [tool, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        info = {
            "scale": scale,
            "parts": parts,
            "tool": version,
            "command": shlex.join(cmd),
            "generated_at": now_utc(),
            "files": {
                f.name: {"rows": count_data_lines(f), "bytes": f.stat().st_size} for f in generated
            },
        }
        (tmp / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")
        shutil.rmtree(home, ignore_errors=True)
        tmp.rename(home)
        log(f"generated in {time.perf_counter() - t0:.1f}s")
    info = json.loads(manifest.read_text())
    folder = home / "lineitem"
    names = sorted(info["files"], key=lambda n: int(n.split(".")[1]))
    files = tuple(folder / name for name in names)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise BenchError(f"cached data is incomplete ({missing[0]}); delete {home} and rerun")
    duplicates, invalid = write_anomalies(files[0], folder / ANOMALIES_FILE)
    return Dataset(
        scale=scale,
        folder=folder,
        tpch_files=files,
        tpch_rows={name: int(info["files"][name]["rows"]) for name in names},
        bytes=sum(int(v["bytes"]) for v in info["files"].values()),
        tool_version=str(info["tool"]),
        duplicates=duplicates,
        invalid=invalid,
    )


# ---------------------------------------------------------------------------------------
# The scratch lakeforge project
# ---------------------------------------------------------------------------------------


def lakeforge_declares_dedup() -> bool:
    """Whether this lakeforge's silver config has a ``dedup`` key (else: dedup on keys)."""
    from lakeforge.config.models import SilverTable

    return "dedup" in SilverTable.model_fields


def profile_yaml(data_glob: str) -> dict[str, Any]:
    """``conf/local.yml``: the keys of the repository's own local profile, tuned small; the
    generated data's folder (outside the project) is an allowed root (LF-CFG-012)."""
    return {
        "allowed_roots": [str(Path(data_glob).parent)],
        "description": "lakeforge benchmark (bench/lineitem.py): 2 cores, quiet",
        "spark": {"master": MASTER, "conf": dict(SPARK_CONF)},
        "warehouse": "lakehouse/warehouse",
        "metastore": {"kind": "derby", "path": "lakehouse/metastore_db"},
        "jar_bundles": ["delta"],
        "vars": {},
    }


def pipeline_yaml(name: str, source_glob: str, declare_dedup: bool) -> dict[str, Any]:
    silver: dict[str, Any] = {"from": LF_BRONZE, "keys": list(KEYS), "mode": "overwrite"}
    if declare_dedup:
        silver["dedup"] = {"order_by": [f"{INGESTED_AT} desc"]}
    silver["columns"] = dict(LINEITEM)
    return {
        "name": name,
        "description": "TPC-H lineitem, bronze and silver only (bench/lineitem.py)",
        "bronze": {
            "lineitem": {
                "source": {"format": "csv", "path": source_glob, "options": dict(CSV_OPTIONS)}
            }
        },
        "silver": {"lineitem": silver},
    }


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
    path.write_text(
        "# Generated by bench/lineitem.py on every run; edits are overwritten.\n" + text
    )


@dataclass(frozen=True)
class Project:
    root: Path
    pipeline: Path  # the measured job: every file
    warmup: Path  # the same job over one TPC-H file and the anomalies, run once untimed

    @property
    def warehouse(self) -> Path:
        return self.root / "lakehouse" / "warehouse"


def write_project(work: Path, data: Dataset, declare_dedup: bool) -> Project:
    root = work / "project"
    write_yaml(root / "conf" / "local.yml", profile_yaml(data.glob))
    pipeline = root / "jobs" / "lineitem" / "pipeline.yml"
    warmup = root / "jobs" / "lineitem_warmup" / "pipeline.yml"
    write_yaml(pipeline, pipeline_yaml("lineitem", data.glob, declare_dedup))
    write_yaml(warmup, pipeline_yaml("lineitem_warmup", data.warmup_glob, declare_dedup))
    return Project(root=root, pipeline=pipeline, warmup=warmup)


# ---------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    bronze: float
    silver: float
    total: float


@dataclass(frozen=True)
class Counts:
    """Rows in bronze, silver and quarantine, and duplicates removed by silver."""

    bronze: int
    silver: int
    quarantine: int
    duplicates: int


@dataclass(frozen=True)
class SideRun:
    side: str
    timing: Timing
    reported: Counts  # as the side itself reported them
    jobs: dict[str, int]  # Spark jobs per step


@dataclass
class Rep:
    number: int  # 0: the warm-up
    first: str
    runs: dict[str, SideRun] = field(default_factory=dict)
    tables: dict[str, Counts] = field(default_factory=dict)  # counted afterwards, untimed
    schemas: dict[str, list[list[tuple[str, str]]]] = field(default_factory=dict)


def log(message: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def new_run_id(tag: str) -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + tag


def scalar(df: DataFrame) -> int:
    row = df.head()
    if row is None or row[0] is None:
        raise BenchError("query returned no value")
    return int(row[0])


def jobs_in_group(spark: SparkSession, group: str) -> int:
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


def clear_job_group(spark: SparkSession) -> None:
    spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]


def jvm_gc(spark: SparkSession) -> None:
    """Start each side on a collected heap, so the second does not pay for the first."""
    jvm = spark.sparkContext._jvm
    if jvm is not None:
        jvm.java.lang.System.gc()


def run_lakeforge(spark: SparkSession, pipeline: Path, tag: str) -> SideRun:
    """lakeforge's bronze + silver through its Python API, on the shared session."""
    from lakeforge.pipeline.executor import execute
    from lakeforge.plan.builder import build_plan
    from lakeforge.plan.load import load_pipeline

    sc = spark.sparkContext
    groups = {LF_BRONZE: f"{tag}:lf:bronze", LF_SILVER: f"{tag}:lf:silver"}
    marks: dict[str, float] = {}

    def on_step(step: StepResult) -> None:
        marks[step.table] = time.perf_counter()
        if step.table == LF_BRONZE:
            sc.setJobGroup(groups[LF_SILVER], "lakeforge silver")

    sc.setJobGroup(groups[LF_BRONZE], "lakeforge bronze")
    t0 = time.perf_counter()
    loaded = load_pipeline(pipeline)
    plan = build_plan(loaded)
    result = execute(plan, spark, loaded.project_root, run_id=new_run_id(tag), on_step=on_step)
    t_end = time.perf_counter()
    clear_job_group(spark)
    if not result.ok:
        raise BenchError(f"lakeforge run failed: {result.error}")
    bronze, silver = result.step(LF_BRONZE), result.step(LF_SILVER)
    reported = Counts(
        bronze=bronze.rows_written,
        silver=silver.rows_written,
        quarantine=silver.rows_quarantined,
        duplicates=silver.rows_read - silver.rows_written - silver.rows_quarantined,
    )
    return SideRun(
        side=LAKEFORGE,
        timing=Timing(
            bronze=marks[LF_BRONZE] - t0,
            silver=marks[LF_SILVER] - marks[LF_BRONZE],
            total=t_end - t0,
        ),
        reported=reported,
        jobs={k.split(".")[0]: jobs_in_group(spark, g) for k, g in groups.items()},
    )


# --- the hand-written baseline: plain PySpark + Delta, nothing from lakeforge ------------


def commit_info(run_id: str, table: str) -> str:
    return json.dumps({"run_id": run_id, "table": table}, sort_keys=True)


def last_commit(spark: SparkSession, table: str) -> tuple[int, int]:
    """(version, rows written) of the newest commit, from the Delta log: no data is read."""
    from delta.tables import DeltaTable

    commit = DeltaTable.forName(spark, table).history(1).head()
    if commit is None:
        raise BenchError(f"{table}: no Delta commit")
    metrics = commit["operationMetrics"] or {}
    return int(commit["version"]), int(metrics.get("numOutputRows", 0))


def hand_bronze(spark: SparkSession, path: str, run_id: str, batch_id: int = 1) -> tuple[int, int]:
    """Land the CSV files as strings in bronze. Returns (Delta version, rows appended)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    spark.sql("CREATE SCHEMA IF NOT EXISTS bronze")
    raw_schema = StructType([StructField(c, StringType()) for c in (*COLUMNS, CORRUPT)])
    rows = (
        spark.read.schema(raw_schema)
        .options(**CSV_OPTIONS, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT)
        .csv(path)
        .select(
            *COLUMNS,
            CORRUPT,
            F.lit(run_id).alias(RUN_ID),
            F.lit(batch_id).cast("bigint").alias(BATCH_ID),
            F.current_timestamp().alias(INGESTED_AT),
            F.col("_metadata.file_path").alias(SOURCE_FILE),
            F.col("_metadata.file_size").alias(SOURCE_SIZE),
            F.col("_metadata.file_modification_time").alias(SOURCE_MTIME),
            # lakeforge lists the columns a row's file lacked; a declared schema: none.
            F.array().cast("array<string>").alias("_lf_missing_columns"),
        )
    )
    (
        rows.write.format("delta")
        .mode("append")
        .option("userMetadata", commit_info(run_id, HAND_BRONZE))
        # Idempotent: a retried batch is skipped by Delta instead of landing twice.
        .option("txnAppId", f"hand:{HAND_BRONZE}")
        .option("txnVersion", str(batch_id))
        .saveAsTable(HAND_BRONZE)
    )
    return last_commit(spark, HAND_BRONZE)


def hand_silver_frames(
    spark: SparkSession, version: int, run_id: str, dedup: bool
) -> tuple[DataFrame, DataFrame]:
    """The rows for silver and for quarantine, from bronze at ``version`` (lazy)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    bronze = spark.read.option("versionAsOf", version).table(HAND_BRONZE)
    typed = {name: F.col(name).try_cast(t) for name, t in LINEITEM}
    reasons = [
        F.when(
            F.col(name).isNotNull() & typed[name].isNull(),
            F.concat(F.lit(f"cast_failed:{name}:{t}:"), F.col(name)),
        )
        for name, t in LINEITEM
    ] + [F.when(F.col(k).isNull(), F.lit(f"null_not_allowed:{k}")) for k in KEYS]
    # A malformed line's fields are unreliable: that is its only reason.
    checks = F.when(F.col(CORRUPT).isNotNull(), F.array(F.lit("malformed_record"))).otherwise(
        F.array_compact(F.array(*reasons))
    )
    checked = bronze.select(
        *COLUMNS,
        CORRUPT,
        SOURCE_FILE,
        INGESTED_AT,
        *[typed[name].alias(f"typed_{name}") for name in COLUMNS],
        checks.alias("reasons"),
    )
    valid = F.size("reasons") == 0
    if dedup:
        # Rank over (valid, keys), then filter: with the filter below the window instead,
        # Spark's constraint propagation needs 10-20 s (or the whole heap) to plan these
        # wide check expressions. Same rows either way.
        newest_first = Window.partitionBy(valid, *[f"typed_{k}" for k in KEYS]).orderBy(
            F.col(INGESTED_AT).desc()
        )
        ranked = checked.withColumn("_rn", F.row_number().over(newest_first))
        landing = ranked.where(valid & (F.col("_rn") == 1))
    else:
        landing = checked.where(valid)
    silver = landing.select(
        *[F.col(f"typed_{name}").alias(name) for name in COLUMNS],
        SOURCE_FILE,
        INGESTED_AT,
        F.lit(run_id).alias(RUN_ID),
    )
    record = F.coalesce(
        F.col(CORRUPT), F.to_json(F.struct(*COLUMNS), {"ignoreNullFields": "false"})
    )
    quarantine = checked.where(~valid).select(
        record.alias("record"),
        "reasons",
        F.array_join("reasons", "; ").alias("reason"),
        F.lit(HAND_BRONZE).alias("source_table"),
        F.lit(version).cast("bigint").alias("source_version"),
        F.col(SOURCE_FILE).alias("source_file"),
        F.lit(run_id).alias(RUN_ID),
        F.current_timestamp().alias("quarantined_at"),
    )
    return silver, quarantine


def hand_silver(spark: SparkSession, run_id: str, dedup: bool) -> Counts:
    """Conform bronze's newest version into silver + quarantine; returns the row counts."""
    spark.sql("CREATE SCHEMA IF NOT EXISTS silver")
    version, _ = last_commit(spark, HAND_BRONZE)
    silver, quarantine = hand_silver_frames(spark, version, run_id, dedup)
    quarantine.write.format("delta").mode("overwrite").option(
        "userMetadata", commit_info(run_id, HAND_QUARANTINE)
    ).saveAsTable(HAND_QUARANTINE)
    _, quarantined = last_commit(spark, HAND_QUARANTINE)
    silver.write.format("delta").mode("overwrite").option(
        "userMetadata", commit_info(run_id, HAND_SILVER)
    ).saveAsTable(HAND_SILVER)
    _, landed = last_commit(spark, HAND_SILVER)
    # Rows in: Delta answers count(*) from the version's file statistics (no data scan).
    rows_in = scalar(spark.sql(f"SELECT count(*) FROM {HAND_BRONZE} VERSION AS OF {version}"))
    duplicates = rows_in - landed - quarantined
    if duplicates < 0 or (duplicates and not dedup):
        raise BenchError(f"hand-written silver: rows in {rows_in} != {landed} + {quarantined}")
    return Counts(bronze=rows_in, silver=landed, quarantine=quarantined, duplicates=duplicates)


def run_hand(spark: SparkSession, path: str, dedup: bool, tag: str) -> SideRun:
    sc = spark.sparkContext
    groups = {"bronze": f"{tag}:hand:bronze", "silver": f"{tag}:hand:silver"}
    run_id = new_run_id(tag)
    sc.setJobGroup(groups["bronze"], "hand-written bronze")
    t0 = time.perf_counter()
    _, appended = hand_bronze(spark, path, run_id)
    t1 = time.perf_counter()
    sc.setJobGroup(groups["silver"], "hand-written silver")
    counts = hand_silver(spark, run_id, dedup)
    t2 = time.perf_counter()
    clear_job_group(spark)
    return SideRun(
        side=HAND,
        timing=Timing(bronze=t1 - t0, silver=t2 - t1, total=t2 - t0),
        reported=Counts(appended, counts.silver, counts.quarantine, counts.duplicates),
        jobs={k: jobs_in_group(spark, g) for k, g in groups.items()},
    )


# --- between and after runs (untimed) -----------------------------------------------------


def reset_tables(spark: SparkSession, warehouse: Path) -> None:
    """Start a repetition from empty tables (see :data:`LAYER_SCHEMAS`)."""
    for schema in LAYER_SCHEMAS:
        if not spark.catalog.databaseExists(schema):
            continue
        for table in spark.catalog.listTables(schema):
            spark.sql(f"DROP TABLE IF EXISTS {schema}.`{table.name}`")
        folder = warehouse / f"{schema}.db"
        if folder.is_dir():
            for child in folder.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    if spark.catalog.databaseExists(SYSTEM_SCHEMA):
        for table in spark.catalog.listTables(SYSTEM_SCHEMA):
            if table.tableType != "VIEW":
                spark.sql(f"DELETE FROM {SYSTEM_SCHEMA}.`{table.name}`")
    # A new process per run is the norm: nothing cached from the previous repetition (and
    # no stale snapshot of a dropped table, with its Delta txn ids, in Delta's cache).
    jvm = spark.sparkContext._jvm
    if jvm is not None:
        jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    spark.catalog.clearCache()


TABLES = {
    LAKEFORGE: (LF_BRONZE, LF_SILVER, LF_QUARANTINE),
    HAND: (HAND_BRONZE, HAND_SILVER, HAND_QUARANTINE),
}


def table_counts(spark: SparkSession, side: str) -> Counts:
    b, s, q = (scalar(spark.sql(f"SELECT count(*) FROM {t}")) for t in TABLES[side])
    return Counts(bronze=b, silver=s, quarantine=q, duplicates=b - s - q)


def table_schemas(spark: SparkSession, side: str) -> list[list[tuple[str, str]]]:
    return [[(c, t) for c, t in spark.table(table).dtypes] for table in TABLES[side]]


def expected_counts(data: Dataset, tpch_rows: int, dedup: bool) -> Counts:
    """What every side must land, from the input files alone."""
    return Counts(
        bronze=tpch_rows + data.duplicates + data.invalid,
        silver=tpch_rows + (0 if dedup else data.duplicates),
        quarantine=data.invalid,
        duplicates=data.duplicates if dedup else 0,
    )


def verify_rep(rep: Rep, expected: Counts, dedup: bool) -> None:
    """Both sides landed exactly the expected rows, into identical schemas."""
    problems = []
    for side in SIDES:
        counts = rep.tables[side]
        if counts != expected:
            problems.append(f"{side} tables hold {counts}, expected {expected}")
            if side == LAKEFORGE and not dedup and counts.silver < expected.silver:
                problems.append(
                    "lakeforge removed duplicate keys although --no-dedup: this lakeforge "
                    "deduplicates whenever keys are declared, so compare with dedup on "
                    "(leave out --no-dedup)"
                )
            if counts.bronze < expected.bronze:
                problems.append(f"{side}: bronze is short (ingestion log skipping files?)")
        reported = rep.runs[side].reported
        if reported != counts:
            problems.append(f"{side} reported {reported}, its tables hold {counts}")
    names = ("bronze", "silver", "quarantine")
    for name, a, b in zip(names, rep.schemas[LAKEFORGE], rep.schemas[HAND], strict=True):
        if a != b:
            problems.append(
                f"{name} schemas differ (the hand-written side must mirror lakeforge's "
                f"columns): lakeforge {a}, hand-written {b}"
            )
    if problems:
        which = f"rep {rep.number}" if rep.number else "warm-up"
        raise BenchError(f"{which}: " + "; ".join(problems))


def checksum(spark: SparkSession, table: str, columns: tuple[str, ...]) -> tuple[int, int]:
    """(rows, order-independent sum of row hashes) of ``columns`` of ``table``."""
    cols = ", ".join(f"`{c}`" for c in columns)
    row = spark.sql(
        f"SELECT count(*), coalesce(sum(CAST(xxhash64({cols}) AS DECIMAL(38,0))), 0) FROM {table}"
    ).head()
    if row is None:
        raise BenchError(f"no checksum for {table}")
    return int(row[0]), int(row[1])


def verify_contents(spark: SparkSession) -> None:
    """Same bronze, silver and quarantine contents on both sides (ids and times aside)."""
    checked = (
        (*COLUMNS, CORRUPT),  # bronze
        COLUMNS,  # silver
        ("record", "reason"),  # quarantine
    )
    for lf_table, hand_table, cols in zip(TABLES[LAKEFORGE], TABLES[HAND], checked, strict=True):
        a, b = checksum(spark, lf_table, cols), checksum(spark, hand_table, cols)
        if a != b:
            raise BenchError(f"{lf_table} {a} and {hand_table} {b} differ (rows, checksum)")


# ---------------------------------------------------------------------------------------
# Environment facts and the report
# ---------------------------------------------------------------------------------------


def meminfo_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return f"{kib / 1024**2:.1f} GiB ({kib} kB MemTotal)"
    except OSError:
        pass
    return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def delta_jar_version(project: Project) -> str:
    """From the manifest of the jar cache the session loaded (lakeforge's own lookup)."""
    from lakeforge.plan.load import load_pipeline
    from lakeforge.runtime.session import jars_dir_for

    loaded = load_pipeline(project.pipeline)
    manifest = jars_dir_for(loaded.profile, loaded.project_root) / "delta" / "MANIFEST.json"
    try:
        artifacts = json.loads(manifest.read_text())["artifacts"]
    except (OSError, ValueError, KeyError):
        return f"unknown (no {manifest})"
    return ", ".join(str(a) for a in artifacts)


def java_version() -> str:
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    except OSError:
        return "unknown"
    m = re.search(r'version "([^"]+)"', out.stderr + out.stdout)
    return m.group(1) if m else "unknown"


def lakeforge_revision() -> str:
    """Where the measured lakeforge came from: commit and whether its src/ has changes.

    Read-only git calls (``--no-optional-locks``: not even the index's stat cache is written).
    """
    import lakeforge

    checkout = Path(lakeforge.__file__).resolve().parents[2]
    if not (checkout / ".git").exists():
        return f"imported from {checkout / 'src'} (not a git checkout)"
    git = ["git", "--no-optional-locks", "-C", str(checkout)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"{checkout} (git unavailable)"
    return f"{head}" + (" + uncommitted changes in src/" if dirty else " (src/ clean)")


def versions(project: Project) -> dict[str, str]:
    from importlib.metadata import version

    import pyspark

    return {
        "python": platform.python_version(),
        "pyspark": pyspark.__version__,
        "delta-spark (PyPI)": version("delta-spark"),
        "Delta jars": delta_jar_version(project),
        "java": java_version(),
        "lakeforge": f"{version('lakeforge')} @ {lakeforge_revision()}",
    }


def display_command() -> str:
    exe = Path(sys.executable)
    shown = os.path.relpath(exe) if exe.is_relative_to(Path.cwd()) else str(exe)
    return shlex.join([shown, *sys.argv])


def loadavg() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def ratio(lf: float, hand: float) -> str:
    return f"{lf / hand:.3f}" if hand > 0 else "n/a"


@dataclass(frozen=True)
class Context:
    """What the report says besides the timings."""

    args: argparse.Namespace
    data: Dataset
    facts: dict[str, str]
    dedup_note: str
    started: str
    load_start: str


def render(reps: list[Rep], ctx: Context) -> str:
    med: dict[str, Timing] = {}
    for side in SIDES:
        runs = [r.runs[side].timing for r in reps]
        med[side] = Timing(
            bronze=statistics.median(t.bronze for t in runs),
            silver=statistics.median(t.silver for t in runs),
            total=statistics.median(t.total for t in runs),
        )
    lf, hand = med[LAKEFORGE], med[HAND]
    met = hand.total > 0 and lf.total / hand.total <= TARGET_RATIO
    counts = reps[-1].tables[LAKEFORGE]
    data, args = ctx.data, ctx.args
    lines = [f"## {ctx.started} — `{display_command()}`", ""]
    if args.reps < 3 or args.scale < 1:
        lines += [
            "> Smoke test only (scale < 1 or fewer than 3 repetitions): not a measurement.",
            "",
        ]
    lines += [
        f"- machine: {len(os.sched_getaffinity(0))} CPUs (nproc), {cpu_model()}, "
        f"memory {meminfo_total()}; load average {ctx.load_start} at start, {loadavg()} at end",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in ctx.facts.items()),
        f"- data: TPC-H lineitem scale {data.scale:g}, {len(data.tpch_files)} CSV files, "
        f"{sum(data.tpch_rows.values()):,} rows, {data.bytes / 1e6:,.1f} MB "
        f"({data.tool_version}); plus {ANOMALIES_FILE}: {data.duplicates:,} duplicate keys, "
        f"{data.invalid} invalid rows",
        f"- mode: dedup {ctx.dedup_note}; Spark {MASTER}, "
        + ", ".join(f"{k}={v}" for k, v in SPARK_CONF.items())
        + "; one untimed warm-up; order alternates (odd reps: lakeforge first)",
        f"- rows, as expected and identical on both sides in every rep: bronze {counts.bronze:,}, "
        f"silver {counts.silver:,}, quarantine {counts.quarantine:,}, duplicates removed "
        f"{counts.duplicates:,}; table schemas identical; contents checksummed equal after "
        "the last rep",
        "",
        "Seconds (wall clock):",
        "",
        "| rep | first | lakeforge bronze | lakeforge silver | lakeforge total "
        "| hand bronze | hand silver | hand total | ratio total |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reps:
        a, b = r.runs[LAKEFORGE].timing, r.runs[HAND].timing
        lines.append(
            f"| {r.number} | {r.first} | {a.bronze:.2f} | {a.silver:.2f} | {a.total:.2f} "
            f"| {b.bronze:.2f} | {b.silver:.2f} | {b.total:.2f} | {ratio(a.total, b.total)} |"
        )
    lines += [
        f"| **median** | | **{lf.bronze:.2f}** | **{lf.silver:.2f}** | **{lf.total:.2f}** "
        f"| **{hand.bronze:.2f}** | **{hand.silver:.2f}** | **{hand.total:.2f}** "
        f"| **{ratio(lf.total, hand.total)}** |",
        "",
        "Ratio lakeforge / hand-written (of the medians): "
        f"bronze **{ratio(lf.bronze, hand.bronze)}**, "
        f"silver **{ratio(lf.silver, hand.silver)}**, "
        f"total **{ratio(lf.total, hand.total)}** "
        f"(target <= {TARGET_RATIO:.2f}: {'met' if met else 'NOT met'}).",
        "",
        "Spark jobs per step (last rep): "
        + "; ".join(
            f"{side} " + ", ".join(f"{k} {v}" for k, v in reps[-1].runs[side].jobs.items())
            for side in SIDES
        )
        + ".",
        "",
    ]
    return "\n".join(lines) + "\n"


RESULTS_PREAMBLE = """\
# Benchmark results

Appended by the scripts in `bench/` (see `bench/README.md`), newest last. Each section
names the exact command that produced it; small-scale or short runs are marked as smoke
tests.

"""


def append_results(path: Path, section: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.read_text() if path.is_file() else RESULTS_PREAMBLE
    if existing and not existing.endswith("\n\n"):
        existing = existing.rstrip("\n") + "\n\n"
    path.write_text(existing + section)


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/lineitem.py",
        description="Time lakeforge's bronze + silver steps on TPC-H lineitem against "
        "hand-written PySpark + Delta, in one Spark session, alternating.",
    )
    p.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    p.add_argument("--reps", type=int, default=3, help="repetitions (default 3; 3+ to judge)")
    p.add_argument(
        "--work",
        type=Path,
        default=REPO / "bench" / "work",
        help="generated data, scratch project and lakehouse (default bench/work, git-ignored)",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=REPO / "bench" / "RESULTS.md",
        help="markdown file the results are appended to (default bench/RESULTS.md)",
    )
    p.add_argument(
        "--no-dedup",
        action="store_true",
        help="no silver deduplication (both sides); fails if lakeforge deduplicates anyway",
    )
    args = p.parse_args(argv)
    if args.scale <= 0:
        p.error("--scale must be positive")
    if args.reps < 1:
        p.error("--reps must be at least 1")
    return args


def check_config(pipeline: Path) -> None:
    """Validate the generated job before any JVM work (no Spark needed)."""
    from lakeforge.errors import ConfigError
    from lakeforge.plan.builder import build_plan
    from lakeforge.plan.load import load_pipeline

    try:
        build_plan(load_pipeline(pipeline))
    except ConfigError as exc:
        lines = "\n  ".join(exc.lines())
        raise BenchError(f"lakeforge rejects the generated job:\n  {lines}") from None


def start_session(project: Project) -> SparkSession:
    from lakeforge.plan.load import load_pipeline
    from lakeforge.runtime.session import build_session

    loaded = load_pipeline(project.pipeline)
    return build_session(loaded.profile, loaded.project_root, "lakeforge-bench-lineitem")


def one_rep(
    spark: SparkSession, project: Project, number: int, pipeline: Path, source: str, dedup: bool
) -> Rep:
    """Both sides once, from empty tables; ``number`` 0 is the warm-up."""
    first = LAKEFORGE if number % 2 == 1 else HAND
    rep = Rep(number=number, first=first)
    tag = f"rep{number}" if number else "warmup"
    reset_tables(spark, project.warehouse)
    sides: dict[str, Callable[[], SideRun]] = {
        LAKEFORGE: lambda: run_lakeforge(spark, pipeline, tag),
        HAND: lambda: run_hand(spark, source, dedup, tag),
    }
    for side in (first, HAND if first == LAKEFORGE else LAKEFORGE):
        jvm_gc(spark)
        rep.runs[side] = sides[side]()
        t = rep.runs[side].timing
        log(f"{tag} {side}: bronze {t.bronze:.2f}s, silver {t.silver:.2f}s, total {t.total:.2f}s")
    for side in SIDES:
        rep.tables[side] = table_counts(spark, side)
        rep.schemas[side] = table_schemas(spark, side)
    return rep


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, load_start = now_utc(), loadavg()
    work: Path = args.work.resolve()
    dedup = not args.no_dedup
    declare = dedup and lakeforge_declares_dedup()
    if not dedup:
        dedup_note = "off"
    elif declare:
        dedup_note = "on (lakeforge: `dedup: {order_by: [_lf_ingested_at desc]}`)"
    else:
        dedup_note = "on (lakeforge: one row per `keys`, no `dedup:` key in this version)"
    try:
        data = generate_lineitem(work, args.scale)
        project = write_project(work, data, declare)
        check_config(project.pipeline)
        check_config(project.warmup)
        log(f"{data.rows:,} rows in {len(data.tpch_files) + 1} files; project {project.root}")
        spark = start_session(project)
        try:
            log("warm-up (untimed): both sides over one TPC-H file and the anomalies")
            warm = one_rep(spark, project, 0, project.warmup, data.warmup_glob, dedup)
            first_rows = data.tpch_rows[data.tpch_files[0].name]
            verify_rep(warm, expected_counts(data, first_rows, dedup), dedup)
            expected = expected_counts(data, sum(data.tpch_rows.values()), dedup)
            reps: list[Rep] = []
            for number in range(1, args.reps + 1):
                rep = one_rep(spark, project, number, project.pipeline, data.glob, dedup)
                verify_rep(rep, expected, dedup)
                reps.append(rep)
            verify_contents(spark)
            facts = versions(project)
        finally:
            spark.stop()
    except BenchError as exc:
        log(f"FAILED: {exc}")
        return 1
    ctx = Context(args, data, facts, dedup_note, started, load_start)
    section = render(reps, ctx)
    append_results(args.results, section)
    print(section)
    log(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
