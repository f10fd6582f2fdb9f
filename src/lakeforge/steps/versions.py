"""Resolve an input reference (``silver.orders``, ``@12``, ``@2026-11-01``) to one version.

Steps pin every input to a concrete Delta version once, before reading, and record it:
"latest" is never what lineage stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakeforge.errors import Code, RunError
from lakeforge.io.delta import latest_version
from lakeforge.timetravel.refs import parse_table_ref

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def resolve_version(spark: SparkSession, ref_text: str) -> int:
    """The concrete version ``ref_text`` denotes.

    Raises:
        RunError: the table, version or timestamp does not exist.
    """
    ref = parse_table_ref(ref_text)
    latest = latest_version(spark, ref.name)
    if latest is None:
        raise RunError(Code.STEP_FAILED, f"table {ref.name} does not exist")
    if ref.version is not None:
        if ref.version > latest:
            raise RunError(
                Code.VERSION_NOT_FOUND, f"{ref.name} has no version {ref.version} (latest {latest})"
            )
        return ref.version
    if ref.timestamp is not None:
        row = spark.sql(
            f"SELECT max(version) AS v FROM (DESCRIBE HISTORY {ref.name}) "
            f"WHERE timestamp <= CAST('{ref.timestamp}' AS TIMESTAMP)"
        ).first()
        if row is None or row["v"] is None:
            raise RunError(
                Code.VERSION_NOT_FOUND, f"{ref.name} has no version at or before {ref.timestamp}"
            )
        return int(row["v"])
    return latest
