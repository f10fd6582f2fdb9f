"""Conform: upstream table -> silver with the declared schema enforced.

The step orchestrates read -> gate -> write -> account: the row protocol
(:mod:`lakeforge.steps.rows`) flags, ranks and sets rows aside and accounts for them (rows
in = landed + quarantined + dropped + deduplicated, from the commits' own metrics; with
``verify_counts: true`` also from one counting pass), the quality gate
(:mod:`lakeforge.quality.gate`) applies the expectations, and the strategy of the table's
mode (:mod:`lakeforge.write`) writes it. ``overwrite`` rebuilds from the input version;
the other modes read only the input's changes since the version the table last consumed
(Delta change data feed, recorded in each commit's userMetadata). Writes are ordered
quarantine first, then the table, both with Delta txn ids keyed by the input version, so
a crash between them and a rerun neither loses nor duplicates rows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from lakeforge.errors import Code, RunError
from lakeforge.faults import fail_during, fail_point
from lakeforge.io.delta import (
    Commit,
    count_rows,
    find_commit,
    lakeforge_meta,
    latest_version,
    read_changes,
    read_version,
    table_exists,
)
from lakeforge.io.files import CORRUPT
from lakeforge.plan.steps import ConformStep
from lakeforge.quality.gate import Checked, Observed, Quality, Written
from lakeforge.results import StepResult
from lakeforge.steps.context import StepContext
from lakeforge.steps.rows import (
    DELETE,
    Counts,
    account,
    cast_name,
    count_categories,
    flag_rows,
    landed_rows,
    quarantine_rows,
    rank_free,
    rank_history,
    rank_rows,
    set_aside_rows,
    written_rows,
)
from lakeforge.steps.versions import resolve_version
from lakeforge.write import Target, WriteStrategy, aside_for, spec_hash, strategy_for

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["find_commit", "run_conform"]


def run_conform(ctx: StepContext, step: ConformStep, result: StepResult) -> None:
    quality = Quality.start(
        ctx, step.table, str(step.location), list(step.spec.columns), step.expectations
    )
    _conform(ctx, step, result, quality)


def _read(
    ctx: StepContext, step: ConformStep, version: int, last: int | None
) -> tuple[DataFrame, int | None]:
    """The input version (and its row count from file statistics), or its changes since
    the version last consumed (counted later)."""
    spark, source = ctx.spark, step.source_table
    if last is None:
        return read_version(spark, source, version), count_rows(spark, source, version)
    try:
        return read_changes(spark, source, last + 1, version), None
    except Exception as exc:  # CDF off or vacuumed: say so rather than guess
        raise RunError(
            Code.INCREMENTAL_UNAVAILABLE,
            f"{step.location}: {step.table}: cannot read changes of {source} "
            f"v{last + 1}..v{version}: {str(exc).splitlines()[0]}",
        ) from None


def _conform(ctx: StepContext, step: ConformStep, result: StepResult, quality: Quality) -> None:
    spark, spec, source = ctx.spark, step.spec, step.source_table
    strategy = strategy_for(spec.mode)
    # One metastore lookup and one log read for the input, shared with resolve_version.
    newest = latest_version(spark, source)
    if newest is None:
        raise RunError(
            Code.STEP_FAILED,
            f"{step.location}: {step.table}: upstream table {source} does not exist",
        )
    version = resolve_version(spark, step.source_ref, latest=newest)
    result.inputs[source] = version
    exists = table_exists(spark, step.table)
    q_exists = table_exists(spark, step.quarantine_table)
    last: int | None = None
    last_hash = None
    if exists and q_exists:
        consumed = lakeforge_meta(spark, step.table, consumed=source, known=True)
        if consumed:
            last, last_hash = int(consumed["source_versions"][source]), consumed.get("spec_hash")
    current_hash = spec_hash(spec.model_dump_json(by_alias=True), repr(step.expectations))
    if last is not None and last >= version and (strategy.incremental or last_hash == current_hash):
        # Nothing new upstream (and, for a rebuild, the same definition): no commit.
        result.version = latest_version(spark, step.table, known=True)
        result.quarantine_version = latest_version(spark, step.quarantine_table, known=True)
        return
    df, rows_in = _read(ctx, step, version, last if strategy.incremental else None)
    source_columns = [c for c in df.columns if not c.startswith("_lf_") or c in (CORRUPT,)]
    record_schema = df.select(*[f"`{c}`" for c in source_columns if c != CORRUPT]).schema
    flagged = flag_rows(df, step)
    # Only an expectation with action fail must be known before any commit; the other
    # row-level ones cost no job here: the writes carry them.
    quality.check_blocking(flagged, cast_name)

    def derive(rows: DataFrame) -> tuple[DataFrame, DataFrame]:
        if strategy.keeps_history:
            ranked = rank_history(spark, rows, step)
        else:
            ranked = rank_rows(rows, step)
        return ranked, landed_rows(ranked, step, ctx.run_id)

    checked = Checked(flagged, quality, cast_name, derive)

    def to_land() -> DataFrame:
        rows = checked.landed
        return rows.where(~rows[DELETE]) if DELETE in rows.columns else rows

    quality.check_before_commit(checked, to_land)
    quality.stop_if_failed(result)
    meta = {"source_versions": {source: version}, "spec_hash": current_hash}
    target = Target(
        step.table,
        step.table,
        ctx.run_id,
        exists,
        meta,
        txn=strategy.silver_txn(step.table, source, version),
        keys=tuple(spec.keys),
        sequence_by=spec.sequence_by,
        delete=DELETE if spec.delete_when is not None else None,
    )
    # Rows a first merge write deletes vanish before any commit sees them: only the
    # counting pass can tell those from duplicates.
    unseen_deletes = strategy.unseen_deletes(target)
    counts: Counts | None = None
    if spec.verify_counts or unseen_deletes:
        counts = checked.first_job(lambda: count_categories(checked.ranked))
    elif rows_in is None:
        rows_in = df.count()  # no casts, no shuffle
    result.rows_read = rows_in if rows_in is not None else counts.rows if counts else 0

    # The declared schema is checked before anything is committed.
    where = str(step.location)
    add = strategy.check_schema(spark, target, checked.landed, spec.schema_evolution, where)
    target = replace(target, add_columns=add)
    # Quarantine first: a crash after it is repaired by the txn-skipped retry.
    aside_by = aside_for(strategy)
    q_target = Target(
        step.quarantine_table,
        step.table,
        ctx.run_id,
        q_exists,
        meta,
        txn=aside_by.silver_txn(step.quarantine_table, source, version),
    )
    measured, declared = quality.measured, list(spec.columns)
    # When the table's write reports a Spark Observation, it counts the expectations on
    # the rows that land, and the quarantine's write (if it reports one too) on the rows
    # set aside: no job of their own. Otherwise they are counted after the commits.
    observe_aside = bool(measured) and strategy.observes(target) and aside_by.observes(q_target)
    kept: list[DataFrame] = []  # the quarantine rows as written, kept for the measure
    aside: list[Observed] = []  # ... or their observation
    bound = result.rows_read  # no count an observation makes can exceed it

    def write_quarantine() -> Commit:
        # Quarantine does not depend on the per-key ranking (except a history's late
        # changes), so it is written from the checked rows: one scan and cast, no shuffle.
        q_source = checked.ranked if strategy.keeps_history else rank_free(checked.rows)
        aside[:] = [Observed.aside(measured, declared, bound, cast_name)] if observe_aside else []
        rows = quarantine_rows(
            q_source, source_columns, step, version, ctx.run_id, aside[0] if aside else None
        )
        if measured and not aside:
            # The write fills the cache (few rows, by design): the measure then reads
            # them from memory instead of the table's new version.
            from pyspark import StorageLevel

            for old in kept:
                old.unpersist()
            kept[:] = [rows.persist(StorageLevel.MEMORY_AND_DISK)]
        return aside_by.write(rows, q_target, observed=bool(aside))

    try:
        q_commit: Commit = checked.first_job(write_quarantine)
        now = q_commit.committed_now
        written = Written(
            q_commit,
            kept[0] if kept and now else None,
            aside[0].metrics() if aside and now else None,
        )
        fail_point(f"conform.after_quarantine:{step.table}")
        commit, observed = _write(step, strategy, target, quality, checked.landed, result)
        back: list[DataFrame] = []  # this run's rows in the new version, read back

        def read_back() -> DataFrame:
            if not back:
                back.append(written_rows(spark, step, commit))
            return back[0]

        aggregated = quality.measure(
            commit,
            observed,
            written,
            lambda: set_aside_rows(spark, step, written, record_schema),
            read_back,
            result.rows_read,
        )
        account(result, counts, commit, q_commit, step, quality.dropped, strategy, unseen_deletes)
        quality.judge_after_commit(read_back, aggregated)
        quality.record(result, commit.version)
    finally:
        for frame in kept:
            frame.unpersist()


def _write(
    step: ConformStep,
    strategy: WriteStrategy,
    target: Target,
    quality: Quality,
    landed: DataFrame,
    result: StepResult,
) -> tuple[Commit, Observed | None]:
    """Write the table itself, carrying the observation of its expectations if the
    strategy's write reports one."""
    observed: Observed | None = None
    with fail_during(f"conform.write:{step.table}"):
        if quality.measured and strategy.observes(target):
            # The expectations are counted by the write itself (a Spark Observation):
            # no job of their own over the rows landed.
            observed = quality.observe_landed(result.rows_read)
        try:
            rows = observed.on(landed) if observed is not None else landed
            return strategy.write(rows, target, observed is not None), observed
        except Exception:
            if observed is None:
                raise
            # A warn expectation that raises must not cost the write: write without
            # it, then measure (and find it) the usual way.
            return strategy.write(landed, target, False), None
