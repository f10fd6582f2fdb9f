"""Conform: upstream table -> silver with the declared schema enforced.

One pass of Column expressions flags every row: ``try_cast`` per declared column, a
non-null input that fails to cast, a null key or ``nullable: false`` column, or a
malformed raw record (bronze's ``_lf_corrupt_record``) is a reason. Valid rows are then
ranked per key (``sequence_by`` desc, then newest ingestion) and one row per key lands;
the others are counted as deduplicated. Failing rows go to ``<table>__quarantine`` with
the original record and every reason, and so do rows an expectation with action ``drop``
removes (reason ``drop:<name>``, counted as dropped). Nothing is dropped without being
counted: rows in = landed + quarantined + dropped + deduplicated. Landed and quarantined rows are what the
two commits report, rows in come from Delta's file statistics (or a scan of the change
feed); the rest are the deduplicated rows, which must be none for a table without keys.
``verify_counts: true`` adds an independent counting pass over the categorized input
(one more read, cast and shuffle: about a third of the step at 6M rows, see bench/) whose
figures must equal the commits'.

Modes: ``overwrite`` rebuilds from the input version; ``append``, ``merge`` and ``scd2``
read only the input's changes since the version this table last consumed (Delta change
data feed), recorded in each commit's userMetadata. Writes are ordered quarantine first,
then the table, both with Delta txn ids keyed by the input version, so a crash between
them and a rerun neither loses nor duplicates rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeforge.errors import Code, RunError
from lakeforge.io.delta import (
    Commit,
    Txn,
    count_rows,
    find_commit,
    latest_version,
    merge_into,
    read_changes,
    read_version,
    reports_observations,
    table_exists,
    write_table,
)
from lakeforge.io.files import CORRUPT, META_INGESTED_AT, META_RUN_ID, META_SOURCE_FILE
from lakeforge.plan.steps import ConformStep
from lakeforge.quality.evaluate import (
    BAD,
    CHECK_PREFIXES,
    Aggregates,
    ExpectationResult,
    RowOutcome,
    aside_observation,
    evaluate_rows,
    evaluate_table,
    find_raising,
    landed_observation,
    measure_landed,
    measure_observed,
    with_checks,
)
from lakeforge.quality.spec import Expectation
from lakeforge.results import StepResult
from lakeforge.runtime.faults import fail_during, fail_point
from lakeforge.steps import scd2
from lakeforge.steps.casting import strict_cast
from lakeforge.steps.context import StepContext
from lakeforge.steps.versions import resolve_version

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

REASONS = "_lf_reasons"
CATEGORY = "_lf_category"  # land | quarantine | duplicate
# Quarantined records keep timestamps to the microsecond, so that rows set aside by an
# expectation can be typed again exactly (see ``set_aside_rows``).
JSON_OPTIONS = {
    "ignoreNullFields": "false",
    "timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "timestampNTZFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSS",
}
DELETE = "_lf_delete"
LINEAGE = (META_SOURCE_FILE, META_INGESTED_AT)


def cast_name(column: str) -> str:
    return f"__lf_cast_{column}"


def flag_rows(df: DataFrame, step: ConformStep) -> DataFrame:
    """Add the cast columns and ``_lf_reasons`` (an empty array = valid)."""
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
        if not column.nullable or name in spec.keys:
            reasons.append(F.when(raw.isNull(), F.lit(f"null_not_allowed:{name}")))
            failing.append(raw.isNull())
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
    if not spec.keys or spec.mode == "scd2":
        return flagged.withColumn(
            CATEGORY, F.when(invalid, F.lit("quarantine")).otherwise(F.lit("land"))
        )
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


def landed_rows(ranked: DataFrame, step: ConformStep, run_id: str) -> DataFrame:
    """The declared columns (typed) + lineage columns, for rows that land."""
    from pyspark.sql import functions as F

    cols = [F.col(cast_name(name)).alias(name) for name in step.spec.columns]
    lineage = [F.col(c) for c in LINEAGE if c in ranked.columns]
    if META_SOURCE_FILE not in ranked.columns:
        lineage.append(F.lit(None).cast("string").alias(META_SOURCE_FILE))
    if META_INGESTED_AT not in ranked.columns:
        lineage.append(F.lit(None).cast("timestamp").alias(META_INGESTED_AT))
    extra = [F.col(DELETE)] if DELETE in ranked.columns else []
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


def last_consumed(spark: SparkSession, table: str, source: str) -> tuple[int | None, str | None]:
    """The input version the newest lakeforge commit of ``table`` consumed, and the hash of
    the step definition that made it (None, None when there is none)."""
    from delta.tables import DeltaTable

    from lakeforge.io.delta import parse_metadata

    history = DeltaTable.forName(spark, table).history().select("userMetadata")
    for row in history.collect():
        meta = parse_metadata(row["userMetadata"])
        versions = meta.get("source_versions")
        if isinstance(versions, dict) and source in versions:
            return int(versions[source]), meta.get("spec_hash")
    return None, None


def spec_hash(step: ConformStep) -> str:
    """Identifies the step's definition: a changed definition must rebuild, not skip."""
    import hashlib

    text = step.spec.model_dump_json(by_alias=True) + repr(step.expectations)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Quality:
    """The step's expectations: which apply, their results, and recording them."""

    ctx: StepContext
    step: ConformStep
    row_level: list[Expectation]
    table_level: list[Expectation]
    rows: RowOutcome | None = None  # row-level ones (but fail), measured on what was written
    # "observation" (by both writes), "observation+job" (the table's write, and a job over
    # the rows set aside) or "aggregation" (a job over what both wrote)
    measured_by: str | None = None
    results: list[ExpectationResult] = field(default_factory=list)
    raised: dict[str, str] = field(default_factory=dict)  # expectation name -> error

    @classmethod
    def start(cls, ctx: StepContext, step: ConformStep) -> Quality:
        active = [e for e in step.expectations if e.applies(ctx.data_env)]
        return cls(
            ctx,
            step,
            [e for e in active if e.level == "row"],
            [e for e in active if e.level == "table"],
        )

    @property
    def blocking(self) -> list[Expectation]:
        """Row-level ones with action ``fail``: counted before any commit."""
        return [e for e in self.row_level if e.action == "fail"]

    @property
    def measured(self) -> list[Expectation]:
        """The other row-level ones: counted on what the two writes wrote."""
        return [e for e in self.row_level if e.action != "fail"]

    @property
    def before_commit(self) -> list[Expectation]:
        """Table-level ones with action ``fail``: judged on the rows about to be written."""
        return [e for e in self.table_level if e.action == "fail"]

    @property
    def after_commit(self) -> list[Expectation]:
        """The other table-level ones: judged on the version written."""
        return [e for e in self.table_level if e.action != "fail"]

    def all_results(self) -> list[ExpectationResult]:
        return (self.rows.results if self.rows else []) + self.results

    def stop_if_failed(self, result: StepResult) -> None:
        """Action ``fail``: record the results, then stop before any commit."""
        blocking = [r for r in self.all_results() if r.blocks]
        if not blocking:
            return
        self.record(result, None)
        what = "; ".join(_describe(r) for r in blocking)
        raise RunError(
            Code.EXPECTATION_FAILED,
            f"{self.step.location}: {self.step.table}: expectation(s) with action fail did "
            f"not hold, nothing committed: {what}",
        )

    def record(self, result: StepResult, version: int | None) -> None:
        """Persist to ``lakeforge.quality_results`` and write the HTML report."""
        results = self.all_results()
        if not results:
            return
        from lakeforge.lineage.system_tables import append_quality_results
        from lakeforge.quality.report import result_rows, suite_result, write_report

        ctx, table = self.ctx, self.step.table
        result.expectations = len(results)
        result.expectations_failed = sum(1 for r in results if not r.success)
        append_quality_results(
            ctx.spark, result_rows(ctx.pipeline, ctx.run_id, table, version, results, ctx.data_env)
        )
        if ctx.reports_dir is not None:
            rows = self.rows
            suite = suite_result(
                table,
                ctx.run_id,
                version,
                results,
                ctx.data_env,
                {
                    "rows_evaluated": rows.rows if rows else None,
                    "rows_quarantined": rows.quarantined if rows else None,
                    "rows_dropped": rows.dropped if rows else None,
                    "measured_by": self.measured_by,
                },
            )
            result.quality_report = str(write_report(ctx.reports_dir, ctx.run_id, table, suite))


def _describe(r: ExpectationResult) -> str:
    e = r.expectation
    if r.exception is not None:
        return f"{e.name} ({e.origin}) raised: {r.exception}"
    if r.unexpected_count is not None and r.unexpected_percent is not None:
        return (
            f"{e.name} ({e.origin}): {r.unexpected_count} of {r.element_count} rows unexpected "
            f"({r.unexpected_percent:.2f}%), e.g. {list(r.sample)}"
        )
    return f"{e.name} ({e.origin}): observed {r.observed_value}"


def check_schema(spark: SparkSession, step: ConformStep, landed: DataFrame, exists: bool) -> bool:
    """Declared columns vs the existing table; returns whether to add columns.

    Raises:
        RunError: ``LF-RUN-005`` naming new, missing or retyped columns.
    """
    if not exists:
        return False
    existing = {c: t for c, t in spark.table(step.table).dtypes}
    wanted = {c: t for c, t in landed.dtypes if c != DELETE}
    if step.spec.mode == "scd2":
        existing = {c: t for c, t in existing.items() if c not in scd2.SCD2_COLUMNS}
    new = [c for c in wanted if c not in existing]
    gone = [c for c in existing if c not in wanted]
    retyped = [
        f"{c} ({existing[c]} -> {t})"
        for c, t in wanted.items()
        if c in existing and existing[c] != t
    ]
    problems = []
    if retyped:
        problems.append(f"retyped columns {retyped}")
    if step.spec.schema_evolution == "fail":
        if new:
            problems.append(f"new columns {new}")
        if gone:
            problems.append(f"missing columns {gone}")
    if problems:
        hint = "" if retyped else "; set schema_evolution: add_columns to accept new columns"
        raise RunError(
            Code.SCHEMA_CHANGED,
            f"{step.location}: {step.table}: declared schema differs from the table: "
            f"{'; '.join(problems)}{hint}",
        )
    return bool(new)


def run_conform(ctx: StepContext, step: ConformStep, result: StepResult) -> None:
    _conform(ctx, step, result, Quality.start(ctx, step))


@dataclass
class Checked:
    """The input with its checks, rebuilt when an expectation turns out to raise."""

    flagged: DataFrame  # casts and their reasons
    step: ConformStep
    quality: Quality
    record_schema: Any  # the source columns' schema, as quarantine records hold them
    run_id: str
    rows: DataFrame = field(init=False)  # ... plus the row-level expectations
    ranked: DataFrame = field(init=False)
    landed: DataFrame = field(init=False)  # the rows that land, as the table holds them

    def __post_init__(self) -> None:
        self.build()

    def build(self) -> None:
        checks = self.quality.row_level
        self.rows = self.flagged
        if checks:
            declared = list(self.step.spec.columns)
            raised = self.quality.raised
            self.rows = with_checks(self.flagged, checks, declared, cast_name, raised)
        spark = self.flagged.sparkSession
        if self.step.spec.mode == "scd2":
            self.ranked = scd2.categorize(spark, self.rows, self.step)
        else:
            self.ranked = rank_rows(self.rows, self.step)
        self.landed = landed_rows(self.ranked, self.step, self.run_id)

    def first_job(self, job: Any) -> Any:
        """Run the first job that evaluates the expectations. If it fails, find the ones
        that raise; they are recorded and follow their action, and the job runs again."""
        try:
            return job()
        except Exception:
            pending = [e for e in self.quality.row_level if e.name not in self.quality.raised]
            if not pending:
                raise
            declared = list(self.step.spec.columns)
            raised = find_raising(self.flagged, pending, declared, cast_name)
            if not raised:
                raise
            self.quality.raised.update(raised)
            self.build()
            return job()


class _TableLevelRaised(Exception):
    """A table-level expectation raised while judged before the commit."""


def _conform(ctx: StepContext, step: ConformStep, result: StepResult, quality: Quality) -> None:
    spark = ctx.spark
    source = step.source_table
    if not table_exists(spark, source):
        raise RunError(
            Code.STEP_FAILED,
            f"{step.location}: {step.table}: upstream table {source} does not exist",
        )
    version = resolve_version(spark, step.source_ref)
    result.inputs[source] = version
    mode = step.spec.mode
    incremental = mode in ("append", "merge", "scd2")
    last, last_hash = (None, None)
    exists = table_exists(spark, step.table)
    q_exists = table_exists(spark, step.quarantine_table)
    if exists and q_exists:
        last, last_hash = last_consumed(spark, step.table, source)
    current_hash = spec_hash(step)
    if last is not None and last >= version and (incremental or last_hash == current_hash):
        # Nothing new upstream (and, for a rebuild, the same definition): no commit.
        result.version = latest_version(spark, step.table)
        result.quarantine_version = latest_version(spark, step.quarantine_table)
        return
    if not incremental:
        last = None
    if last is None:
        df = read_version(spark, source, version)
        rows_in: int | None = count_rows(spark, source, version)
    else:
        try:
            df = read_changes(spark, source, last + 1, version)
        except Exception as exc:  # CDF off or vacuumed: say so rather than guess
            raise RunError(
                Code.INCREMENTAL_UNAVAILABLE,
                f"{step.location}: {step.table}: cannot read changes of {source} "
                f"v{last + 1}..v{version}: {str(exc).splitlines()[0]}",
            ) from None
        rows_in = None
    source_columns = [c for c in df.columns if not c.startswith("_lf_") or c in (CORRUPT,)]
    record_schema = df.select(*[f"`{c}`" for c in source_columns if c != CORRUPT]).schema
    flagged = flag_rows(df, step)
    declared = list(step.spec.columns)
    if quality.blocking:
        # Only an expectation with action fail must be known before any commit: one
        # counting pass over the rows read, for all of them together.
        before = evaluate_rows(flagged, quality.blocking, declared, cast_name)
        quality.results += before.results
        quality.raised.update(before.raised)
    # The other row-level expectations cost no job here: the writes carry them.
    checked = Checked(flagged, step, quality, record_schema, ctx.run_id)
    before_commit = quality.before_commit
    if before_commit:
        # Only a table-level ``fail`` must be judged before the commit, on the rows about
        # to be written: that costs one more pass (and the dedup shuffle). ``warn`` ones
        # are judged after the commit on the version written, reading only their columns.
        def to_land() -> DataFrame:
            rows = checked.landed
            return rows.where(~rows[DELETE]) if DELETE in rows.columns else rows

        def preview() -> list[ExpectationResult]:
            judged = evaluate_table(to_land(), before_commit, declared)
            if any(r.exception for r in judged) and quality.row_level:
                # The rows judged went through the row-level expectations: one of those
                # may be what raised. Failing the job lets first_job look for it.
                raise _TableLevelRaised
            return judged

        try:
            quality.results += checked.first_job(preview)
        except _TableLevelRaised:  # no row-level expectation was to blame
            quality.results += evaluate_table(to_land(), before_commit, declared)
    quality.stop_if_failed(result)
    # A first merge write with delete_when drops flagged rows before any commit sees them:
    # only the counting pass can tell those from duplicates.
    first_delete = mode == "merge" and step.spec.delete_when is not None and not exists
    counts: Counts | None = None
    if step.spec.verify_counts or first_delete:
        counts = checked.first_job(lambda: count_categories(checked.ranked))
    elif rows_in is None:
        rows_in = df.count()  # no casts, no shuffle
    result.rows_read = rows_in if rows_in is not None else counts.rows if counts else 0
    meta = {"source_versions": {source: version}, "spec_hash": current_hash}
    txn_version = version + 1  # Delta txn versions must grow; source version 0 is valid

    # The declared schema is checked before anything is committed.
    add_columns = check_schema(spark, step, checked.landed, exists)
    txn = Txn(f"lakeforge:{step.table}<-{source}", txn_version) if incremental else None
    q_txn = (
        Txn(f"lakeforge:{step.quarantine_table}<-{source}", txn_version) if incremental else None
    )
    # Quarantine first: a crash after it is repaired by the txn-skipped retry.
    rewrite = "overwrite" if mode == "overwrite" else "append"
    quarantine = TableWrite(step.quarantine_table, rewrite, q_txn, q_exists)
    table = TableWrite(
        step.table,
        rewrite,
        txn,
        exists,
        add_columns=add_columns,
        merges=mode == "scd2" or (mode == "merge" and exists),
    )
    measured = quality.measured
    # When the table's write reports a Spark Observation, it counts the expectations on
    # the rows that land, and the quarantine's write (if it reports one too) on the rows
    # set aside: no job of their own. Otherwise they are counted after the commits.
    observe = bool(measured) and table.observed
    observe_aside = observe and quarantine.observed
    kept: list[DataFrame] = []  # the quarantine rows as written, kept for the measure
    aside: list[Observed] = []  # ... or their observation
    bound = result.rows_read  # no count an observation makes can exceed it

    def write_quarantine() -> Commit:
        # Quarantine does not depend on the per-key ranking (except scd2's late changes),
        # so it is written from the checked rows: one scan and cast, no shuffle.
        q_source = checked.ranked if mode == "scd2" else rank_free(checked.rows)
        aside[:] = [Observed.aside(measured, declared, bound)] if observe_aside else []
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
        return quarantine.write(rows, ctx.run_id, step.table, meta, observed=bool(aside))

    try:
        q_commit: Commit = checked.first_job(write_quarantine)
        now = q_commit.committed_now
        written = Written(
            q_commit,
            kept[0] if kept and now else None,
            aside[0].metrics() if aside and now else None,
        )
        _write_and_measure(ctx, step, result, quality, checked, written, counts, meta, table)
    finally:
        for frame in kept:
            frame.unpersist()


@dataclass(frozen=True)
class TableWrite:
    """How one of the step's two tables is written, decided once before any job runs."""

    table: str
    mode: str  # append | overwrite
    txn: Txn | None
    exists: bool
    add_columns: bool = False  # schema evolution: the declared columns add some
    merges: bool = False  # a MERGE (merge into an existing table, scd2), not a write

    @property
    def overwrite_schema(self) -> bool:
        return self.add_columns and self.mode == "overwrite"

    @property
    def observed(self) -> bool:
        """Whether the write reports a Spark Observation: not a MERGE, nor the creation of
        the table (see :func:`reports_observations`)."""
        return not self.merges and reports_observations(
            self.exists, self.mode, self.overwrite_schema, self.add_columns, self.txn
        )

    def write(
        self, rows: DataFrame, run_id: str, step: str, meta: dict[str, Any], observed: bool
    ) -> Commit:
        return write_table(
            rows,
            self.table,
            self.mode,
            run_id,
            step,
            txn=self.txn,
            metadata=meta,
            merge_schema=self.add_columns,
            overwrite_schema=self.overwrite_schema,
            observed=observed,
        )


def _write_and_measure(
    ctx: StepContext,
    step: ConformStep,
    result: StepResult,
    quality: Quality,
    checked: Checked,
    quarantined: Written,
    counts: Counts | None,
    meta: dict[str, Any],
    table: TableWrite,
) -> None:
    """Write the table itself, then measure the expectations on what both commits wrote."""
    spark, mode = ctx.spark, step.spec.mode
    declared = list(step.spec.columns)
    q_commit = quarantined.commit
    fail_point(f"conform.after_quarantine:{step.table}")

    landed = checked.landed
    measured, after_commit = quality.measured, quality.after_commit
    observed: Observed | None = None
    with fail_during(f"conform.write:{step.table}"):
        if mode == "scd2":
            commit = scd2.apply(
                spark, checked.ranked, step, ctx.run_id, table.txn, meta, table.add_columns
            )
        elif table.merges:
            commit = _merge(spark, landed, step, ctx.run_id, table.txn, meta, table.add_columns)
        else:
            out = landed.drop(DELETE) if DELETE in landed.columns else landed
            if mode == "merge" and DELETE in landed.columns:
                out = landed.where(~landed[DELETE]).drop(DELETE)
            if measured and table.observed:
                # The expectations are counted by the write itself (a Spark Observation):
                # no job of their own over the rows landed.
                observed = Observed.landed(measured, quality.raised, after_commit, result.rows_read)
            try:
                rows = observed.on(out) if observed is not None else out
                commit = table.write(rows, ctx.run_id, step.table, meta, observed is not None)
            except Exception:
                if observed is None:
                    raise
                # A warn expectation that raises must not cost the write: write without
                # it, then measure (and find it) the usual way.
                observed = None
                commit = table.write(out, ctx.run_id, step.table, meta, False)

    written: DataFrame | None = None  # this run's rows in the new version, read back

    def read_back() -> DataFrame:
        nonlocal written
        if written is None:
            written = written_rows(spark, step, commit)
        return written

    aggregated = None
    if measured:
        # Results of the row-level expectations, and the dropped rows, from what the two
        # commits wrote: observed by the table's write plus the quarantine's (or a small
        # job over the rows set aside), or else one job over this run's rows in the new
        # version (also computing the aggregates of the table-level ones judged after the
        # commit) and the small one.
        metrics = observed.metrics() if observed is not None and commit.committed_now else None
        by_write = quarantined.metrics
        aside = (
            by_write
            if by_write is not None
            else set_aside_rows(spark, step, quarantined, checked.record_schema)
        )
        if metrics is not None and observed is not None:
            quality.rows, aggregated = measure_observed(
                metrics,
                aside,
                measured,
                declared,
                quality.raised,
                observed.observing.n_of,
                observed.table_exps,
            )
            quality.measured_by = "observation" if by_write is not None else "observation+job"
        else:
            # Rows of this run in the new version live in files this commit wrote.
            bound = max(result.rows_read, int((commit.metrics or {}).get("numOutputRows", 0)))
            quality.rows, aggregated = measure_landed(
                read_back(), aside, measured, declared, quality.raised, after_commit, bound
            )
            quality.measured_by = "aggregation"
    _account(result, counts, commit, q_commit, step, quality)
    if after_commit:
        quality.results += evaluate_table(read_back(), after_commit, declared, aggregated)
    quality.record(result, commit.version)


@dataclass
class Observed:
    """A Spark ``Observation`` of one write, counting the expectations."""

    observation: Any
    observing: Aggregates
    table_exps: list[Expectation]  # table-level ones whose aggregates ride along

    # Spark refuses distinct aggregates in an observation, and the percentile ones are not
    # worth the risk: those are judged by a job of their own.
    NOT_OBSERVED = (
        "expect_column_median_to_be_between",
        "expect_column_quantile_values_to_be_between",
        "expect_column_unique_value_count_to_be_between",
        "expect_column_proportion_of_unique_values_to_be_between",
    )

    @staticmethod
    def _new() -> Any:
        import uuid

        from pyspark.sql import Observation

        return Observation(f"lakeforge_{uuid.uuid4().hex}")

    @classmethod
    def landed(
        cls,
        exps: list[Expectation],
        raised: dict[str, str],
        table_exps: list[Expectation],
        bound: int,
    ) -> Observed:
        """Of the table's write: its rows landed (see :func:`landed_observation`)."""
        folded = [] if any(e.type in cls.NOT_OBSERVED for e in table_exps) else table_exps
        return cls(cls._new(), landed_observation(exps, raised, folded, bound), folded)

    @classmethod
    def aside(cls, exps: list[Expectation], declared: list[str], bound: int) -> Observed:
        """Of the quarantine's write, over its checked rows (see :func:`aside_observation`)."""
        return cls(cls._new(), aside_observation(exps, declared, cast_name, bound), [])

    def on(self, df: DataFrame) -> DataFrame:
        return df.observe(self.observation, *self.observing.columns)

    def metrics(self, timeout: float = 60.0) -> dict[str, Any] | None:
        """The observed values, or None if they do not come (the caller then measures
        with a job of its own). ``Observation.get`` blocks until the query reports, so
        it waits in a daemon thread, bounded."""
        import threading

        got: dict[str, Any] = {}

        def wait() -> None:
            try:
                got["value"] = self.observation.get
            except Exception:  # no metrics: fall back
                got["value"] = None

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        waiter.join(timeout)
        value = got.get("value")
        return self.observing.read(dict(value)) if value else None


@dataclass(frozen=True)
class Written:
    """A quarantine commit, and the rows it wrote when they are still cached, or what
    the write observed of them."""

    commit: Commit
    rows: DataFrame | None = None
    metrics: dict[str, Any] | None = None  # observed by the write (see Observed.aside)


def set_aside_rows(
    spark: SparkSession, step: ConformStep, quarantined: Written, record_schema: Any
) -> DataFrame | None:
    """This run's quarantined rows that passed the cast and key checks (so an expectation
    set them aside), typed again from their JSON records, with their reasons."""
    from pyspark.sql import functions as F

    q_commit = quarantined.commit
    if not q_commit.rows_written:
        return None
    q = quarantined.rows
    if q is None:  # written by an earlier attempt (a retry skipped it): read them back
        run_id = (q_commit.meta or {}).get("lakeforge_run_id")
        q = spark.read.option("versionAsOf", q_commit.version).table(step.quarantine_table)
        q = q.where(F.col(META_RUN_ID) == F.lit(run_id))
    q = q.where(~F.exists("reasons", lambda r: _starts_with_any(r, CHECK_PREFIXES)))
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


def _starts_with_any(value: Column, prefixes: tuple[str, ...]) -> Column:
    from functools import reduce

    return reduce(lambda a, b: a | b, [value.startswith(p) for p in prefixes])


def written_rows(spark: SparkSession, step: ConformStep, commit: Commit) -> DataFrame:
    """The rows this step's commit wrote: the version it made, rows of its run (merge and
    scd2 keep other runs' rows; an overwrite holds only this run's)."""
    from pyspark.sql import functions as F

    run_id = (commit.meta or {}).get("lakeforge_run_id")
    df = spark.read.option("versionAsOf", commit.version).table(step.table)
    return df.where(F.col(META_RUN_ID) == F.lit(run_id)).select(*step.spec.columns)


def _account(
    result: StepResult,
    counts: Counts | None,
    commit: Commit,
    q_commit: Commit,
    step: ConformStep,
    quality: Quality,
) -> None:
    """Row accounting from the commits' own metrics.

    Landed and quarantined rows are what the two commits report; deduplicated rows are
    the rest of the rows read, which must be none when the table has no keys and can never
    be negative. With ``verify_counts`` (``counts`` given) all three are also counted in a
    separate pass over the categorized input and must agree with the commits.
    """
    # Rows set aside by drop expectations only sit in the quarantine too, counted apart.
    result.rows_dropped = quality.rows.dropped if quality.rows else 0
    result.rows_quarantined = q_commit.rows_written - result.rows_dropped
    written = commit.rows_written
    metrics = commit.metrics or {}
    if step.spec.mode == "scd2" and "numTargetRowsInserted" in metrics:
        written = int(metrics["numTargetRowsInserted"])  # the source also holds closing rows
    result.rows_written = written
    result.version = commit.version
    result.committed = commit.committed_now
    result.quarantine_version = q_commit.version
    result.quarantine_committed = q_commit.committed_now
    if counts is None:
        rest = result.rows_read - written - q_commit.rows_written
        can_drop = bool(step.spec.keys) or step.spec.mode == "scd2"
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
        if (
            step.spec.mode == "merge"
            and step.spec.delete_when is not None
            and not metrics.get("numSourceRows")
        ):
            return  # first write of a merge table: rows flagged for deletion are not inserted
        raise RunError(
            Code.ROW_ACCOUNTING,
            f"{step.location}: {step.table}: counted landed {counts.landed} / quarantined "
            f"{counts.quarantined}, but commits wrote {written} / {q_commit.rows_written}",
        )


def _merge(
    spark: SparkSession,
    landed: DataFrame,
    step: ConformStep,
    run_id: str,
    txn: Txn | None,
    meta: dict[str, Any],
    add_columns: bool,
) -> Commit:
    """Upsert by keys. A row older than the table's (by ``sequence_by``) never wins."""
    spec = step.spec
    on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in spec.keys)
    columns = [c for c in landed.columns if c != DELETE]
    values = {f"`{c}`": f"s.`{c}`" for c in columns}
    newer = "true"
    if spec.sequence_by:
        seq = spec.sequence_by
        newer = f"(t.`{seq}` IS NULL OR s.`{seq}` >= t.`{seq}`)"
    deleting = DELETE in landed.columns

    def build(m: Any) -> Any:
        if deleting:
            m = m.whenMatchedDelete(condition=f"s.`{DELETE}` AND {newer}")
            m = m.whenMatchedUpdate(condition=f"NOT s.`{DELETE}` AND {newer}", set=values)
            return m.whenNotMatchedInsert(condition=f"NOT s.`{DELETE}`", values=values)
        return m.whenMatchedUpdate(condition=newer, set=values).whenNotMatchedInsert(values=values)

    return merge_into(
        spark,
        landed,
        step.table,
        on,
        run_id,
        step.table,
        build,
        txn=txn,
        metadata=meta,
        auto_merge_schema=add_columns,
    )


__all__ = ["find_commit", "run_conform"]
