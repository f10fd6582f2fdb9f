"""Lineage answers over the system tables: what produced ``table`` version N.

Walks ``lakeforge.table_versions`` upstream: the step that wrote (table, N), the table
versions that step read, and recursively what wrote those; for bronze versions, the raw
files (``lakeforge.ingested_files``) whose batches are in that version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    # Object storage: each raw object version in the files above (path, version_id, etag);
    # a key re-ingested after it changed appears once per version.
    objects: list[dict[str, str | None]] = field(default_factory=list)
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
        rows = spark.sql(
            f"SELECT DISTINCT path, version_id, etag FROM {INGESTED_FILES} "
            f"WHERE table_name = {_quote(table)} AND status = 'committed' "
            f"AND bronze_version <= {int(version)} ORDER BY path, version_id"
        ).collect()
        node.files = list(dict.fromkeys(r["path"] for r in rows))
        node.objects = [
            {"path": r["path"], "version_id": r["version_id"], "etag": r["etag"]}
            for r in rows
            if r["version_id"] is not None or r["etag"] is not None
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


# A manifest lists the raw objects themselves up to this many; above, their count and hash.
MAX_LISTED_OBJECTS = 1000


def raw_objects(nodes: list[LineageNode]) -> list[dict[str, str | None]]:
    """Every raw object version under ``nodes`` (bronze versions' files), once, sorted."""
    seen: dict[tuple[Any, ...], dict[str, str | None]] = {}
    stack = list(nodes)
    while stack:
        node = stack.pop()
        for obj in node.objects:
            seen.setdefault((obj["path"], obj["version_id"], obj["etag"]), obj)
        stack.extend(node.upstream)
    return [seen[k] for k in sorted(seen, key=lambda k: tuple(str(x) for x in k))]


def raw_objects_record(objects: list[dict[str, str | None]]) -> dict[str, Any]:
    """What a training-set manifest says of its raw objects: their count, a sha256 over
    their sorted ``path<TAB>version_id<TAB>etag`` lines, and the list itself when short."""
    lines = "".join(f"{o['path']}\t{o['version_id'] or ''}\t{o['etag'] or ''}\n" for o in objects)
    record: dict[str, Any] = {
        "count": len(objects),
        "sha256": hashlib.sha256(lines.encode("utf-8")).hexdigest(),
    }
    if len(objects) <= MAX_LISTED_OBJECTS:
        record["objects"] = objects
    return record
