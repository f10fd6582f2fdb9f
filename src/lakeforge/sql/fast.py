"""The fast engine: delta-rs opens each table, DataFusion runs the query; no JVM.

Rows come back as the Spark engine's do in a lakeforge session: ``Decimal`` for decimals,
``date`` for dates, and for timestamps (UTC instants in Delta) naive ``datetime`` in the
process's local time, which is what PySpark's ``collect`` gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lakeforge.config.table_refs import VersionedRef
from lakeforge.errors import Code, SqlError
from lakeforge.sql.statement import FastStatement, NotFast
from lakeforge.sql.tables import Warehouse


@dataclass(frozen=True)
class Rows:
    columns: list[str]
    rows: list[tuple[Any, ...]]


class FastFailed(Exception):
    """DataFusion could not plan or run the query (Spark may still answer it)."""


def run(statement: FastStatement, warehouse: Warehouse, limit: int) -> Rows:
    """At most ``limit`` rows of ``statement``.

    Raises:
        NotFast: a table the warehouse does not hold.
        SqlError: ``LF-TT-001`` a version or time the table does not have.
        FastFailed: DataFusion refused or failed the query.
    """
    from deltalake import QueryBuilder

    builder = QueryBuilder()
    for use in statement.tables:
        builder.register(use.registered, _open(use.ref, warehouse))
    try:
        reader = builder.execute(statement.sql)
        return _collect(reader, limit)
    except Exception as exc:  # DataFusion's errors are one exception type with text
        raise FastFailed(str(exc).strip().splitlines()[0]) from exc


def _open(ref: VersionedRef, warehouse: Warehouse) -> Any:
    from deltalake import DeltaTable

    if not warehouse.exists(ref.name):
        raise NotFast(
            f"table {ref.name} is not a Delta table in the warehouse", Code.TABLE_NOT_FOUND
        )
    where = warehouse.location(ref.name)
    table = DeltaTable(where.uri, storage_options=where.storage_options)
    latest = table.version()
    if ref.version is not None:
        if ref.version > latest:
            raise SqlError(
                Code.VERSION_NOT_FOUND,
                f"{ref.name} has no version {ref.version}: its latest is {latest}",
            )
        table.load_as_version(ref.version)
    elif ref.timestamp is not None:
        if str(table.metadata().configuration.get("delta.enableInCommitTimestamps")) == "true":
            raise NotFast(f"time travel by time on {ref.name} (in-commit timestamps)")
        table.load_as_version(_version_at(ref, warehouse.commit_times(ref.name), latest))
    return table


def _version_at(ref: VersionedRef, commits: list[tuple[int, int]], latest: int) -> int:
    """The version current at ``ref``'s time: the last commit at or before it, as Delta's
    ``TIMESTAMP AS OF`` picks; as there, a time before the first commit or after the last
    one is an error."""
    assert ref.timestamp is not None
    when = int(_instant(ref.timestamp).timestamp() * 1000)
    at = [version for version, stamp in commits if stamp <= when]
    if not at or when > commits[-1][1]:
        first, last = (_shown(commits[i][1]) if commits else "unknown" for i in (0, -1))
        raise SqlError(
            Code.VERSION_NOT_FOUND,
            f"{ref.name} has no version as of {ref.timestamp}: its first commit is at "
            f"{first}, its last (version {latest}) at {last}",
        )
    return max(at)


def _shown(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(sep=" ", timespec="milliseconds")


def _instant(timestamp: str) -> datetime:
    """A reference's time (``YYYY-MM-DD[ HH:MM:SS[.f][Z]]``), read in UTC as lakeforge's
    Spark sessions do."""
    value = datetime.fromisoformat(timestamp.removesuffix("Z"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _collect(reader: Any, limit: int) -> Rows:
    import pyarrow as pa

    stream = pa.RecordBatchReader.from_stream(reader)
    columns = list(stream.schema.names)
    rows: list[tuple[Any, ...]] = []
    for batch in stream:
        if len(rows) >= limit:
            break
        part = batch.slice(0, limit - len(rows))
        rows.extend(zip(*(_python(col.to_pylist()) for col in part.columns), strict=True))
    return Rows(columns, rows)


def _python(values: list[Any]) -> list[Any]:
    return [_value(v) for v in values]


def _value(value: Any) -> Any:
    # Nanosecond timestamps (DataFusion's own, e.g. of a CAST) come as pandas Timestamps;
    # Spark has microseconds, so a datetime loses nothing Spark would show.
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime(warn=False)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return _local(value)
    return value


def _local(value: datetime) -> datetime:
    return value.astimezone().replace(tzinfo=None)
