"""Resolve table references to concrete Delta versions, and turn Delta's errors into ours.

Shared by :mod:`~lakeforge.timetravel.diff` and :mod:`~lakeforge.timetravel.restore`.
Every check reads the Delta log (history), never the table's data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakeforge.config.table_refs import VersionedRef, parse_table_ref
from lakeforge.errors import Code, TimeTravelError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def as_ref(table: str, ref: VersionedRef | int | None) -> VersionedRef:
    """``ref`` as a reference to ``table``: an int is a version, None the latest.

    Raises:
        TimeTravelError: ``LF-TT-002`` for a negative version or a reference to another table.
    """
    if ref is None:
        return VersionedRef(table)
    if isinstance(ref, VersionedRef):
        if ref.name != table:
            raise TimeTravelError(
                Code.BAD_TABLE_REF, f"{ref} does not refer to {table}: compare one table's versions"
            )
        return ref
    try:
        return VersionedRef(table, version=ref)
    except ValueError as exc:
        raise TimeTravelError(Code.BAD_TABLE_REF, f"{table}: {exc}") from None


def require_table(spark: SparkSession, table: str) -> str:
    """Check ``table`` names an existing table; returns its normalised (lower-case) name.

    Raises:
        TimeTravelError: ``LF-TT-002`` if it is not ``schema.table`` (or carries ``@``),
            ``LF-SQL-002`` if it does not exist.
    """
    try:
        ref = parse_table_ref(table)
    except ValueError as exc:
        raise TimeTravelError(Code.BAD_TABLE_REF, str(exc)) from None
    if not ref.is_latest:
        raise TimeTravelError(
            Code.BAD_TABLE_REF, f"expected a table name without '@', got {table.strip()}"
        )
    if not spark.catalog.tableExists(ref.name):
        raise TimeTravelError(Code.TABLE_NOT_FOUND, f"table {ref.name} does not exist")
    return ref.name


def version_range(spark: SparkSession, table: str) -> tuple[int, int]:
    """The oldest and newest versions the Delta log still holds for ``table``."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    try:
        row = (
            DeltaTable.forName(spark, table)
            .history()
            .agg(F.min("version").alias("lo"), F.max("version").alias("hi"))
            .first()
        )
    except Exception as exc:
        raise translate(exc, table) from exc
    if row is None or row["hi"] is None:
        raise TimeTravelError(Code.VERSION_NOT_FOUND, f"{table} has no Delta history")
    return int(row["lo"]), int(row["hi"])


def resolve_version(spark: SparkSession, ref: VersionedRef) -> int:
    """The concrete Delta version ``ref`` denotes (its table must exist).

    A version number is checked by Delta itself when the version is read (see
    :func:`read_ref`); a timestamp resolves as Delta's ``TIMESTAMP AS OF`` does: the
    newest commit at or before it, and an instant before the first commit or after the
    last one is an error, as it is in SQL.

    Raises:
        TimeTravelError: ``LF-TT-001`` if the instant is not covered by the table's log.
    """
    if ref.version is not None:
        return ref.version
    from delta.tables import DeltaTable

    if ref.timestamp is None:
        from lakeforge.io.delta import snapshot_version

        newest = snapshot_version(spark, ref.name)  # the cheap way; errors come from below
        if newest is not None:
            return newest
        try:
            row = DeltaTable.forName(spark, ref.name).history(1).select("version").first()
        except Exception as exc:
            raise translate(exc, ref.name) from exc
        if row is None:
            raise TimeTravelError(Code.VERSION_NOT_FOUND, f"{ref.name} has no Delta history")
        return int(row["version"])
    from pyspark.sql import functions as F

    # Let Delta judge the instant first so its bounds (and messages) are the ones
    # `lakeforge sql` users meet; the analysis is eager, no data is read.
    try:
        spark.sql(f"SELECT * FROM {ref.sql()}")
    except Exception as exc:
        raise translate(exc, ref.name) from exc
    row = (
        DeltaTable.forName(spark, ref.name)
        .history()
        .where(F.col("timestamp") <= F.lit(ref.timestamp).cast("timestamp"))
        .agg(F.max("version").alias("v"))
        .first()
    )
    if row is None or row["v"] is None:
        raise TimeTravelError(
            Code.VERSION_NOT_FOUND, f"{ref.name} has no version at or before {ref.timestamp}"
        )
    return int(row["v"])


def read_ref(spark: SparkSession, table: str, version: int) -> DataFrame:
    """``table`` at ``version``, with Delta's failures as lakeforge errors.

    Raises:
        TimeTravelError: ``LF-TT-001`` if the log does not hold ``version`` (Delta's
            analysis is eager, so this raises here, before any data is read).
    """
    from lakeforge.io.delta import read_version

    try:
        return read_version(spark, table, version)
    except Exception as exc:
        raise translate(exc, table) from exc


def translate(exc: Exception, table: str) -> Exception:
    """A lakeforge error for a Spark/Delta failure; anything else comes back unchanged.

    The one Spark translator (:mod:`lakeforge.runtime.spark_errors`) reads the error class
    and writes the message; this only picks time travel's own codes for the classes that
    mean "no such version" or "no such table".
    """
    from pyspark.errors import PySparkException

    from lakeforge.runtime import spark_errors

    if not spark_errors.is_spark_error(exc):
        return exc
    if not isinstance(exc, PySparkException):  # py4j: the JVM failed or is gone
        return spark_errors.translate(exc, table)
    condition = spark_errors.condition(exc) or ""
    if condition.startswith(("DELTA_VERSION", "DELTA_TIMESTAMP", "DELTA_CANNOT_RESTORE")):
        return TimeTravelError(Code.VERSION_NOT_FOUND, f"{table}: {spark_errors.describe(exc)}")
    if condition in ("TABLE_OR_VIEW_NOT_FOUND", "DELTA_TABLE_NOT_FOUND"):
        return TimeTravelError(Code.TABLE_NOT_FOUND, f"table {table} does not exist")
    return TimeTravelError(Code.SQL_FAILED, f"{table}: {spark_errors.describe(exc)}")
