"""Read a batch of raw files (CSV, JSON, Parquet, Avro, text) with lineage columns.

Bronze is typed loosely and loses nothing:
- CSV columns stay strings unless a schema is declared. Files are grouped by their
  header line and each group read with its own header, then unioned by name, so a feed
  that gains a column on some day lands it in the right place (Spark alone would map a
  changed header by position).
- Malformed records (wrong field count, broken quoting, unparseable JSON, values that do
  not fit a declared schema) are kept: the raw text goes to ``_lf_corrupt_record`` and
  silver quarantines them with their reason.
- Every row carries the run, batch, ingestion time and its file's path, size and mtime.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from lakeforge.config.models import SourceSpec
from lakeforge.io.listing import FileInfo, parse_header, read_first_line

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

META_RUN_ID = "_lf_run_id"
META_BATCH_ID = "_lf_batch_id"
META_INGESTED_AT = "_lf_ingested_at"
META_SOURCE_FILE = "_lf_source_file"
META_SOURCE_SIZE = "_lf_source_size"
META_SOURCE_MTIME = "_lf_source_mtime"
CORRUPT = "_lf_corrupt_record"
META_COLUMNS = (
    META_RUN_ID,
    META_BATCH_ID,
    META_INGESTED_AT,
    META_SOURCE_FILE,
    META_SOURCE_SIZE,
    META_SOURCE_MTIME,
    CORRUPT,
)

DEFAULT_OPTIONS: dict[str, dict[str, str]] = {
    "csv": {"header": "true", "mode": "PERMISSIVE"},
    "json": {"mode": "PERMISSIVE"},
    "parquet": {},
    "avro": {},
    "text": {},
}


def resolve_source_path(path: str, root: Path) -> str:
    """URIs (``s3a://``, ``file:/``) pass through; relative paths are from the project root."""
    if "://" in path or path.startswith("file:"):
        return path
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else root / p)


def _ddl(columns: dict[str, str]) -> str:
    return ", ".join(f"`{name}` {typ}" for name, typ in columns.items())


def _with_meta(df: DataFrame, run_id: str, batch_id: int) -> DataFrame:
    """Data columns, the corrupt-record column, then lineage. Must be applied to a
    file-source DataFrame directly: ``_metadata`` does not survive a union."""
    from pyspark.sql import functions as F

    if CORRUPT not in df.columns:
        df = df.withColumn(CORRUPT, F.lit(None).cast("string"))
    data = [F.col(f"`{c}`") for c in df.columns if c != CORRUPT]
    return df.select(
        *data,
        F.col(CORRUPT),
        F.lit(run_id).alias(META_RUN_ID),
        F.lit(batch_id).cast("bigint").alias(META_BATCH_ID),
        F.current_timestamp().alias(META_INGESTED_AT),
        # _metadata is Spark's hidden file-source column: the exact file each row came from.
        F.col("_metadata.file_path").alias(META_SOURCE_FILE),
        F.col("_metadata.file_size").alias(META_SOURCE_SIZE),
        F.col("_metadata.file_modification_time").alias(META_SOURCE_MTIME),
    )


def _read_csv(
    spark: SparkSession,
    spec: SourceSpec,
    files: list[FileInfo],
    options: dict[str, str],
    run_id: str,
    batch_id: int,
) -> DataFrame:
    opts = {**options, "columnNameOfCorruptRecord": CORRUPT}
    if spec.schema_:
        schema = _ddl({**spec.schema_, CORRUPT: "string"})
        df = spark.read.options(**opts).schema(schema).csv([f.path for f in files])
        return _with_meta(df, run_id, batch_id)
    header = opts.get("header", "false").lower() == "true"
    sep = opts.get("sep", opts.get("delimiter", ","))
    quote = opts.get("quote", '"')
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for f in files:
        names = parse_header(
            read_first_line(spark, f.path, opts.get("encoding", "utf-8")), sep, quote
        )
        if not header:
            names = [f"_c{i}" for i in range(len(names))]
        groups[tuple(names)].append(f.path)
    frames = []
    for header_names, paths in groups.items():
        # The header's own names, positionally: exact for this group of files.
        schema = _ddl({**dict.fromkeys(header_names, "string"), CORRUPT: "string"})
        df = spark.read.options(**opts).option("enforceSchema", "true").schema(schema).csv(paths)
        frames.append(_with_meta(df, run_id, batch_id))
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame, allowMissingColumns=True)
    return out


def read_batch(
    spark: SparkSession, spec: SourceSpec, files: list[FileInfo], run_id: str, batch_id: int
) -> DataFrame:
    """The rows of ``files`` plus the ``_lf_*`` lineage columns (see :data:`META_COLUMNS`)."""
    options = {**DEFAULT_OPTIONS[spec.format], **spec.options}
    paths = [f.path for f in files]
    if spec.format == "csv":
        return _read_csv(spark, spec, files, options, run_id, batch_id)
    if spec.format == "json":
        reader = spark.read.options(**options).option("columnNameOfCorruptRecord", CORRUPT)
        if spec.schema_:
            reader = reader.schema(_ddl({**spec.schema_, CORRUPT: "string"}))
        return _with_meta(reader.json(paths), run_id, batch_id)
    reader = spark.read.format(spec.format).options(**options)
    if spec.schema_:
        reader = reader.schema(_ddl(spec.schema_))
    elif spec.format == "parquet":
        reader = reader.option("mergeSchema", "true")
    return _with_meta(reader.load(paths), run_id, batch_id)
