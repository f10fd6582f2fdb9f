"""Conform: upstream table -> silver with the declared schema enforced.

Each declared column is cast with ``try_cast``; a row whose non-null input fails to
cast, or whose required column (a key, or ``nullable: false``) is null, goes to the
quarantine table ``<table>__quarantine`` with the original record as JSON and every
reason. All checks are Column expressions evaluated in one pass; rows are then split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakeforge.errors import Code, RunError
from lakeforge.io.delta import count_rows, latest_version, read_version, write_table
from lakeforge.io.files import META_COLUMNS, META_INGESTED_AT, META_RUN_ID, META_SOURCE_FILE
from lakeforge.plan.steps import ConformStep
from lakeforge.results import StepResult
from lakeforge.steps.context import StepContext

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

REASONS = "_lf_reasons"


def conform(df: DataFrame, step: ConformStep) -> DataFrame:
    """Add the cast columns and an array of failure reasons (empty = valid)."""
    from pyspark.sql import functions as F

    spec = step.spec
    missing = [
        c.source or name for name, c in spec.columns.items() if (c.source or name) not in df.columns
    ]
    if missing:
        available = [c for c in df.columns if c not in META_COLUMNS]
        raise RunError(
            Code.STEP_FAILED,
            f"{step.location}: {step.table}: columns {missing} are not in {step.source_table} "
            f"(available: {available})",
        )
    casts: list[Column] = []
    reasons: list[Column] = []
    for name, column in spec.columns.items():
        raw = F.col(f"`{column.source or name}`")
        typed = raw.try_cast(column.type)
        casts.append(typed.alias(f"__lf_cast_{name}"))
        # A failed cast is a non-null input that became null.
        reasons.append(
            F.when(
                raw.isNotNull() & typed.isNull(),
                F.concat(F.lit(f"cast_failed:{name}:{column.type}:"), raw.cast("string")),
            )
        )
        if not column.nullable or name in spec.keys:
            reasons.append(F.when(raw.isNull(), F.lit(f"null_not_allowed:{name}")))
    flagged = df.select(
        "*", *casts, F.filter(F.array(*reasons), lambda r: r.isNotNull()).alias(REASONS)
    )
    return flagged


def valid_rows(flagged: DataFrame, step: ConformStep) -> DataFrame:
    from pyspark.sql import functions as F

    cols = [F.col(f"__lf_cast_{name}").alias(name) for name in step.spec.columns]
    lineage = [F.col(c) for c in (META_SOURCE_FILE, META_INGESTED_AT) if c in flagged.columns]
    return flagged.where(F.size(REASONS) == 0).select(*cols, *lineage)


def quarantine_rows(
    flagged: DataFrame,
    source_columns: list[str],
    step: ConformStep,
    source_version: int,
    run_id: str,
) -> DataFrame:
    from pyspark.sql import functions as F

    # Keep nulls in the record: a missing key is often the very reason for quarantine.
    record = F.to_json(
        F.struct(*[F.col(f"`{c}`") for c in source_columns]), {"ignoreNullFields": "false"}
    )
    source_file = (
        F.col(META_SOURCE_FILE)
        if META_SOURCE_FILE in flagged.columns
        else F.lit(None).cast("string")
    )
    return flagged.where(F.size(REASONS) > 0).select(
        record.alias("record"),
        F.col(REASONS).alias("reasons"),
        F.array_join(REASONS, "; ").alias("reason"),
        F.lit(step.source_table).alias("source_table"),
        F.lit(source_version).cast("bigint").alias("source_version"),
        source_file.alias("source_file"),
        F.lit(run_id).alias(META_RUN_ID),
        F.current_timestamp().alias("quarantined_at"),
    )


def run_conform(ctx: StepContext, step: ConformStep, result: StepResult) -> None:
    spark = ctx.spark
    version = latest_version(spark, step.source_table)
    if version is None:
        raise RunError(
            Code.STEP_FAILED,
            f"{step.location}: {step.table}: upstream table {step.source_table} does not exist",
        )
    result.inputs[step.source_table] = version
    source = read_version(spark, step.source_table, version)
    source_columns = [c for c in source.columns if c not in (META_RUN_ID, META_INGESTED_AT)]
    flagged = conform(source, step)
    mode = step.spec.mode
    commit = write_table(
        valid_rows(flagged, step).select("*", _run_id_col(ctx.run_id)),
        step.table,
        mode,
        ctx.run_id,
        step.table,
    )
    # The quarantine table follows the table's mode: an overwritten silver table gets an
    # overwritten quarantine (this run's rejects), so a rerun equals one clean run.
    q_commit = write_table(
        quarantine_rows(flagged, source_columns, step, version, ctx.run_id),
        step.quarantine_table,
        mode,
        ctx.run_id,
        step.table,
    )
    result.rows_read = count_rows(spark, step.source_table, version)
    result.rows_written = commit.rows_written
    result.rows_quarantined = q_commit.rows_written
    result.version = commit.version
    result.quarantine_version = q_commit.version


def _run_id_col(run_id: str) -> Column:
    from pyspark.sql import functions as F

    return F.lit(run_id).alias(META_RUN_ID)
