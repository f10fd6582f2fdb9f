"""Ingest: raw files -> bronze, each file exactly once, and no file stuck or lost silently.

The ingestion log (``lakeforge.ingested_files``) decides what is new: a file is known by
path, size and modification time; its latest event is its state (:class:`Status`). One
batch = the new files of one run:

1. log the batch's files as ``pending`` under a new batch id;
2. read them (:func:`lakeforge.io.files.read_batch`): a file that cannot be read or parsed
   as a whole is recorded in ``lakeforge.rejected_files`` and logged ``rejected``;
3. append the readable rest to bronze as one Delta commit with txn (``lakeforge:<table>``,
   batch id), and check rows written = rows counted from the files (``LF-RUN-002``);
4. log them as ``committed`` with the bronze version.

A crash after 1 leaves a pending batch: the next run redoes exactly that batch first; if
the crash came after 3, Delta holds the txn and we find the earlier commit without reading
the files again. A pending file that vanished meanwhile is logged ``vanished`` (with a
printed message) and the rest of its batch lands. A rerun with nothing new commits nothing.

Files the listing will not read (hidden names, outside the allowed roots) are rejected
once, like unreadable ones. A rejected or skipped file stays out until an operator says
otherwise: :func:`retry_file` makes it eligible again (re-read even if fixed in place),
:func:`skip_file` gives up on a pending or rejected file, :func:`repair` resolves what
needs no decision (the ``lakeforge ingest`` / ``runs repair`` commands).

The log is cross-checked with bronze's own Delta history at the start of each ingest
(:func:`reconcile`): the last txn version Delta recorded for ``lakeforge:<table>`` must
equal the log's last committed (or pending) batch. Only when they disagree is bronze
scanned: a missing or truncated log is rebuilt from bronze's ``_lf_source_*`` columns
(with a printed warning), and a log that claims batches Delta never committed fails with
``LF-RUN-009``. Batch ids never restart at or below what Delta already recorded.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from lakeforge.config.models import S3Settings
from lakeforge.config.roots import resolve_roots
from lakeforge.errors import Code, RunError
from lakeforge.faults import fail_during, fail_point
from lakeforge.io import pinned
from lakeforge.io.delta import (
    RECENT,
    Commit,
    Txn,
    find_commit,
    latest_version,
    parse_metadata,
    recent_commit_infos,
    table_exists,
    write_table,
)
from lakeforge.io.files import (
    META_COLUMNS,
    META_SOURCE_FILE,
    MISSING_KEY,
    comparable_path,
    read_batch,
    resolve_source_path,
    with_object_versions,
)
from lakeforge.io.listing import FileInfo, Skipped, list_source, with_versions
from lakeforge.io.s3 import client as s3_client
from lakeforge.lineage.native import (
    EPOCH,
    NativeAppend,
    TableGone,
    forget,
    latest_per,
    native,
    nulls_low,
)
from lakeforge.lineage.system_tables import (
    INGESTED_FILES,
    REJECTED_FILES,
    append_ingestion_events,
    append_rejected_files,
)
from lakeforge.plan.steps import IngestStep
from lakeforge.results import StepResult
from lakeforge.steps.context import StepContext

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class Status(StrEnum):
    """A file's state in the ingestion log: the status of its latest event."""

    PENDING = "pending"  # in a batch not yet known committed
    COMMITTED = "committed"  # in bronze, at ``bronze_version``
    REJECTED = "rejected"  # cannot be ingested as it is (see lakeforge.rejected_files)
    SKIPPED = "skipped"  # an operator gave up on it (``lakeforge ingest skip``)
    VANISHED = "vanished"  # was pending, then disappeared from the source
    RETRY = "retry"  # an operator made it eligible again (``lakeforge ingest retry``)


# States a run leaves alone until an operator decides (retry or skip).
HELD = (Status.REJECTED, Status.SKIPPED)


@dataclass(frozen=True)
class LogEntry:
    """The latest ingestion-log event of one file."""

    path: str
    size: int
    mtime_ms: int
    batch_id: int
    status: str
    bronze_version: int | None
    etag: str | None = None  # object storage only
    version_id: str | None = None


def say(message: str) -> None:
    """A line for the operator on stderr (warnings and resolutions, not errors)."""
    print(f"lakeforge: {message}", file=sys.stderr, flush=True)


def app_id(table: str) -> str:
    """The Delta txn app id of ``table``'s ingest commits."""
    return f"lakeforge:{table}"


def load_log(spark: SparkSession, table: str) -> dict[str, LogEntry]:
    """Latest event per path for ``table`` (a small table: one row per file event).

    Read by delta-rs where the log is on local disk or S3 (no Spark job: 20 ms against
    0.5 s a step, measured), else by Spark; the same rule either way: the newest
    ``recorded_at`` wins, and at a tie ``committed`` wins over ``pending``.
    """
    where = native(spark, INGESTED_FILES)
    if where is not None:
        try:
            return _latest_native(where, table)
        except TableGone:
            forget(spark, INGESTED_FILES)
    return _latest_spark(spark, table)


def _latest_spark(spark: SparkSession, table: str) -> dict[str, LogEntry]:
    rows = spark.sql(
        f"""
        SELECT path, size, CAST(unix_millis(modification_time) AS BIGINT) AS mtime_ms,
               batch_id, status, bronze_version, etag, version_id
        FROM (SELECT *, row_number() OVER (PARTITION BY path ORDER BY recorded_at DESC,
                       CASE status WHEN 'committed' THEN 0 ELSE 1 END) AS rn
              FROM {INGESTED_FILES} WHERE table_name = '{table}')
        WHERE rn = 1
        """
    ).collect()
    return {r["path"]: _entry(r["path"], r["mtime_ms"], r.asDict()) for r in rows}


_LOG_COLUMNS = [
    "path",
    "size",
    "modification_time",
    "batch_id",
    "status",
    "bronze_version",
    "etag",
    "version_id",
    "recorded_at",
]


def _latest_native(where: NativeAppend, table: str) -> dict[str, LogEntry]:
    events = where.read(INGESTED_FILES, _LOG_COLUMNS, [("table_name", "=", table)]).to_pylist()
    latest = latest_per(
        events, "path", lambda e: (*nulls_low(e["recorded_at"]), e["status"] == "committed")
    )
    out = {}
    for path, e in latest.items():
        stamp = e["modification_time"]
        mtime_ms = None if stamp is None else (stamp - EPOCH) // timedelta(milliseconds=1)
        out[path] = _entry(path, mtime_ms, e)
    return out


def _entry(path: str, mtime_ms: int | None, r: dict[str, Any]) -> LogEntry:
    return LogEntry(
        path,
        int(r["size"] or 0),
        int(mtime_ms or 0),
        int(r["batch_id"] or 0),
        r["status"],
        None if r["bronze_version"] is None else int(r["bronze_version"]),
        r["etag"],
        r["version_id"],
    )


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
            str(status),
            version,
            now,
            f.etag,
            f.version_id,
        )
        for f in files
    ]


def _info(entry: LogEntry) -> FileInfo:
    return FileInfo(entry.path, entry.size, entry.mtime_ms, entry.etag, entry.version_id)


def record_rejected(
    spark: SparkSession,
    table: str,
    rejected: list[tuple[FileInfo, str]],
    batch_id: int,
    run_id: str,
) -> None:
    """``lakeforge.rejected_files`` first (the operator's view), then the log's ``rejected``."""
    if not rejected:
        return
    now = datetime.now(UTC)
    append_rejected_files(
        spark,
        [
            (
                table,
                f.path,
                f.size,
                datetime.fromtimestamp(f.mtime_ms / 1000, UTC),
                reason,
                run_id,
                now,
            )
            for f, reason in rejected
        ],
    )
    append_ingestion_events(
        spark, _events(table, [f for f, _ in rejected], batch_id, run_id, Status.REJECTED, None)
    )
    shown = "; ".join(f"{f.path.rsplit('/', 1)[-1]}: {reason}" for f, reason in rejected[:5])
    more = f" (and {len(rejected) - 5} more)" if len(rejected) > 5 else ""
    say(
        f"{table}: {len(rejected)} file(s) rejected, the rest lands: {shown}{more}; see "
        f"{REJECTED_FILES}, then 'lakeforge ingest retry FILE' or 'lakeforge ingest skip FILE'"
    )


def check_schema(step: IngestStep, spark: SparkSession, df: DataFrame) -> bool:
    """Compare an arriving batch with the bronze table; return whether to merge schemas.

    A lineage column the table predates (e.g. ``_lf_missing_columns``) is added whatever
    the policy: it is lakeforge's, not the feed's.

    Raises:
        RunError: ``LF-RUN-005`` naming new columns (policy ``fail``) or retyped columns.
    """
    if not table_exists(spark, step.table):
        return False
    existing = dict(spark.table(step.table).dtypes)
    arriving = dict(df.dtypes)
    new_meta = [c for c in arriving if c not in existing and c in META_COLUMNS]
    new = [c for c in arriving if c not in existing and c not in META_COLUMNS]
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
    return bool(new or new_meta)


# --- the log against bronze's Delta history ------------------------------------------


def _history(
    spark: SparkSession, table: str, limit: int | None
) -> list[tuple[int, dict[str, Any]]]:
    from delta.tables import DeltaTable

    if limit:  # the newest commits' own log files: no DataFrame, no job
        recent = recent_commit_infos(spark, table, limit)
        if recent is not None:
            return [(int(r["version"]), parse_metadata(r["userMetadata"])) for r in recent]
    dt = DeltaTable.forName(spark, table)
    hist = dt.history(limit) if limit else dt.history()
    return [
        (int(r["version"]), parse_metadata(r["userMetadata"]))
        for r in hist.select("version", "userMetadata").collect()
    ]


def _txn_of(meta: dict[str, Any], app: str) -> int | None:
    txn = meta.get("txn")
    if isinstance(txn, list) and len(txn) == 2 and txn[0] == app:
        return int(txn[1])
    return None


def delta_txn(spark: SparkSession, table: str) -> int | None:
    """The last batch id bronze's Delta history recorded for ``lakeforge:<table>``.

    Read from the newest commits' ``userMetadata`` (the txn pair ``write_table`` records
    with each ingest commit): normally the first commit looked at, so this costs one read
    of the newest commit files, not a state reconstruction. None: no table, or no batch.
    """
    if not table_exists(spark, table):
        return None
    app = app_id(table)
    recent = _history(spark, table, RECENT)
    for _, meta in recent:  # newest first
        txn = _txn_of(meta, app)
        if txn is not None:
            return txn
    if len(recent) < RECENT:  # that was the whole history
        return None
    for _, meta in _history(spark, table, None)[RECENT:]:
        txn = _txn_of(meta, app)
        if txn is not None:
            return txn
    return None


@dataclass
class Reconciled:
    """What :func:`reconcile` found: the (possibly rebuilt) log and Delta's last batch."""

    log: dict[str, LogEntry]
    delta_batch: int | None
    rebuilt: int = 0  # files logged ``committed`` again from bronze
    notes: list[str] = field(default_factory=list)


def reconcile(spark: SparkSession, table: str, run_id: str, where: str = "") -> Reconciled:
    """Cross-check the ingestion log of ``table`` with bronze's Delta history.

    Cheap when they agree: Delta's last txn version equals the log's last committed batch
    (or a pending batch a crashed run left, which the ingest then finishes). Otherwise
    bronze is scanned for its distinct source files.

    Returns:
        The log to use. A log behind Delta (missing, truncated) is rebuilt from bronze
        first: its files logged ``committed`` with their batch ids and versions.

    Raises:
        RunError: ``LF-RUN-009`` when the log says batches were committed that bronze's
            Delta history does not hold (e.g. bronze dropped or replaced).
    """
    log = load_log(spark, table)
    delta = delta_txn(spark, table)
    committed = [e for e in log.values() if e.status == Status.COMMITTED]
    log_batch = max((e.batch_id for e in committed), default=None)
    pending = {e.batch_id for e in log.values() if e.status == Status.PENDING}
    if log_batch is not None and (delta is None or log_batch > delta):
        claimed = sorted(e.path for e in committed if delta is None or e.batch_id > delta)
        held = "no batch" if delta is None else f"batches up to {delta}"
        raise RunError(
            Code.INGEST_LOG_MISMATCH,
            f"{where}{table}: the ingestion log says batch {log_batch} was committed, but "
            f"bronze's Delta history holds {held}; {len(claimed)} file(s) logged committed "
            f"are not in bronze, e.g. {claimed[0]}",
            hint=f"if {table} was dropped or replaced on purpose, delete its rows from "
            f"{INGESTED_FILES} and run again to ingest every file anew",
        )
    known = max([b for b in pending if delta is None or b <= delta] + [log_batch or 0])
    if delta is None or delta == known:
        return Reconciled(log, delta)
    # Delta holds batches the log does not know as committed: rebuild from bronze.
    rebuilt = _rebuild_from_bronze(spark, table, log, run_id)
    note = (
        f"warning: {table}: the ingestion log was behind bronze's Delta history (log batch "
        f"{log_batch or 0}, Delta batch {delta}): {rebuilt} file(s) logged committed again "
        f"from bronze's own _lf_source_* columns; files not in bronze stay eligible"
    )
    say(note)
    return Reconciled(load_log(spark, table), delta, rebuilt, [note])


def _rebuild_from_bronze(
    spark: SparkSession, table: str, log: dict[str, LogEntry], run_id: str
) -> int:
    """Log every source file bronze holds and the log lacks as ``committed``; the files'
    former rejections are restored from ``lakeforge.rejected_files``. Returns the count."""
    versions: dict[int, int] = {}
    app = app_id(table)
    for version, meta in _history(spark, table, None):
        txn = _txn_of(meta, app)
        if txn is not None:
            versions.setdefault(txn, version)  # newest first: a repeat keeps the newest
    rows = spark.sql(
        f"""
        SELECT _lf_source_file AS path, max(_lf_source_size) AS size,
               CAST(max(unix_millis(_lf_source_mtime)) AS BIGINT) AS mtime_ms,
               max(_lf_batch_id) AS batch_id
        FROM {table} GROUP BY _lf_source_file
        """
    ).collect()  # one row per raw file bronze ever took: the log's own size
    by_batch: dict[int, list[FileInfo]] = {}
    in_bronze: set[str] = set()
    for r in rows:
        path = comparable_path(str(r["path"]))
        in_bronze.add(path)
        batch = int(r["batch_id"])
        entry = log.get(path)
        if entry is not None and entry.status == Status.COMMITTED and entry.batch_id == batch:
            continue
        info = FileInfo(path, int(r["size"] or 0), int(r["mtime_ms"] or 0))
        by_batch.setdefault(batch, []).append(info)
    for batch, files in sorted(by_batch.items()):
        append_ingestion_events(
            spark, _events(table, files, batch, run_id, Status.COMMITTED, versions.get(batch))
        )
    # Rejections the log lost: the file stays held instead of being rejected again.
    lost = spark.sql(
        f"""
        SELECT path, max(size) AS size,
               CAST(max(unix_millis(modification_time)) AS BIGINT) AS mtime_ms
        FROM {REJECTED_FILES} WHERE table_name = '{table}' GROUP BY path
        """
    ).collect()
    restore = [
        FileInfo(r["path"], int(r["size"] or 0), int(r["mtime_ms"] or 0))
        for r in lost
        if r["path"] not in in_bronze and r["path"] not in log
    ]
    append_ingestion_events(spark, _events(table, restore, 0, run_id, Status.REJECTED, None))
    return sum(len(f) for f in by_batch.values())


# --- the step ---------------------------------------------------------------------------


@dataclass
class _Landed:
    """One batch's outcome: the commit (None: nothing readable) and the rows counted."""

    commit: Commit | None
    rows_in: int
    files: int


def _commit_batch(
    ctx: StepContext, step: IngestStep, files: list[FileInfo], batch_id: int, log_pending: bool
) -> _Landed:
    spark = ctx.spark
    if log_pending:
        append_ingestion_events(
            spark, _events(step.table, files, batch_id, ctx.run_id, Status.PENDING, None)
        )
    fail_point(f"ingest.after_log:{step.table}")
    # Pinned object versions are read from staged copies (io/pinned.py); the rows, the
    # log and the rejections name the original keys and versions.
    staged = _stage(ctx, files)
    read = read_batch(
        spark, step.spec.source, pinned.as_staged(files, staged), ctx.run_id, batch_id, step.table
    )
    if staged:
        read.files = pinned.original(read.files, staged)
        read.rejected = [replace(r, file=staged.get(r.file.path, r.file)) for r in read.rejected]
        read.df = pinned.original_paths(read.df, staged, META_SOURCE_FILE)
    # Rejections are recorded before the write: a crash after the commit must not find
    # them among the batch's pending files and log them committed.
    record_rejected(
        spark, step.table, [(r.file, r.reason) for r in read.rejected], batch_id, ctx.run_id
    )
    if not read.files:
        _unstage(ctx, staged)
        return _Landed(None, 0, 0)
    df = with_object_versions(read.df, read.files)
    merge_schema = check_schema(step, spark, df)
    with fail_during(f"ingest.write:{step.table}"):
        commit = write_table(
            df,
            step.table,
            "append",
            ctx.run_id,
            step.table,
            merge_schema=merge_schema,
            txn=Txn(app_id(step.table), batch_id),
            # Silver reads what rows may lack from here, not from every row (io/files.py).
            metadata={"batch_id": batch_id, "files": len(read.files), MISSING_KEY: read.lacks},
        )
    fail_point(f"ingest.after_write:{step.table}")
    _unstage(ctx, staged)
    # The log tells the truth (these files are in bronze) before a mismatch is raised.
    append_ingestion_events(
        spark,
        _events(step.table, read.files, batch_id, ctx.run_id, Status.COMMITTED, commit.version),
    )
    if commit.committed_now and commit.rows_written != read.source_rows:
        raise RunError(
            Code.ROW_ACCOUNTING,
            f"{step.location}: {step.table}: batch {batch_id} read {read.source_rows} rows from "
            f"{len(read.files)} file(s) but bronze version {commit.version} landed "
            f"{commit.rows_written}",
        )
    rows_in = read.source_rows if commit.committed_now else commit.rows_written
    return _Landed(commit, rows_in, len(read.files))


def _stage(ctx: StepContext, files: list[FileInfo]) -> dict[str, FileInfo]:
    if not any(f.pinned for f in files):
        return {}
    settings = _object_store(ctx)
    return pinned.stage(s3_client(settings), settings, files)


def _unstage(ctx: StepContext, staged: dict[str, FileInfo]) -> None:
    if staged:
        pinned.unstage(s3_client(_object_store(ctx)), staged)


def _object_store(ctx: StepContext) -> S3Settings:
    # An s3a:// source implies an s3 section (config/models.Profile adds the defaults).
    return ctx.s3 if ctx.s3 is not None else S3Settings()


def _finish_pending(
    ctx: StepContext,
    step: IngestStep,
    batch_id: int,
    files: list[FileInfo],
    present: set[str],
    delta_batch: int | None,
) -> _Landed:
    """Finish a batch a crashed run left pending: find its commit, or land what is left."""
    spark = ctx.spark
    if delta_batch is not None and batch_id <= delta_batch:
        earlier = find_commit(spark, step.table, txn=[app_id(step.table), batch_id])
        if earlier is not None:  # committed before the crash: only the log is behind
            append_ingestion_events(
                spark,
                _events(step.table, files, batch_id, ctx.run_id, Status.COMMITTED, earlier.version),
            )
            files_in = int((earlier.meta or {}).get("files", len(files)))
            return _Landed(earlier, earlier.rows_written, files_in)
    gone = [f for f in files if f.path not in present]
    if gone:
        append_ingestion_events(
            spark, _events(step.table, gone, batch_id, ctx.run_id, Status.VANISHED, None)
        )
        names = ", ".join(f.path for f in gone[:5])
        say(
            f"{step.table}: pending batch {batch_id}: {len(gone)} file(s) no longer exist and "
            f"are logged 'vanished' ({names}); the rest of the batch lands"
        )
    rest = [f for f in files if f.path in present]
    if not rest:
        return _Landed(None, 0, 0)
    return _commit_batch(ctx, step, rest, batch_id, log_pending=False)


def run_ingest(ctx: StepContext, step: IngestStep, result: StepResult) -> None:
    spark = ctx.spark
    where = resolve_source_path(step.source_path, ctx.project_root)
    roots = resolve_roots(ctx.project_root, step.allowed_roots)
    listed, skipped = list_source(spark, where, roots)
    pins = step.spec.source.versions
    if pins:
        # A pinned version replaces the listed (latest) one, and may be of a deleted key.
        settings = _object_store(ctx)
        chosen = pinned.pinned_files(s3_client(settings), settings, pins)
        at = {f.path for f in chosen}
        listed = sorted([f for f in listed if f.path not in at] + chosen)
    if not listed and not skipped:
        raise RunError(
            Code.SOURCE_EMPTY,
            f"{step.location}: {step.table}: no {step.source_format} files at {where}",
        )
    state = reconcile(spark, step.table, ctx.run_id, f"{step.location}: ")
    log = state.log
    by_path = {f.path: f for f in listed}
    skipped_by_path = {s.file.path: s for s in skipped}
    present = set(by_path) | set(skipped_by_path)
    landed: list[_Landed] = []

    # 1. Finish batches a crashed run left pending (same files, same batch id).
    pending: dict[int, list[FileInfo]] = {}
    for entry in log.values():
        if entry.status == Status.PENDING:
            pending.setdefault(entry.batch_id, []).append(_info(entry))
    pending = {b: pinned.apply_pins(fs, pins) for b, fs in pending.items()}
    for batch_id in sorted(pending):
        files = sorted(pending[batch_id])
        landed.append(_finish_pending(ctx, step, batch_id, files, present, state.delta_batch))
    done = {f.path for files in pending.values() for f in files}

    # 2. Files the listing will not read: rejected once (a retry re-evaluates them, so a
    # hidden name is rejected again: Spark's reader ignores such files, rename them).
    reject: list[Skipped] = []
    new: list[FileInfo] = []
    for path, s in skipped_by_path.items():
        known = log.get(path)
        if path in done:
            continue
        if known is None or known.status in (Status.RETRY, Status.VANISHED):
            reject.append(s)
    record_rejected(spark, step.table, [(s.file, s.reason) for s in reject], 0, ctx.run_id)

    # 3. New files, retried ones, and files that changed under a known path.
    changed: list[str] = []
    for path, info in by_path.items():
        known = log.get(path)
        if path in done or (known is not None and known.status in HELD):
            continue
        if known is None or known.status in (Status.RETRY, Status.VANISHED):
            new.append(info)
        elif (known.size, known.mtime_ms) != (info.size, info.mtime_ms) or (
            # A new object version under the same key, even within the same second.
            known.etag is not None and info.etag is not None and known.etag != info.etag
        ):
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
        # Batch ids only grow: past the highest the log or bronze's Delta history has seen.
        batch_id = max([e.batch_id for e in log.values()] + [state.delta_batch or 0, 0]) + 1
        # Object storage: each new file's version id, recorded in the log and in bronze.
        new = with_versions(spark, sorted(new))
        landed.append(_commit_batch(ctx, step, new, batch_id, log_pending=True))

    commits = [x.commit for x in landed if x.commit is not None]
    if not commits and not table_exists(spark, step.table):
        raise RunError(
            Code.SOURCE_EMPTY,
            f"{step.location}: {step.table}: no readable {step.source_format} files at {where} "
            f"({len(listed) + len(skipped)} matched; the rejected ones are in {REJECTED_FILES})",
        )
    result.files = sum(x.files for x in landed)
    result.rows_written = sum(c.rows_written for c in commits)
    # Rows in: counted from the files by the reader (a batch Delta already held: its rows).
    result.rows_read = sum(x.rows_in for x in landed)
    result.committed = any(c.committed_now for c in commits)
    result.version = commits[-1].version if commits else latest_version(spark, step.table)


# --- operator decisions (``lakeforge ingest retry|skip``, ``lakeforge runs repair``) ----


@dataclass(frozen=True)
class Match:
    """A file named by an operator, as the ingestion log knows it."""

    table: str
    entry: LogEntry


def _candidates(file: str) -> set[str]:
    """The forms a path the operator typed may have in the log (qualified by Hadoop)."""
    import os

    if "://" in file or file.startswith("file:"):
        return {comparable_path(file)}
    absolute = os.path.abspath(os.path.expanduser(file))
    return {f"file:{absolute}", absolute, f"file:{os.path.realpath(absolute)}"}


def find_file(spark: SparkSession, file: str, table: str | None = None) -> Match:
    """The log's latest entry for ``file`` (a path as typed, or as the log spells it).

    Raises:
        RunError: ``LF-RUN-010`` when no table's log knows the file, or ``table`` is
            needed to choose between several.
    """
    forms = _candidates(file)
    quoted = ", ".join("'" + f.replace("'", "''") + "'" for f in sorted(forms))
    scope = f"AND table_name = '{table}'" if table else ""
    tables = sorted(
        r["table_name"]
        for r in spark.sql(
            f"SELECT DISTINCT table_name FROM {INGESTED_FILES} WHERE path IN ({quoted}) {scope}"
        ).collect()
    )
    if not tables:
        raise RunError(
            Code.INGEST_FILE_UNKNOWN,
            f"{file}: the ingestion log{f' of {table}' if table else ''} does not know this file",
            hint="give the path as listed in lakeforge.ingested_files or lakeforge.rejected_files",
        )
    if len(tables) > 1:
        raise RunError(
            Code.INGEST_FILE_UNKNOWN,
            f"{file}: several tables ingest this file ({', '.join(tables)}); choose one with --table",
        )
    log = load_log(spark, tables[0])
    entry = next(log[p] for p in sorted(forms) if p in log)
    return Match(tables[0], entry)


@dataclass(frozen=True)
class Decision:
    """What an operator command did: the file, its status before and after."""

    table: str
    path: str
    before: str
    after: str
    message: str


def retry_file(spark: SparkSession, file: str, run_id: str, table: str | None = None) -> Decision:
    """Make a rejected, skipped or vanished file eligible again: the next run reads it (as
    it is then: a file fixed in place is read anew, not ``LF-RUN-004``).

    Raises:
        RunError: ``LF-RUN-010`` for a file the log does not know; ``LF-RUN-001`` for a
            file that is committed or pending (nothing to retry).
    """
    m = find_file(spark, file, table)
    e = m.entry
    if e.status in (Status.COMMITTED, Status.PENDING, Status.RETRY):
        raise RunError(
            Code.STEP_FAILED,
            f"{e.path}: {m.table}: the file is {e.status}, not rejected or skipped: nothing to retry",
        )
    append_ingestion_events(spark, _events(m.table, [_info(e)], 0, run_id, Status.RETRY, None))
    return Decision(
        m.table, e.path, e.status, Status.RETRY, "the next run of its pipeline reads it again"
    )


def skip_file(spark: SparkSession, file: str, run_id: str, table: str | None = None) -> Decision:
    """Give up on a pending, rejected or retried file: logged ``skipped`` with ``run_id``.

    Raises:
        RunError: ``LF-RUN-010`` for a file the log does not know; ``LF-RUN-001`` for a
            committed file, or a pending one whose batch bronze already holds.
    """
    m = find_file(spark, file, table)
    e = m.entry
    if e.status in (Status.COMMITTED, Status.SKIPPED):
        raise RunError(Code.STEP_FAILED, f"{e.path}: {m.table}: the file is already {e.status}")
    if e.status == Status.PENDING:
        delta = delta_txn(spark, m.table)
        if delta is not None and e.batch_id <= delta:
            raise RunError(
                Code.STEP_FAILED,
                f"{e.path}: {m.table}: pending batch {e.batch_id} is already in bronze; "
                "run the pipeline (or 'lakeforge runs repair') to log it committed",
            )
    append_ingestion_events(
        spark, _events(m.table, [_info(e)], e.batch_id, run_id, Status.SKIPPED, None)
    )
    return Decision(m.table, e.path, e.status, Status.SKIPPED, "no run reads it again")


@dataclass
class RepairReport:
    """What :func:`repair` resolved, and what still needs an operator's decision."""

    resolved: list[str] = field(default_factory=list)
    decide: list[str] = field(default_factory=list)


def _exists(spark: SparkSession, path: str) -> bool:
    jvm: Any = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    p = jvm.org.apache.hadoop.fs.Path(path)
    return bool(p.getFileSystem(conf).exists(p))


def repair(spark: SparkSession, run_id: str) -> RepairReport:
    """Resolve what needs no decision, for every table in the ingestion log.

    A pending batch bronze already holds is logged committed; pending files that no longer
    exist are logged ``vanished``. Rejected files are listed (retry or skip them), and so
    are pending batches whose files all exist (the next run lands them).
    """
    report = RepairReport()
    tables = [
        r["table_name"]
        for r in spark.sql(
            f"SELECT DISTINCT table_name FROM {INGESTED_FILES} ORDER BY table_name"
        ).collect()
    ]
    for table in tables:
        log = load_log(spark, table)
        pending: dict[int, list[FileInfo]] = {}
        for e in log.values():
            if e.status == Status.PENDING:
                pending.setdefault(e.batch_id, []).append(_info(e))
            elif e.status == Status.REJECTED:
                report.decide.append(
                    f"{table}: rejected {e.path}: 'lakeforge ingest retry' or 'ingest skip' it"
                )
        delta = delta_txn(spark, table) if pending else None
        for batch_id, files in sorted(pending.items()):
            earlier = None
            if delta is not None and batch_id <= delta:
                earlier = find_commit(spark, table, txn=[app_id(table), batch_id])
            if earlier is not None:
                append_ingestion_events(
                    spark,
                    _events(table, files, batch_id, run_id, Status.COMMITTED, earlier.version),
                )
                report.resolved.append(
                    f"{table}: pending batch {batch_id} is bronze version {earlier.version}: "
                    f"{len(files)} file(s) logged committed"
                )
                continue
            gone = [f for f in files if not _exists(spark, f.path)]
            if gone:
                append_ingestion_events(
                    spark, _events(table, gone, batch_id, run_id, Status.VANISHED, None)
                )
                report.resolved.extend(
                    f"{table}: pending batch {batch_id}: {f.path} no longer exists: logged vanished"
                    for f in gone
                )
            if len(gone) < len(files):
                report.resolved.append(
                    f"{table}: pending batch {batch_id}: {len(files) - len(gone)} file(s) "
                    "land with the next run"
                )
    return report
