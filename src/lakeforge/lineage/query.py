"""Lineage answers over the system tables: what produced ``table`` version N.

Walks ``lakeforge.table_versions`` upstream: the step that wrote (table, N), the table
versions that step read, and recursively what wrote those; for bronze versions, the raw
files (``lakeforge.ingested_files``) whose batches are in that version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakeforge.lineage.system_tables import INGESTED_FILES, TABLE_VERSIONS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass
class LineageNode:
    """One table version and how it came to be."""

    table: str
    version: int
    run_id: str | None = None
    operation: str | None = None
    rows_landed: int | None = None
    files: list[str] = field(default_factory=list)
    upstream: list[LineageNode] = field(default_factory=list)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def lineage(spark: SparkSession, table: str, version: int, depth: int = 10) -> LineageNode:
    """The upstream tree of ``table`` at ``version`` (``depth`` levels at most)."""
    node = LineageNode(table=table, version=version)
    write = spark.sql(
        f"SELECT run_id, step, operation, rows_landed FROM {TABLE_VERSIONS} "
        f"WHERE table_name = {_quote(table)} AND role = 'write' AND version = {int(version)} "
        "ORDER BY recorded_at DESC LIMIT 1"
    ).first()
    if write is None:
        # Not written by a lakeforge step (or a version older than the system tables).
        return node
    node.run_id, node.operation = write["run_id"], write["operation"]
    node.rows_landed = write["rows_landed"]
    if write["operation"] == "ingest":
        node.files = [
            r["path"]
            for r in spark.sql(
                f"SELECT DISTINCT path FROM {INGESTED_FILES} WHERE table_name = {_quote(table)} "
                f"AND status = 'committed' AND bronze_version <= {int(version)} ORDER BY path"
            ).collect()
        ]
    if depth <= 0:
        return node
    reads = spark.sql(
        f"SELECT table_name, version FROM {TABLE_VERSIONS} WHERE run_id = {_quote(write['run_id'])} "
        f"AND step = {_quote(write['step'])} AND role = 'read' ORDER BY table_name"
    ).collect()
    for r in reads:
        node.upstream.append(lineage(spark, r["table_name"], int(r["version"]), depth - 1))
    return node
