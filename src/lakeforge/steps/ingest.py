"""Ingest: raw files -> bronze, each file exactly once.

The ingestion log (``lakeforge.ingested_files``) decides what is new: a file is known by
path, size and modification time. One batch = the new files of one run:

1. log the batch's files as ``pending`` under a new batch id;
2. append them to bronze as one Delta commit with txn (``lakeforge:<table>``, batch id);
3. log them as ``committed`` with the bronze version.

A crash after 1 leaves a pending batch: the next run redoes exactly that batch first; if
the crash came after 2, Delta skips the repeated txn and we find the earlier commit. So
a rerun never duplicates and never loses a file. A rerun with nothing new commits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakeforge.errors import Code, RunError
from lakeforge.io.delta import Commit, Txn, latest_version, table_exists, write_table
from lakeforge.io.files import META_COLUMNS, read_batch, resolve_source_path
from lakeforge.io.listing import FileInfo, list_files
from lakeforge.lineage.system_tables import INGESTED_FILES, append_ingestion_events
from lakeforge.plan.steps import IngestStep
from lakeforge.results import StepResult
from lakeforge.runtime.faults import fail_during, fail_point
from lakeforge.steps.context import StepContext

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class LogEntry:
    """The latest ingestion-log event of one file."""

    path: str
    size: int
    mtime_ms: int
    batch_id: int
    status: str
    bronze_version: int | None


def load_log(spark: SparkSession, table: str) -> dict[str, LogEntry]:
    """Latest event per path for ``table`` (a small table: one row per file event)."""
    rows = spark.sql(
        f"""
        SELECT path, size, CAST(unix_millis(modification_time) AS BIGINT) AS mtime_ms,
               batch_id, status, bronze_version
        FROM (SELECT *, row_number() OVER (PARTITION BY path ORDER BY recorded_at DESC,
                       CASE status WHEN 'committed' THEN 0 ELSE 1 END) AS rn
              FROM {INGESTED_FILES} WHERE table_name = '{table}')
        WHERE rn = 1
        """
    ).collect()
    return {
        r["path"]: LogEntry(
            r["path"],
            int(r["size"]),
            int(r["mtime_ms"]),
            int(r["batch_id"]),
            r["status"],
            None if r["bronze_version"] is None else int(r["bronze_version"]),
        )
        for r in rows
    }


def _events(
    table: str, files: list[FileInfo], batch_id: int, run_id: str, status: str, version: int | None
) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC)
    return [
        (
            table,
            f.path,
            f.size,
            datetime.fromtimestamp(f.mtime_ms / 1000, UTC),
            batch_id,
            run_id,
            status,
            version,
            now,
        )
        for f in files
    ]


def check_schema(step: IngestStep, spark: SparkSession, df: DataFrame) -> bool:
    """Compare an arriving batch with the bronze table; return whether to merge schemas.

    Raises:
        RunError: ``LF-RUN-005`` naming new columns (policy ``fail``) or retyped columns.
    """
    if not table_exists(spark, step.table):
        return False
    existing = dict(spark.table(step.table).dtypes)
    arriving = dict(df.dtypes)
    new = [c for c in arriving if c not in existing]
    retyped = [
        f"{c} ({existing[c]} -> {t})"
        for c, t in arriving.items()
        if c in existing and existing[c] != t and c not in META_COLUMNS
    ]
    if retyped:
        raise RunError(
            Code.SCHEMA_CHANGED,
            f"{step.location}: {step.table}: arriving files change column types: {', '.join(retyped)}",
        )
    if new and step.spec.schema_evolution == "fail":
        raise RunError(
            Code.SCHEMA_CHANGED,
            f"{step.location}: {step.table}: arriving files have new columns {new}; "
            "set schema_evolution: add_columns to accept them",
        )
    return bool(new)


def _commit_batch(
    ctx: StepContext, step: IngestStep, files: list[FileInfo], batch_id: int, log_pending: bool
) -> Commit:
    spark = ctx.spark
    if log_pending:
        append_ingestion_events(
            spark, _events(step.table, files, batch_id, ctx.run_id, "pending", None)
        )
    fail_point(f"ingest.after_log:{step.table}")
    df = read_batch(spark, step.spec.source, files, ctx.run_id, batch_id)
    merge_schema = check_schema(step, spark, df)
    with fail_during(f"ingest.write:{step.table}"):
        commit = write_table(
            df,
            step.table,
            "append",
            ctx.run_id,
            step.table,
            merge_schema=merge_schema,
            txn=Txn(f"lakeforge:{step.table}", batch_id),
            metadata={"batch_id": batch_id, "files": len(files)},
        )
    fail_point(f"ingest.after_write:{step.table}")
    append_ingestion_events(
        spark, _events(step.table, files, batch_id, ctx.run_id, "committed", commit.version)
    )
    return commit


def run_ingest(ctx: StepContext, step: IngestStep, result: StepResult) -> None:
    spark = ctx.spark
    where = resolve_source_path(step.source_path, ctx.project_root)
    listed = list_files(spark, where)
    if not listed:
        raise RunError(
            Code.SOURCE_EMPTY,
            f"{step.location}: {step.table}: no {step.source_format} files at {where}",
        )
    log = load_log(spark, step.table)
    by_path = {f.path: f for f in listed}
    commits: list[Commit] = []

    # 1. Finish batches a crashed run left pending (same files, same batch id).
    pending: dict[int, list[FileInfo]] = {}
    for entry in log.values():
        if entry.status == "pending":
            info = FileInfo(entry.path, entry.size, entry.mtime_ms)
            pending.setdefault(entry.batch_id, []).append(info)
    for batch_id in sorted(pending):
        commits.append(
            _commit_batch(ctx, step, sorted(pending[batch_id]), batch_id, log_pending=False)
        )
    done = {p for files in pending.values() for p in (f.path for f in files)}

    # 2. New files, and files that changed under a known path.
    new: list[FileInfo] = []
    changed: list[str] = []
    for path, info in by_path.items():
        known = log.get(path)
        if path in done:
            continue
        if known is None:
            new.append(info)
        elif (known.size, known.mtime_ms) != (info.size, info.mtime_ms):
            changed.append(path)
            if step.spec.on_changed_file == "reingest":
                new.append(info)
    if changed and step.spec.on_changed_file == "fail":
        was = log[changed[0]]
        now = by_path[changed[0]]
        raise RunError(
            Code.FILE_CHANGED,
            f"{step.location}: {step.table}: {len(changed)} already-ingested file(s) changed, e.g. "
            f"{changed[0]} (size {was.size} -> {now.size}, mtime {was.mtime_ms} -> {now.mtime_ms}); "
            "set on_changed_file: reingest to load them again",
        )
    if new:
        # Batch ids only grow: past the highest the log ever gave this table.
        batch_id = max([e.batch_id for e in log.values()] + [0]) + 1
        commits.append(_commit_batch(ctx, step, sorted(new), batch_id, log_pending=True))

    result.files = sum(int((c.meta or {}).get("files", 0)) for c in commits)
    result.rows_written = sum(c.rows_written for c in commits)
    # Bronze keeps every row (malformed ones too, flagged): rows in = rows landed.
    result.rows_read = result.rows_written
    result.committed = any(c.committed_now for c in commits)
    result.version = commits[-1].version if commits else latest_version(spark, step.table)
