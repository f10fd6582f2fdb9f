"""Where delta-rs reaches a table that Spark's metastore locates, and what it answers there
without a Spark job.

A table at a ``file:`` or ``s3a://`` location is one delta-rs opens directly: a local path,
or ``s3://`` with the S3A settings of the Spark session (endpoint, region, addressing,
TLS) turned into delta-rs's options (:func:`lakeforge.io.s3.delta_rs_options`);
credentials, as for S3A and boto3, from the environment. Other locations (HDFS, ABFS,
DBFS, Unity Catalog) are Spark's alone: :func:`reach` returns None for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from lakeforge.config.uris import S3, S3A
from lakeforge.io.s3 import delta_rs_options

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class Reach:
    """A table location as delta-rs opens it."""

    uri: str  # a local path or s3://bucket/key
    storage_options: dict[str, str] = field(default_factory=dict)
    endpoint: str | None = None  # the object store's, for error messages


def reach(spark: SparkSession, location: str) -> Reach | None:
    """``location`` (as the metastore records it) for delta-rs, or None if only Spark can."""
    parsed = urlparse(location)
    if parsed.scheme == "file" or (not parsed.scheme and location.startswith("/")):
        return Reach(unquote(parsed.path))
    if location.startswith(S3A):
        hadoop: Any = spark.sparkContext._jsc.hadoopConfiguration()
        endpoint = hadoop.get("fs.s3a.endpoint") or None
        options = delta_rs_options(
            endpoint,
            hadoop.get("fs.s3a.endpoint.region") or "us-east-1",
            (hadoop.get("fs.s3a.connection.ssl.enabled") or "true") == "true",
            (hadoop.get("fs.s3a.path.style.access") or "false") == "true",
        )
        return Reach(S3 + location[len(S3A) :], options, endpoint)
    return None


def stats_row_count(where: Reach, version: int) -> int | None:
    """Rows of the table's ``version`` summed from its files' statistics (``numRecords``
    in the Delta log), or None when the statistics cannot say it exactly: a file without
    them, deletion vectors (a file's rows are then not all live), or a log delta-rs
    cannot read. Spark's ``count(*)`` answers from the same statistics, through a job."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    try:
        table = DeltaTable(
            where.uri, version=version, storage_options=where.storage_options or None
        )
        protocol = table.protocol()
        if "deletionVectors" in (protocol.reader_features or []):
            return None
        counts = pa.table(table.get_add_actions(flatten=False)).column("num_records")
    except Exception:  # delta-rs could not answer: Spark will, with its own errors
        return None
    if counts.null_count:
        return None
    return int(pc.sum(counts).as_py() or 0)
