"""SCD type 2 for silver: every change of a key's tracked columns becomes a new row.

Columns added to the declared ones: ``valid_from`` (the ``sequence_by`` value),
``valid_to`` (the next version's ``valid_from``, null while current), ``is_current`` and
``_lf_row_hash`` (sha256 of the tracked columns). Within a batch, exact repeats (same key
and sequence) and rows that change nothing compared to the key's previous version are
counted as deduplicated. A change older than the key's current version cannot be placed
in history without rewriting it: it is quarantined as ``late_change`` (nothing is lost).
One MERGE closes the current rows and inserts the new ones in a single commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakeforge.io.delta import Commit, Txn, merge_into, table_exists, write_table
from lakeforge.io.files import META_INGESTED_AT, META_RUN_ID, META_SOURCE_FILE
from lakeforge.plan.steps import ConformStep
from lakeforge.quality.evaluate import BAD  # a row with reasons (see conform.flag_rows)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

VALID_FROM = "valid_from"
VALID_TO = "valid_to"
IS_CURRENT = "is_current"
ROW_HASH = "_lf_row_hash"
SCD2_COLUMNS = (VALID_FROM, VALID_TO, IS_CURRENT, ROW_HASH)
CATEGORY = "_lf_category"
REASONS = "_lf_reasons"


def _cast(name: str) -> str:
    return f"__lf_cast_{name}"


def tracked(step: ConformStep) -> list[str]:
    spec = step.spec
    if spec.scd2 is not None and spec.scd2.track:
        return list(spec.scd2.track)
    return [c for c in spec.columns if c not in spec.keys]


def row_hash(step: ConformStep) -> Column:
    from pyspark.sql import functions as F

    parts = [F.coalesce(F.col(_cast(c)).cast("string"), F.lit("\u0000")) for c in tracked(step)]
    return F.sha2(F.concat_ws("\u0001", *parts), 256)


def categorize(spark: SparkSession, flagged: DataFrame, step: ConformStep) -> DataFrame:
    """Add ``_lf_category`` (land / quarantine / duplicate) and ``_lf_row_hash``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    spec = step.spec
    assert spec.sequence_by is not None
    keys = [F.col(_cast(k)) for k in spec.keys]
    seq = F.col(_cast(spec.sequence_by))
    # Quarantined and dropped (by an expectation: a ``drop:`` reason) rows take no part in
    # history.
    invalid = F.col(BAD)
    df = flagged.withColumn(ROW_HASH, row_hash(step))
    newest_first = [
        F.col(c).desc_nulls_last() for c in (META_INGESTED_AT, META_SOURCE_FILE) if c in df.columns
    ]
    same = Window.partitionBy(invalid, *keys, seq).orderBy(*newest_first, F.col(ROW_HASH))
    df = df.withColumn("_lf_same_rank", F.row_number().over(same))
    in_order = Window.partitionBy(invalid, *keys).orderBy(seq)
    # Among distinct sequence values, a row equal to its predecessor changes nothing.
    distinct_rows = df.where(F.col("_lf_same_rank") == 1)
    distinct_rows = distinct_rows.withColumn("_lf_prev_hash", F.lag(ROW_HASH).over(in_order))
    df = _join_prev(df, distinct_rows, step)
    current = _current(spark, step)
    if current is not None:
        df = df.join(current, on=[_cast(k) for k in spec.keys], how="left")
    else:
        df = df.withColumn(
            "_lf_cur_from", F.lit(None).cast(df.schema[_cast(spec.sequence_by)].dataType)
        )
        df = df.withColumn("_lf_cur_hash", F.lit(None).cast("string"))
    late = F.col("_lf_cur_from").isNotNull() & (seq <= F.col("_lf_cur_from"))
    first_of_key = F.col("_lf_prev_hash").isNull()
    unchanged = (F.col("_lf_prev_hash") == F.col(ROW_HASH)) | (
        first_of_key & (F.col("_lf_cur_hash") == F.col(ROW_HASH)) & ~late
    )
    category = (
        F.when(invalid, F.lit("quarantine"))
        .when(F.col("_lf_same_rank") > 1, F.lit("duplicate"))
        .when(late, F.lit("quarantine"))
        .when(unchanged, F.lit("duplicate"))
        .otherwise(F.lit("land"))
    )
    reasons = F.when(~invalid & late, F.array(F.lit(f"late_change:{spec.sequence_by}"))).otherwise(
        F.col(REASONS)
    )
    return df.withColumn(CATEGORY, category).withColumn(REASONS, reasons)


def _join_prev(df: DataFrame, distinct_rows: DataFrame, step: ConformStep) -> DataFrame:
    from pyspark.sql import functions as F

    spec = step.spec
    assert spec.sequence_by is not None
    cols = [_cast(k) for k in spec.keys] + [_cast(spec.sequence_by)]
    prev = distinct_rows.where(~F.col(BAD)).select(*cols, "_lf_prev_hash")
    return df.join(prev, on=cols, how="left")


def _current(spark: SparkSession, step: ConformStep) -> DataFrame | None:
    """Current version per key in the target: its valid_from and hash."""
    from pyspark.sql import functions as F

    if not table_exists(spark, step.table):
        return None
    return (
        spark.table(step.table)
        .where(F.col(IS_CURRENT))
        .select(
            *[F.col(k).alias(_cast(k)) for k in step.spec.keys],
            F.col(VALID_FROM).alias("_lf_cur_from"),
            F.col(ROW_HASH).alias("_lf_cur_hash"),
        )
    )


def apply(
    spark: SparkSession,
    ranked: DataFrame,
    step: ConformStep,
    run_id: str,
    txn: Txn | None,
    meta: dict[str, Any],
    add_columns: bool,
) -> Commit:
    """Close changed current rows and insert the new versions, in one commit."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    spec = step.spec
    assert spec.sequence_by is not None
    keys = spec.keys
    new = ranked.where(F.col(CATEGORY) == "land")
    order = Window.partitionBy(*[F.col(_cast(k)) for k in keys]).orderBy(
        F.col(_cast(spec.sequence_by))
    )
    rows = new.select(
        *[F.col(_cast(c)).alias(c) for c in spec.columns],
        *[F.col(c) for c in (META_SOURCE_FILE, META_INGESTED_AT) if c in new.columns],
        F.lit(run_id).alias(META_RUN_ID),
        F.col(_cast(spec.sequence_by)).alias(VALID_FROM),
        F.lead(F.col(_cast(spec.sequence_by))).over(order).alias(VALID_TO),
        F.lead(F.col(_cast(spec.sequence_by))).over(order).isNull().alias(IS_CURRENT),
        F.col(ROW_HASH),
    )
    if not table_exists(spark, step.table):
        return write_table(rows, step.table, "append", run_id, step.table, txn=txn, metadata=meta)
    # Staged MERGE source: inserts carry null merge keys (never match); one closing row
    # per key carries the key and the earliest new valid_from.
    mk = [f"_lf_mk_{k}" for k in keys]
    inserts = rows.select(
        "*",
        *[
            F.lit(None).cast(rows.schema[k].dataType).alias(m)
            for k, m in zip(keys, mk, strict=True)
        ],
    )
    closers = (
        rows.groupBy(*keys)
        .agg(F.min(VALID_FROM).alias("_lf_close_at"))
        .select(*[F.col(k).alias(m) for k, m in zip(keys, mk, strict=True)], "_lf_close_at")
    )
    staged = inserts.unionByName(closers, allowMissingColumns=True)
    on = (
        " AND ".join(f"t.`{k}` = s.`{m}`" for k, m in zip(keys, mk, strict=True))
        + f" AND t.`{IS_CURRENT}`"
    )
    values = {f"`{c}`": f"s.`{c}`" for c in rows.columns}

    def build(m: Any) -> Any:
        return m.whenMatchedUpdate(
            set={f"`{VALID_TO}`": "s._lf_close_at", f"`{IS_CURRENT}`": "false"}
        ).whenNotMatchedInsert(condition=f"s.`{mk[0]}` IS NULL", values=values)

    return merge_into(
        spark,
        staged,
        step.table,
        on,
        run_id,
        step.table,
        build,
        txn=txn,
        metadata=meta,
        auto_merge_schema=add_columns,
    )
