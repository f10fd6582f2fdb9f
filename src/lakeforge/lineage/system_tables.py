"""The system tables: Delta tables in schema ``lakeforge`` that record every run.

``runs``             a view: the latest event per run of ``run_events`` (one row per run).
``run_events``       append-only: a ``running`` row when a run starts, its final row at
                     the end. A killed run stays ``running`` until the next run of its
                     pipeline, holding the pipeline's lock, appends ``interrupted`` for it
                     (:func:`mark_interrupted`). Appends, not a MERGE: two cheap commits
                     per run instead of two table rewrites.
``table_versions``   one row per table a step read or wrote, with the Delta version and
                     the step's row accounting: lineage answers "which runs and inputs
                     produced gold.x version N" by SQL over this table.
``ingested_files``   the ingestion log: which raw file went into which bronze batch and
                     version. Append-only events (``pending`` then ``committed``); the
                     latest event per (table, path) is the file's state.
``rejected_files``   files a bronze source matched but could not ingest (unreadable, empty,
                     hidden name, outside the allowed roots), with size, mtime, reason and
                     the run that found them: one row per rejection, not per run.
``training_sets``    one row per published training set: id, table version, config hash
                     and the whole manifest as JSON (what ``reproduce`` reads back).
"""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeforge.faults import fail_during
from lakeforge.lineage.native import (
    NativeAppend,
    TableGone,
    append,
    forget,
    latest_per,
    native,
    nulls_low,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakeforge.results import RunResult, StepResult

SCHEMA = "lakeforge"
RUNS = f"{SCHEMA}.runs"
RUN_EVENTS = f"{SCHEMA}.run_events"
TABLE_VERSIONS = f"{SCHEMA}.table_versions"
INGESTED_FILES = f"{SCHEMA}.ingested_files"
QUALITY_RESULTS = f"{SCHEMA}.quality_results"
TRAINING_SETS = f"{SCHEMA}.training_sets"
REJECTED_FILES = f"{SCHEMA}.rejected_files"

DDL = {
    RUN_EVENTS: "run_id STRING NOT NULL, pipeline STRING, env STRING, config_hash STRING, "
    "code_version STRING, started_at TIMESTAMP, ended_at TIMESTAMP, status STRING, "
    "error_code STRING, error STRING, recorded_at TIMESTAMP",
    TABLE_VERSIONS: "run_id STRING NOT NULL, pipeline STRING, step STRING, table_name STRING, "
    "role STRING, version BIGINT, operation STRING, rows_in BIGINT, rows_landed BIGINT, "
    "rows_quarantined BIGINT, rows_deduplicated BIGINT, recorded_at TIMESTAMP, "
    "rows_dropped BIGINT",
    INGESTED_FILES: "table_name STRING NOT NULL, path STRING NOT NULL, size BIGINT, "
    "modification_time TIMESTAMP, batch_id BIGINT, run_id STRING, status STRING, "
    "bronze_version BIGINT, recorded_at TIMESTAMP, etag STRING, version_id STRING",
    QUALITY_RESULTS: "run_id STRING NOT NULL, pipeline STRING, table_name STRING, "
    "table_version BIGINT, suite STRING, expectation STRING, expectation_type STRING, "
    "kwargs STRING, action STRING, level STRING, environment STRING, success BOOLEAN, "
    "element_count BIGINT, unexpected_count BIGINT, unexpected_percent DOUBLE, "
    "observed_value STRING, sample ARRAY<STRING>, exception STRING, recorded_at TIMESTAMP",
    TRAINING_SETS: "id STRING NOT NULL, name STRING, table_name STRING, table_version BIGINT, "
    "created_at TIMESTAMP, config_hash STRING, run_id STRING, manifest STRING, "
    "manifest_path STRING",
    REJECTED_FILES: "table_name STRING NOT NULL, path STRING NOT NULL, size BIGINT, "
    "modification_time TIMESTAMP, reason STRING, run_id STRING, recorded_at TIMESTAMP",
}


# Columns stored exactly as they are, never masked: a raw file's path is the ingestion
# log's key. Every ${env:} value counts as a secret (lakeforge.redaction), and a raw zone
# is often named by one (a bucket: ${env:LAKEFORGE_RAW_BUCKET}); masking it here made
# every listed file unknown to the log, so each run ingested everything again.
# lakeforge.rejected_files stays redacted: it is a report, read back only to rebuild a
# lost log, where a masked path costs a file being rejected once more, not lost.
EXACT_COLUMNS: dict[str, tuple[str, ...]] = {
    INGESTED_FILES: ("path",),
}


def _column_names(table: str) -> list[str]:
    return [part.strip().split(" ", 1)[0] for part in DDL[table].split(",")]


@cache
def code_version() -> str:
    """``lakeforge <version>`` plus the git commit of a source checkout, when there is one."""
    from lakeforge.version import __version__

    sha = ""
    repo = Path(__file__).resolve().parents[3]
    if (repo / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            sha = out.stdout.strip() if out.returncode == 0 else ""
        except (OSError, subprocess.TimeoutExpired):
            sha = ""
    return f"lakeforge {__version__}" + (f" ({sha})" if sha else "")


RUNS_VIEW = (
    f"SELECT * EXCEPT (rn) FROM ("
    f"SELECT *, row_number() OVER (PARTITION BY run_id ORDER BY recorded_at DESC, "
    f"ended_at DESC NULLS LAST) AS rn FROM {RUN_EVENTS}) WHERE rn = 1"
)
# Written into schema ``lakeforge``'s properties once its tables have this DDL: a run then
# checks the tables' schemas only when lakeforge's DDL changed, instead of loading six Delta
# snapshots every run (6.8 s of a cold process's start, measured).
DDL_MARKER = "lakeforge.ddl"
DDL_VERSION = hashlib.sha256(repr((sorted(DDL.items()), RUNS_VIEW)).encode()).hexdigest()[:16]


def _ddl_marked(spark: SparkSession) -> bool:
    rows = spark.sql(f"DESCRIBE SCHEMA EXTENDED {SCHEMA}").collect()
    props = next((str(r[1]) for r in rows if str(r[0]).lower() == "properties"), "")
    return f"({DDL_MARKER},{DDL_VERSION})" in props


def ensure_system_tables(spark: SparkSession) -> None:
    """Create schema ``lakeforge``, its tables and the ``runs`` view if missing (idempotent).

    Tables an older lakeforge made get the columns this one appends (at the end); that
    check reads each table's schema, so it runs only while the schema's DDL marker is not
    this lakeforge's (one metastore lookup otherwise). A missing table is always noticed:
    the table names are listed every time (one metastore call).
    """
    if not spark.catalog.databaseExists(SCHEMA):
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    present = {str(r["tableName"]).lower() for r in spark.sql(f"SHOW TABLES IN {SCHEMA}").collect()}
    marked = _ddl_marked(spark)
    for table, columns in DDL.items():
        if table.split(".", 1)[1] not in present:
            forget(spark, table)  # dropped and made anew: look it up again
            spark.sql(f"CREATE TABLE IF NOT EXISTS {table} ({columns}) USING DELTA")
            continue
        if marked:
            continue
        # Tables made by an older lakeforge: add the columns this one appends (at the end).
        have = {f.name for f in spark.table(table).schema.fields}
        missing = [c.strip() for c in columns.split(", ") if c.split()[0] not in have]
        if missing:
            spark.sql(f"ALTER TABLE {table} ADD COLUMNS ({', '.join(missing)})")
    if RUNS.split(".", 1)[1] not in present:
        spark.sql(f"CREATE VIEW IF NOT EXISTS {RUNS} AS {RUNS_VIEW}")
    if not marked:
        spark.sql(f"ALTER SCHEMA {SCHEMA} SET DBPROPERTIES ('{DDL_MARKER}' = '{DDL_VERSION}')")


def _append(
    spark: SparkSession, table: str, rows: list[tuple[Any, ...]], point: str | None = None
) -> None:
    """Append ``rows`` as one Delta commit; fail point ``system.append:<point>`` (default:
    the table's name without ``lakeforge.``) kills the process entering, or inside, the
    commit."""
    if not rows:
        return
    from lakeforge.redaction import redact_obj

    # System tables are outputs like any other: no resolved ${env:} value reaches them,
    # except in the columns that identify a raw file (see EXACT_COLUMNS).
    exact = {
        i for i, name in enumerate(_column_names(table)) if name in EXACT_COLUMNS.get(table, ())
    }
    rows = [tuple(v if i in exact else redact_obj(v) for i, v in enumerate(r)) for r in rows]
    with fail_during(f"system.append:{point or table.split('.', 1)[1]}"):
        append(spark, table, DDL[table], rows)


def _ts(iso: str) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


def record_run(spark: SparkSession, result: RunResult) -> None:
    """Append the run's current state (called when it starts and when it ends)."""
    row = (
        result.run_id,
        result.pipeline,
        result.env,
        result.config_hash,
        code_version(),
        _ts(result.started_at),
        _ts(result.ended_at),
        result.status,
        result.error_code,
        result.error,
        datetime.now(UTC),
    )
    _append(spark, RUN_EVENTS, [row], "run_end" if result.ended_at else "run_start")


def mark_interrupted(spark: SparkSession, pipeline: str, run_id: str) -> list[str]:
    """Mark the pipeline's runs still ``running`` (other than ``run_id``) ``interrupted``.

    Call only while holding the pipeline's lock (:mod:`lakeforge.runtime.lock`): then no
    other process of the project runs the pipeline, so such a run's process is gone (killed,
    or its machine died). Its row keeps its start; ``ended_at`` stays unknown (NULL).

    Returns:
        The run ids marked, oldest first.
    """
    stale = _stale_runs(spark, pipeline, run_id)
    now = datetime.now(UTC)
    rows = [
        (
            r["run_id"],
            r["pipeline"],
            r["env"],
            r["config_hash"],
            r["code_version"],
            r["started_at"],
            None,
            "interrupted",
            None,
            f"the run's process ended without recording an end; found by run {run_id}",
            now,
        )
        for r in stale
    ]
    _append(spark, RUN_EVENTS, rows, "run_interrupted")
    return [r[0] for r in rows]


_RUN_COLUMNS = [
    "run_id",
    "pipeline",
    "env",
    "config_hash",
    "code_version",
    "started_at",
    "ended_at",
    "status",
    "recorded_at",
]


def _stale_runs(spark: SparkSession, pipeline: str, run_id: str) -> list[dict[str, Any]]:
    """The pipeline's runs whose latest event is ``running`` (other than ``run_id``),
    oldest first: the ``runs`` view's rule (newest ``recorded_at``, then a known
    ``ended_at``, wins) over this pipeline's events only. A handful of rows, never
    data-sized: read by delta-rs where it can (no Spark job), else by Spark."""
    where = native(spark, RUN_EVENTS)
    if where is not None:
        try:
            return _stale_native(where, pipeline, run_id)
        except TableGone:
            forget(spark, RUN_EVENTS)
    return _stale_spark(spark, pipeline, run_id)


def _stale_native(where: NativeAppend, pipeline: str, run_id: str) -> list[dict[str, Any]]:
    events = where.read(RUN_EVENTS, _RUN_COLUMNS, [("pipeline", "=", pipeline)]).to_pylist()
    latest = latest_per(
        events, "run_id", lambda e: (*nulls_low(e["recorded_at"]), *nulls_low(e["ended_at"]))
    )
    stale = [e for e in latest.values() if e["status"] == "running" and e["run_id"] != run_id]
    return sorted(stale, key=lambda e: (*nulls_low(e["started_at"]), e["run_id"]))


def _stale_spark(spark: SparkSession, pipeline: str, run_id: str) -> list[dict[str, Any]]:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    # The pipeline filter goes to Delta first (file statistics skip the other pipelines'
    # appends), instead of windowing the whole run history and filtering after.
    newest = Window.partitionBy("run_id").orderBy(
        F.col("recorded_at").desc(), F.col("ended_at").desc_nulls_last()
    )
    return [
        r.asDict()
        for r in spark.table(RUN_EVENTS)
        .where(F.col("pipeline") == pipeline)
        .withColumn("_rn", F.row_number().over(newest))
        .where((F.col("_rn") == 1) & (F.col("status") == "running") & (F.col("run_id") != run_id))
        .orderBy("started_at", "run_id")
        .collect()
    ]


def record_step(spark: SparkSession, pipeline: str, run_id: str, step: StepResult) -> None:
    """One row per table the step read (role ``read``) or wrote (role ``write``)."""
    now = datetime.now(UTC)
    rows: list[tuple[Any, ...]] = []
    for table, version in step.inputs.items():
        rows.append(
            (
                run_id,
                pipeline,
                step.table,
                table,
                "read",
                version,
                step.kind,
                None,
                None,
                None,
                None,
                now,
                None,
            )
        )
    counts = (step.rows_read, step.rows_written, step.rows_quarantined, step.rows_deduplicated)
    if step.version is not None and step.committed:
        rows.append(
            (
                run_id,
                pipeline,
                step.table,
                step.table,
                "write",
                step.version,
                step.kind,
                *counts,
                now,
                step.rows_dropped,
            )
        )
    if step.quarantine_version is not None and step.quarantine_committed:
        rows.append(
            (
                run_id,
                pipeline,
                step.table,
                f"{step.table}__quarantine",
                "write",
                step.quarantine_version,
                "quarantine",
                step.rows_quarantined,
                step.rows_quarantined,
                0,
                0,
                now,
                0,
            )
        )
    _append(spark, TABLE_VERSIONS, rows)


def append_quality_results(spark: SparkSession, rows: list[tuple[Any, ...]]) -> None:
    """Append expectation results (see :data:`DDL` for the column order)."""
    _append(spark, QUALITY_RESULTS, rows)


def append_ingestion_events(spark: SparkSession, rows: list[tuple[Any, ...]]) -> None:
    """Append ingestion-log events (see :data:`DDL` for the column order)."""
    _append(spark, INGESTED_FILES, rows)


def append_rejected_files(spark: SparkSession, rows: list[tuple[Any, ...]]) -> None:
    """Record rejected raw files (see :data:`DDL` for the column order)."""
    _append(spark, REJECTED_FILES, rows)


def append_training_set(spark: SparkSession, row: tuple[Any, ...]) -> None:
    """Register a published training set (see :data:`DDL` for the column order)."""
    _append(spark, TRAINING_SETS, [row])
