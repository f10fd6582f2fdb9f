"""Read raw files (CSV, JSON, Parquet, text) into a DataFrame with lineage columns.

Bronze is typed loosely: CSV columns stay strings (no inference), so a bad value is
kept as delivered and silver decides, with a reason, what does not conform.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lakeforge.config.models import SourceSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

META_RUN_ID = "_lf_run_id"
META_INGESTED_AT = "_lf_ingested_at"
META_SOURCE_FILE = "_lf_source_file"
META_COLUMNS = (META_RUN_ID, META_INGESTED_AT, META_SOURCE_FILE)

DEFAULT_OPTIONS: dict[str, dict[str, str]] = {
    "csv": {"header": "true", "inferSchema": "false", "mode": "PERMISSIVE"},
    "json": {"mode": "PERMISSIVE"},
    "parquet": {},
    "text": {},
}


def resolve_source_path(path: str, root: Path) -> str:
    """URIs (``s3a://``, ``file:/``) pass through; relative paths are from the project root."""
    if "://" in path or path.startswith("file:"):
        return path
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else root / p)


def read_source(spark: SparkSession, spec: SourceSpec, root: Path, run_id: str) -> DataFrame:
    """The files of ``spec`` plus ``_lf_run_id``, ``_lf_ingested_at``, ``_lf_source_file``."""
    from pyspark.sql import functions as F

    options = {**DEFAULT_OPTIONS[spec.format], **spec.options}
    df = (
        spark.read.format(spec.format).options(**options).load(resolve_source_path(spec.path, root))
    )
    return df.select(
        "*",
        F.lit(run_id).alias(META_RUN_ID),
        F.current_timestamp().alias(META_INGESTED_AT),
        # _metadata is Spark's hidden file-source column: the exact file each row came from.
        F.col("_metadata.file_path").alias(META_SOURCE_FILE),
    )
