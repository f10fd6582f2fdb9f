"""The quality gate of a conform step: checks in, checked frame and observers out;
commits in, results out (as Databricks DQX's ``apply_checks_and_split`` returns valid
rows, invalid rows and an observation).

:class:`Quality` sorts a table's expectations by level and action (``fail`` ones are
judged before any commit, the others on what the writes wrote). :class:`Checked` is the
flagged input with the row-level expectations applied (lazily: no job) and the step's
ranking derived from it; when the first job that evaluates them fails, it finds the
expectations that raise and rebuilds. :class:`Observed` is a Spark ``Observation`` a
write carries to count the expectations on the rows it writes; :meth:`Quality.measure`
turns the two commits (and their observations, or a job over what they wrote) into
results, and :meth:`Quality.record` persists them. The machinery is in
:mod:`lakeforge.quality.evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lakeforge.config.models import Action
from lakeforge.errors import Code, RunError
from lakeforge.io.delta import Commit
from lakeforge.quality.evaluate import (
    BAD,
    REASONS,
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

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "BAD",
    "REASONS",
    "Checked",
    "Observed",
    "Quality",
    "Written",
]


class RunContext(Protocol):
    """What the gate needs of the step's run (``steps.context.StepContext`` has it)."""

    @property
    def spark(self) -> SparkSession: ...
    @property
    def run_id(self) -> str: ...
    @property
    def pipeline(self) -> str: ...
    @property
    def data_env(self) -> str | None: ...
    @property
    def reports_dir(self) -> Path | None: ...


@dataclass
class Quality:
    """A table's expectations: which apply, their results, and recording them."""

    ctx: RunContext
    table: str
    where: str  # the step's location in the YAML, for messages
    declared: list[str]
    row_level: list[Expectation]
    table_level: list[Expectation]
    rows: RowOutcome | None = None  # row-level ones (but fail), measured on what was written
    # "observation" (by both writes), "observation+job" (the table's write, and a job over
    # the rows set aside) or "aggregation" (a job over what both wrote)
    measured_by: str | None = None
    results: list[ExpectationResult] = field(default_factory=list)
    raised: dict[str, str] = field(default_factory=dict)  # expectation name -> error

    @classmethod
    def start(
        cls,
        ctx: RunContext,
        table: str,
        where: str,
        declared: list[str],
        expectations: tuple[Expectation, ...],
    ) -> Quality:
        active = [e for e in expectations if e.applies(ctx.data_env)]
        return cls(
            ctx,
            table,
            where,
            declared,
            [e for e in active if e.level == "row"],
            [e for e in active if e.level == "table"],
        )

    @property
    def blocking(self) -> list[Expectation]:
        """Row-level ones with action ``fail``: counted before any commit."""
        return [e for e in self.row_level if e.action is Action.FAIL]

    @property
    def measured(self) -> list[Expectation]:
        """The other row-level ones: counted on what the two writes wrote."""
        return [e for e in self.row_level if e.action is not Action.FAIL]

    @property
    def before_commit(self) -> list[Expectation]:
        """Table-level ones with action ``fail``: judged on the rows about to be written."""
        return [e for e in self.table_level if e.action is Action.FAIL]

    @property
    def after_commit(self) -> list[Expectation]:
        """The other table-level ones: judged on the version written."""
        return [e for e in self.table_level if e.action is not Action.FAIL]

    def all_results(self) -> list[ExpectationResult]:
        return (self.rows.results if self.rows else []) + self.results

    def check_blocking(self, flagged: DataFrame, cast_name: Callable[[str], str]) -> None:
        """Count the row-level ``fail`` ones on the rows read: one pass for all of them."""
        if self.blocking:
            before = evaluate_rows(flagged, self.blocking, self.declared, cast_name)
            self.results += before.results
            self.raised.update(before.raised)

    def check_before_commit(self, checked: Checked, to_land: Callable[[], DataFrame]) -> None:
        """Judge the table-level ``fail`` ones on the rows about to be written: one more
        pass (and the dedup shuffle). ``warn`` ones are judged after the commit on the
        version written, reading only their columns."""
        before_commit = self.before_commit
        if not before_commit:
            return

        def preview() -> list[ExpectationResult]:
            judged = evaluate_table(to_land(), before_commit, self.declared)
            if any(r.exception for r in judged) and self.row_level:
                # The rows judged went through the row-level expectations: one of those
                # may be what raised. Failing the job lets first_job look for it.
                raise _TableLevelRaised
            return judged

        try:
            self.results += checked.first_job(preview)
        except _TableLevelRaised:  # no row-level expectation was to blame
            self.results += evaluate_table(to_land(), before_commit, self.declared)

    def stop_if_failed(self, result: StepResult) -> None:
        """Action ``fail``: record the results, then stop before any commit."""
        blocking = [r for r in self.all_results() if r.blocks]
        if not blocking:
            return
        self.record(result, None)
        what = "; ".join(_describe(r) for r in blocking)
        raise RunError(
            Code.EXPECTATION_FAILED,
            f"{self.where}: {self.table}: expectation(s) with action fail did "
            f"not hold, nothing committed: {what}",
        )

    def observe_landed(self, bound: int) -> Observed:
        """An observation for the table's write (see :meth:`Observed.landed`)."""
        return Observed.landed(self.measured, self.raised, self.after_commit, bound)

    def measure(
        self,
        commit: Commit,
        observed: Observed | None,
        quarantined: Written,
        set_aside: Callable[[], DataFrame | None],
        read_back: Callable[[], DataFrame],
        rows_read: int,
    ) -> dict[str, Any] | None:
        """Results of the row-level expectations, and the dropped rows, from what the two
        commits wrote: observed by the table's write plus the quarantine's (or a small job
        over the rows set aside), or else one job over this run's rows in the new version
        (also computing the aggregates of the table-level ones judged after the commit)
        and the small one. Returns those aggregates, when computed."""
        measured, after_commit = self.measured, self.after_commit
        if not measured:
            return None
        metrics = observed.metrics() if observed is not None and commit.committed_now else None
        by_write = quarantined.metrics
        aside = by_write if by_write is not None else set_aside()
        if metrics is not None and observed is not None:
            self.rows, aggregated = measure_observed(
                metrics,
                aside,
                measured,
                self.declared,
                self.raised,
                observed.observing.n_of,
                observed.table_exps,
            )
            self.measured_by = "observation" if by_write is not None else "observation+job"
            return aggregated
        # Rows of this run in the new version live in files this commit wrote.
        bound = max(rows_read, int((commit.metrics or {}).get("numOutputRows", 0)))
        self.rows, aggregated = measure_landed(
            read_back(), aside, measured, self.declared, self.raised, after_commit, bound
        )
        self.measured_by = "aggregation"
        return aggregated

    def judge_after_commit(
        self, read_back: Callable[[], DataFrame], aggregated: dict[str, Any] | None
    ) -> None:
        """Judge the table-level ones that wait for the commit, on the version written."""
        if self.after_commit:
            self.results += evaluate_table(
                read_back(), self.after_commit, self.declared, aggregated
            )

    @property
    def dropped(self) -> int:
        """Rows set aside by ``drop`` expectations only."""
        return self.rows.dropped if self.rows else 0

    def record(self, result: StepResult, version: int | None) -> None:
        """Persist to ``lakeforge.quality_results`` and write the HTML report."""
        results = self.all_results()
        if not results:
            return
        from lakeforge.lineage.system_tables import append_quality_results
        from lakeforge.quality.report import result_rows, suite_result, write_report

        ctx, table = self.ctx, self.table
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


class _TableLevelRaised(Exception):
    """A table-level expectation raised while judged before the commit."""


@dataclass
class Checked:
    """The flagged input with its row-level checks, and what the step derives from it
    (its ranking and the rows that land); rebuilt when an expectation turns out to raise.

    Args:
        derive: the checked rows -> (ranked rows, rows that land).
    """

    flagged: DataFrame  # casts and their reasons
    quality: Quality
    cast_name: Callable[[str], str]
    derive: Callable[[DataFrame], tuple[DataFrame, DataFrame]]
    rows: DataFrame = field(init=False)  # ... plus the row-level expectations
    ranked: DataFrame = field(init=False)
    landed: DataFrame = field(init=False)  # the rows that land, as the table holds them

    def __post_init__(self) -> None:
        self.build()

    def build(self) -> None:
        checks = self.quality.row_level
        self.rows = self.flagged
        if checks:
            q = self.quality
            self.rows = with_checks(self.flagged, checks, q.declared, self.cast_name, q.raised)
        self.ranked, self.landed = self.derive(self.rows)

    def first_job(self, job: Any) -> Any:
        """Run the first job that evaluates the expectations. If it fails, find the ones
        that raise; they are recorded and follow their action, and the job runs again."""
        try:
            return job()
        except Exception:
            q = self.quality
            pending = [e for e in q.row_level if e.name not in q.raised]
            if not pending:
                raise
            raised = find_raising(self.flagged, pending, q.declared, self.cast_name)
            if not raised:
                raise
            q.raised.update(raised)
            self.build()
            return job()


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
    def aside(
        cls,
        exps: list[Expectation],
        declared: list[str],
        bound: int,
        cast_name: Callable[[str], str],
    ) -> Observed:
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
