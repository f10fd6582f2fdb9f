"""Resolve a step's input reference (``silver.orders``, ``@12``, ``@2026-11-01``) to one
Delta version, once, before reading it: "latest" is never what lineage stores."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakeforge.config.table_refs import parse_table_ref
from lakeforge.errors import Code, RunError
from lakeforge.io.delta import latest_version
from lakeforge.timetravel.versions import resolve_version as resolve_ref

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def resolve_version(spark: SparkSession, ref_text: str, latest: int | None = None) -> int:
    """The concrete version ``ref_text`` denotes.

    Args:
        latest: the table's newest version, when the caller has just read it (saves a
            metastore lookup and a read of the Delta log).

    Raises:
        RunError: the table or the pinned version does not exist.
        TimeTravelError: a timestamp outside the table's history.
    """
    ref = parse_table_ref(ref_text)
    if latest is None:
        latest = latest_version(spark, ref.name)
    if latest is None:
        raise RunError(Code.STEP_FAILED, f"table {ref.name} does not exist")
    if ref.version is not None and ref.version > latest:
        raise RunError(
            Code.VERSION_NOT_FOUND, f"{ref.name} has no version {ref.version} (latest {latest})"
        )
    if ref.version is None and ref.timestamp is None:
        return latest  # "latest" is what was just read: no second read of the log
    return ref.version if ref.version is not None else resolve_ref(spark, ref)
