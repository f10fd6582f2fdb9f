"""The row protocol of a conform step: its internal columns and the logic that sets them.

One pass of Column expressions flags every row read (:func:`flag_rows`): ``try_cast`` per
declared column into ``__lf_cast_<column>`` (:func:`cast_name`), and a reason in
``_lf_reasons`` for a non-null input that fails to cast, a null key or ``nullable: false``
column, or a malformed raw record (bronze's ``_lf_corrupt_record``); ``_lf_bad`` is the
same verdict as a cheap boolean. The quality gate (``lakeforge.quality.gate``) adds its
expectations' verdicts to both columns, which it owns. Valid rows are then ranked
(:func:`rank_rows`; for a history table :func:`rank_history`) into ``_lf_category``:
``land``, ``quarantine`` or ``duplicate``. Landed rows keep the declared columns typed
plus lineage (:func:`landed_rows`); quarantined ones their original record and every
reason (:func:`quarantine_rows`). ``_lf_delete`` marks a merge's rows that delete their
key (``delete_when``). :func:`account` checks that every row read is accounted for.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING, Any

from lakeforge.errors import Code, RunError
from lakeforge.io.delta import Commit
from lakeforge.io.files import CORRUPT, META_INGESTED_AT, META_RUN_ID, META_SOURCE_FILE
from lakeforge.plan.steps import ConformStep
from lakeforge.quality.evaluate import CHECK_PREFIXES
from lakeforge.quality.gate import BAD, REASONS, Observed, Written
from lakeforge.results import StepResult
from lakeforge.steps.casting import absent_from_file, may_lack, strict_cast
from lakeforge.write import WriteStrategy
from lakeforge.write.scd2 import IS_CURRENT, ROW_HASH, VALID_FROM

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

CATEGORY = "_lf_category"  # land | quarantine | duplicate
DELETE = "_lf_delete"
LINEAGE = (META_SOURCE_FILE, META_INGESTED_AT)
# Quarantined records keep timestamps to the microsecond, so that rows set aside by an
# expectation can be typed again exactly (see ``quality.gate.set_aside_rows``).
JSON_OPTIONS = {
    "ignoreNullFields": "false",
    "timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "timestampNTZFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSS",
}


def cast_name(column: str) -> str:
    """The column holding ``column`` cast to its declared type."""
    return f"__lf_cast_{column}"


def flag_rows(df: DataFrame, step: ConformStep) -> DataFrame:
    """Add the cast columns, ``_lf_reasons`` (an empty array = valid) and ``_lf_bad``."""
    from pyspark.sql import functions as F

    spec = step.spec
    missing = [
        c.source or name
        for name, c in spec.columns.items()
        if (c.source or name) not in df.columns and not c.optional
    ]
    if missing:
        available = [c for c in df.columns if not c.startswith("_lf_")]
        raise RunError(
            Code.SCHEMA_CHANGED,
            f"{step.location}: {step.table}: columns {missing} are not in {step.source_table} "
            f"(available: {available}); mark a column `optional: true` if the feed may lack it",
        )
    input_types = dict(df.dtypes)
    # Only columns the bronze log says some file lacked get the per-row absence test.
    required = [c.source or name for name, c in spec.columns.items() if not c.optional]
    lackable = may_lack(df, step.source_table, [s for s in required if s in df.columns])
    casts: list[Column] = []
    reasons: list[Column] = []
    failing: list[Column] = []  # the same checks as booleans: see BAD
    for name, column in spec.columns.items():
        src = column.source or name
        if src not in df.columns:  # optional and absent from this input
            casts.append(F.lit(None).cast(column.type).alias(cast_name(name)))
            if not column.nullable or name in spec.keys:
                reasons.append(F.lit(f"null_not_allowed:{name}"))
                failing.append(F.lit(True))
            continue
        raw = F.col(f"`{src}`")
        cast = strict_cast(raw, input_types[src], column.type)
        casts.append(cast.typed.alias(cast_name(name)))
        cast_failed = cast.failed  # a non-null input without an accepted value
        reasons.append(
            F.when(
                cast_failed,
                F.concat(F.lit(f"cast_failed:{name}:{column.type}:"), raw.cast("string")),
            )
        )
        failing.append(cast_failed)
        # A column its row's file lacked (bronze's _lf_missing_columns) is not a NULL value:
        # a declared column that is not optional sets the row aside for that reason alone.
        absent = absent_from_file(df.columns, src, name) if src in lackable else None
        is_null = raw.isNull()
        if absent is not None:
            reasons.append(absent.reason)
            failing.append(absent.flag)
            is_null = is_null & ~absent.flag
        if not column.nullable or name in spec.keys:
            reasons.append(F.when(is_null, F.lit(f"null_not_allowed:{name}")))
            failing.append(is_null)
    # array_compact (drop the nulls) is code-generated; filter() with a lambda is not.
    checks = F.array_compact(F.array(*reasons))
    if CORRUPT in df.columns:
        # A malformed line's fields are unreliable: it is quarantined for that reason alone.
        checks = F.when(F.col(CORRUPT).isNotNull(), F.array(F.lit("malformed_record"))).otherwise(
            checks
        )
        failing.append(F.col(CORRUPT).isNotNull())
    bad = F.lit(False)
    for f in failing:
        bad = bad | f
    extra = []
    if spec.delete_when is not None:
        extra.append(F.coalesce(F.expr(spec.delete_when), F.lit(False)).alias(DELETE))
    return df.select("*", *casts, *extra, checks.alias(REASONS), bad.alias(BAD))


def rank_rows(flagged: DataFrame, step: ConformStep) -> DataFrame:
    """Add ``_lf_category``: quarantine, duplicate (a newer row has the same key) or land."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    spec = step.spec
    # Any reason (a failed cast or key, or an expectation's quarantine or drop) sets the
    # row aside: it takes no part in the ranking.
    invalid = F.col(BAD)
    if not spec.keys:
        return rank_free(flagged)
    order: list[Column] = []
    if spec.sequence_by:
        order.append(F.col(cast_name(spec.sequence_by)).desc_nulls_last())
    # Then the newest ingestion, then the file name: a later delivery wins a tie.
    order += [
        F.col(c).desc_nulls_last()
        for c in (META_INGESTED_AT, META_SOURCE_FILE)
        if c in flagged.columns
    ]
    # A total order, so the same input always keeps the same row.
    order.append(F.xxhash64(*[F.col(cast_name(c)) for c in spec.columns]).desc())
    window = Window.partitionBy(
        invalid.alias("_lf_invalid"), *[F.col(cast_name(k)) for k in spec.keys]
    ).orderBy(*order)
    rank = F.row_number().over(window)
    category = (
        F.when(invalid, F.lit("quarantine"))
        .when(rank > 1, F.lit("duplicate"))
        .otherwise(F.lit("land"))
    )
    return flagged.withColumn(CATEGORY, category)


def rank_free(flagged: DataFrame) -> DataFrame:
    """Categories without the per-key window: enough to select the quarantined rows."""
    from pyspark.sql import functions as F

    return flagged.withColumn(
        CATEGORY, F.when(F.col(BAD), F.lit("quarantine")).otherwise(F.lit("land"))
    )


def tracked(step: ConformStep) -> list[str]:
    """The columns whose change opens a new version of a history (scd2) table's key."""
    spec = step.spec
    if spec.scd2 is not None and spec.scd2.track:
        return list(spec.scd2.track)
    return [c for c in spec.columns if c not in spec.keys]


def row_hash(step: ConformStep) -> Column:
    from pyspark.sql import functions as F

    parts = [F.coalesce(F.col(cast_name(c)).cast("string"), F.lit("\u0000")) for c in tracked(step)]
    return F.sha2(F.concat_ws("\u0001", *parts), 256)


def rank_history(spark: SparkSession, flagged: DataFrame, step: ConformStep) -> DataFrame:
    """:func:`rank_rows` for a history (scd2) table: adds ``_lf_category`` and
    ``_lf_row_hash``. Within a batch, exact repeats (same key and sequence) and rows that
    change nothing compared to the key's previous version are duplicates. A change older
    than the key's current version cannot be placed in history without rewriting it: it
    is quarantined as ``late_change`` (nothing is lost)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    spec = step.spec
    assert spec.sequence_by is not None
    keys = [F.col(cast_name(k)) for k in spec.keys]
    seq = F.col(cast_name(spec.sequence_by))
    # Quarantined and dropped rows (by an expectation) take no part in history.
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
        df = df.join(current, on=[cast_name(k) for k in spec.keys], how="left")
    else:
        df = df.withColumn(
            "_lf_cur_from", F.lit(None).cast(df.schema[cast_name(spec.sequence_by)].dataType)
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
    cols = [cast_name(k) for k in spec.keys] + [cast_name(spec.sequence_by)]
    prev = distinct_rows.where(~F.col(BAD)).select(*cols, "_lf_prev_hash")
    return df.join(prev, on=cols, how="left")


def _current(spark: SparkSession, step: ConformStep) -> DataFrame | None:
    """Current version per key in the target: its valid_from and hash."""
    from pyspark.sql import functions as F

    from lakeforge.io.delta import table_exists

    if not table_exists(spark, step.table):
        return None
    return (
        spark.table(step.table)
        .where(F.col(IS_CURRENT))
        .select(
            *[F.col(k).alias(cast_name(k)) for k in step.spec.keys],
            F.col(VALID_FROM).alias("_lf_cur_from"),
            F.col(ROW_HASH).alias("_lf_cur_hash"),
        )
    )


def landed_rows(ranked: DataFrame, step: ConformStep, run_id: str) -> DataFrame:
    """The declared columns (typed) + lineage columns, for rows that land (plus
    ``_lf_delete`` and a history table's ``_lf_row_hash`` when the ranking added them)."""
    from pyspark.sql import functions as F

    cols = [F.col(cast_name(name)).alias(name) for name in step.spec.columns]
    lineage = [F.col(c) for c in LINEAGE if c in ranked.columns]
    if META_SOURCE_FILE not in ranked.columns:
        lineage.append(F.lit(None).cast("string").alias(META_SOURCE_FILE))
    if META_INGESTED_AT not in ranked.columns:
        lineage.append(F.lit(None).cast("timestamp").alias(META_INGESTED_AT))
    extra = [F.col(c) for c in (DELETE, ROW_HASH) if c in ranked.columns]
    return ranked.where(F.col(CATEGORY) == "land").select(
        *cols, *lineage, F.lit(run_id).alias(META_RUN_ID), *extra
    )


def quarantine_rows(
    ranked: DataFrame,
    source_columns: list[str],
    step: ConformStep,
    source_version: int,
    run_id: str,
    observed: Observed | None = None,
) -> DataFrame:
    """The quarantine's rows: the original record, every reason, where it came from.

    Args:
        observed: a Spark ``Observation`` to attach to the rows set aside, while they
            still have their typed columns and expectation flags.
    """
    from pyspark.sql import functions as F

    data_cols = [c for c in source_columns if c != CORRUPT]
    # Keep nulls in the record: a missing key is often the very reason for quarantine.
    record = F.to_json(F.struct(*[F.col(f"`{c}`") for c in data_cols]), JSON_OPTIONS)
    if CORRUPT in ranked.columns:
        record = F.coalesce(F.col(CORRUPT), record)
    source_file = (
        F.col(META_SOURCE_FILE)
        if META_SOURCE_FILE in ranked.columns
        else F.lit(None).cast("string")
    )
    aside = ranked.where(F.col(CATEGORY) == "quarantine")
    if observed is not None:
        aside = observed.on(aside)
    return aside.select(
        record.alias("record"),
        F.col(REASONS).alias("reasons"),
        F.array_join(REASONS, "; ").alias("reason"),
        F.lit(step.source_table).alias("source_table"),
        F.lit(source_version).cast("bigint").alias("source_version"),
        source_file.alias("source_file"),
        F.lit(run_id).alias(META_RUN_ID),
        F.current_timestamp().alias("quarantined_at"),
    )


@dataclass(frozen=True)
class Counts:
    rows: int
    landed: int
    quarantined: int
    duplicates: int


def count_categories(ranked: DataFrame) -> Counts:
    """One aggregation over the ranked rows (the independent side of the accounting)."""
    from pyspark.sql import functions as F

    row = ranked.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(F.col(CATEGORY) == "land", 1).otherwise(0)).alias("landed"),
        F.sum(F.when(F.col(CATEGORY) == "quarantine", 1).otherwise(0)).alias("quarantined"),
        F.sum(F.when(F.col(CATEGORY) == "duplicate", 1).otherwise(0)).alias("duplicates"),
    ).first()
    assert row is not None
    return Counts(*(int(row[k] or 0) for k in ("rows", "landed", "quarantined", "duplicates")))


def set_aside_rows(
    spark: SparkSession, step: ConformStep, quarantined: Written, record_schema: Any
) -> DataFrame | None:
    """This run's quarantined rows that passed the cast and key checks (so an expectation
    set them aside, or a history table's ranking), typed again from their JSON records,
    with their reasons."""
    from pyspark.sql import functions as F

    q_commit = quarantined.commit
    if not q_commit.rows_written:
        return None
    q = quarantined.rows
    if q is None:  # written by an earlier attempt (a retry skipped it): read them back
        run_id = (q_commit.meta or {}).get("lakeforge_run_id")
        q = spark.read.option("versionAsOf", q_commit.version).table(step.quarantine_table)
        q = q.where(F.col(META_RUN_ID) == F.lit(run_id))
    failed_checks = F.exists(
        "reasons", lambda r: reduce(lambda a, b: a | b, [r.startswith(p) for p in CHECK_PREFIXES])
    )
    q = q.where(~failed_checks)
    names = set(record_schema.fieldNames())
    parsed = q.select(
        F.from_json("record", record_schema, JSON_OPTIONS).alias("_r"),
        F.col("reasons").alias(REASONS),
    )
    typed = [
        (
            F.col(f"_r.`{c.source or name}`").try_cast(c.type)
            if (c.source or name) in names
            else F.lit(None).cast(c.type)
        ).alias(name)
        for name, c in step.spec.columns.items()
    ]
    return parsed.select(*typed, F.col(REASONS))


def written_rows(spark: SparkSession, step: ConformStep, commit: Commit) -> DataFrame:
    """The rows this step's commit wrote: the version it made, rows of its run (merge and
    scd2 keep other runs' rows; an overwrite holds only this run's)."""
    from pyspark.sql import functions as F

    run_id = (commit.meta or {}).get("lakeforge_run_id")
    df = spark.read.option("versionAsOf", commit.version).table(step.table)
    return df.where(F.col(META_RUN_ID) == F.lit(run_id)).select(*step.spec.columns)


def account(
    result: StepResult,
    counts: Counts | None,
    commit: Commit,
    q_commit: Commit,
    step: ConformStep,
    dropped: int,
    strategy: WriteStrategy,
    unseen_deletes: bool,
) -> None:
    """Row accounting from the commits' own metrics.

    Landed and quarantined rows are what the two commits report; deduplicated rows are
    the rest of the rows read, which must be none when the table has no keys and can never
    be negative. With ``verify_counts`` (``counts`` given) all three are also counted in a
    separate pass over the categorized input and must agree with the commits.
    """
    # Rows set aside by drop expectations only sit in the quarantine too, counted apart.
    result.rows_dropped = dropped
    result.rows_quarantined = q_commit.rows_written - result.rows_dropped
    written = strategy.rows_landed(commit)
    result.rows_written = written
    result.version = commit.version
    result.committed = commit.committed_now
    result.quarantine_version = q_commit.version
    result.quarantine_committed = q_commit.committed_now
    if counts is None:
        rest = result.rows_read - written - q_commit.rows_written
        can_drop = bool(step.spec.keys)  # deduplicated by key (or unchanged history)
        if rest < 0 or (rest and not can_drop):
            raise RunError(
                Code.ROW_ACCOUNTING,
                f"{step.location}: {step.table}: read {result.rows_read} rows, but commits "
                f"wrote {written} landed + {q_commit.rows_written} quarantined"
                + ("" if can_drop else " and the table has no keys to deduplicate by"),
            )
        result.rows_deduplicated = rest
        return
    result.rows_deduplicated = counts.duplicates
    if (counts.landed, counts.quarantined) != (written, q_commit.rows_written):
        if unseen_deletes and not (commit.metrics or {}).get("numSourceRows"):
            return  # first write of a merge table: rows flagged for deletion are not inserted
        raise RunError(
            Code.ROW_ACCOUNTING,
            f"{step.location}: {step.table}: counted landed {counts.landed} / quarantined "
            f"{counts.quarantined}, but commits wrote {written} / {q_commit.rows_written}",
        )
