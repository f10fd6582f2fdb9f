"""Ingest: raw files -> bronze, appended as delivered with lineage columns."""

from __future__ import annotations

from lakeforge.errors import Code, RunError
from lakeforge.io.delta import write_table
from lakeforge.io.files import read_source, resolve_source_path
from lakeforge.plan.steps import IngestStep
from lakeforge.results import StepResult
from lakeforge.steps.context import StepContext


def run_ingest(ctx: StepContext, step: IngestStep, result: StepResult) -> None:
    from pyspark.errors import AnalysisException

    try:
        df = read_source(ctx.spark, step.spec.source, ctx.project_root, ctx.run_id)
    except AnalysisException as exc:
        if "PATH_NOT_FOUND" in str(exc) or "UNABLE_TO_INFER_SCHEMA" in str(exc):
            where = resolve_source_path(step.source_path, ctx.project_root)
            raise RunError(
                Code.SOURCE_EMPTY,
                f"{step.location}: {step.table}: no {step.source_format} files at {where}",
            ) from None
        raise
    commit = write_table(df, step.table, "append", ctx.run_id, step.table)
    result.version = commit.version
    result.rows_written = commit.rows_written
    # Until bronze learns malformed-record quarantine, every row read is landed as is.
    result.rows_read = commit.rows_written
