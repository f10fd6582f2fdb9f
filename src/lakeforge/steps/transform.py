"""Transform: SQL over registered tables -> gold (full rebuild or append)."""

from __future__ import annotations

from lakeforge.io.delta import count_rows, latest_version, write_table
from lakeforge.plan.steps import TransformStep
from lakeforge.results import StepResult
from lakeforge.steps.context import StepContext


def run_transform(ctx: StepContext, step: TransformStep, result: StepResult) -> None:
    spark = ctx.spark
    for table in step.inputs:
        version = latest_version(spark, table)
        if version is not None:
            result.inputs[table] = version
            result.rows_read += count_rows(spark, table, version)
    df = spark.sql(step.sql)
    commit = write_table(
        df, step.table, step.mode, ctx.run_id, step.table, overwrite_schema=step.mode == "overwrite"
    )
    result.version = commit.version
    result.rows_written = commit.rows_written
