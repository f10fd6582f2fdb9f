"""Evaluate a table's expectations inside its conform step.

Row-level expectations become one boolean column each on the flagged rows (rows that
already failed a cast or a null key are quarantined for that and not evaluated). One
``agg`` then counts, per expectation, the rows considered and the rows unexpected, with a
small sample of failing values (first, smallest, largest), plus how many rows the actions
quarantine and drop: a single Spark job however many expectations there are. The same
columns feed the writes: a ``quarantine`` failure adds ``expectation:<name>`` to the row's
reasons, a ``drop`` failure marks the row dropped (counted, not written).

An expectation whose evaluation raises (an invalid regex, say) is found by evaluating the
suspects one at a time, only after the combined job failed. It is recorded as failed
with the exception text and follows its action: warn records it, fail stops the step,
drop and quarantine apply to every evaluated row (nothing unchecked lands).

Table-level expectations are judged on the rows this step writes (for ``overwrite``, the
whole new table; for the incremental modes, this run's batch) in one more ``agg``
(uniqueness needs its own grouping). Those with action ``fail`` are judged before the
commit, on the rows about to be written (a pass of their own); ``warn`` ones after it, on
the version just written, reading only the columns they need.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeforge.quality.compile import (
    considered,
    duplicate_rows,
    judge_table,
    sample_value,
    table_aggregates,
    unexpected,
)
from lakeforge.quality.spec import Expectation

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

REASONS = "_lf_reasons"
DROP = "_lf_drop"
CLEAN = "_lf_clean"  # passed the cast and key checks: the rows expectations evaluate
SAMPLE_SIZE = 3


def flag_name(i: int) -> str:
    return f"_lf_x{i}"


@dataclass
class ExpectationResult:
    """One expectation's outcome; :mod:`lakeforge.quality.report` renders it in Great
    Expectations' validation-result format."""

    expectation: Expectation
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    sample: tuple[str, ...] = ()
    exception: str | None = None

    @property
    def blocks(self) -> bool:
        """A failed expectation whose action stops the step."""
        return not self.success and self.expectation.action == "fail"


@dataclass
class RowOutcome:
    frame: DataFrame  # flagged rows with expectation columns, reasons and _lf_drop
    results: list[ExpectationResult] = field(default_factory=list)
    rows: int = 0
    quarantined: int = 0
    dropped: int = 0


def _resolver(declared: list[str], cast_name: Any) -> Any:
    from pyspark.sql import functions as F

    def col(name: str) -> Column:
        return F.col(cast_name(name)) if name in declared else F.col(f"`{name}`")

    return col


def _with_flags(
    flagged: DataFrame,
    exps: list[Expectation],
    raised: dict[int, str],
    col: Any,
) -> DataFrame:
    from pyspark.sql import functions as F

    clean = F.size(F.col(REASONS)) == 0  # cast and key checks passed
    flags = []
    for i, e in enumerate(exps):
        cond = F.lit(True) if i in raised else unexpected(e.type, e.kwargs, col)
        flags.append((clean & cond).alias(flag_name(i)))
    df = flagged.select("*", clean.alias(CLEAN), *flags)
    reasons = [
        F.when(F.col(flag_name(i)), F.lit(f"expectation:{e.name}"))
        for i, e in enumerate(exps)
        if e.action == "quarantine"
    ]
    if reasons:
        # Flags are false on rows that already have reasons, so appending cannot mix the
        # two kinds; one reference to the (costly) cast reasons keeps it computed once.
        df = df.withColumn(REASONS, F.concat(F.col(REASONS), F.array_compact(F.array(*reasons))))
    drops = [F.col(flag_name(i)) for i, e in enumerate(exps) if e.action == "drop"]
    drop = F.lit(False)
    for d in drops:
        drop = drop | d
    return df.withColumn(DROP, (F.size(F.col(REASONS)) == 0) & drop)


def _aggregates(exps: list[Expectation], col: Any, only: int | None = None) -> list[Column]:
    from pyspark.sql import functions as F

    out = [
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(F.size(F.col(REASONS)) > 0, 1).otherwise(0)).alias("quarantined"),
        F.sum(F.when(F.col(DROP), 1).otherwise(0)).alias("dropped"),
    ]
    for i, e in enumerate(exps):
        if only is not None and i != only:
            continue
        bad = F.col(flag_name(i))
        shown = F.when(bad, sample_value(e.type, e.kwargs, col))
        # Rows quarantined for their own casts or keys are not evaluated; the rest are.
        evaluated = F.col(CLEAN)
        out += [
            F.sum(F.when(bad, 1).otherwise(0)).alias(f"x{i}_bad"),
            F.sum(F.when(evaluated & considered(e.type, e.kwargs, col), 1).otherwise(0)).alias(
                f"x{i}_n"
            ),
            F.sum(F.when(evaluated, 1).otherwise(0)).alias(f"x{i}_all"),
            F.first(shown, ignorenulls=True).alias(f"x{i}_s1"),
            F.min(shown).alias(f"x{i}_s2"),
            F.max(shown).alias(f"x{i}_s3"),
        ]
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:500]


def evaluate_rows(
    flagged: DataFrame,
    exps: list[Expectation],
    declared: list[str],
    cast_name: Any,
    cache: bool = False,
) -> RowOutcome:
    """Add the expectation columns to ``flagged`` and count them in one job.

    Args:
        cache: persist the checked rows (memory and disk) while counting them, for the
            caller to reuse and then ``unpersist``.
    """
    col = _resolver(declared, cast_name)
    raised: dict[int, str] = {}

    def checked(raised_now: dict[int, str]) -> DataFrame:
        frame = _with_flags(flagged, exps, raised_now, col)
        if cache:
            from pyspark import StorageLevel

            frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
        return frame

    frame: DataFrame | None = None
    try:
        frame = checked(raised)
        row = frame.agg(*_aggregates(exps, col)).first()
    except Exception as first_error:  # find which expectation raises, one at a time
        for i in range(len(exps)):
            try:
                probe = _with_flags(flagged, exps, {j: "" for j in range(len(exps)) if j != i}, col)
                probe.agg(*_aggregates(exps, col, only=i)).first()
            except Exception as exc:
                raised[i] = _first_line(exc)
        if not raised:
            raise first_error
        if frame is not None:
            frame.unpersist()
        frame = checked(raised)
        row = frame.agg(*_aggregates(exps, col)).first()
    assert row is not None
    outcome = RowOutcome(
        frame=frame,
        rows=int(row["rows"] or 0),
        quarantined=int(row["quarantined"] or 0),
        dropped=int(row["dropped"] or 0),
    )
    for i, e in enumerate(exps):
        bad = int(row[f"x{i}_bad"] or 0)
        n = int(row[f"x{i}_n"] or 0)
        sample = tuple(
            sorted({str(row[f"x{i}_s{k}"]) for k in (1, 2, 3) if row[f"x{i}_s{k}"] is not None})
        )[:SAMPLE_SIZE]
        if i in raised:
            outcome.results.append(
                ExpectationResult(
                    e, False, int(row[f"x{i}_all"] or 0), None, None, exception=raised[i]
                )
            )
            continue
        percent = 100.0 * bad / n if n else 0.0
        mostly = float(e.kwargs.get("mostly", 1.0))
        success = n == 0 or (n - bad) / n >= mostly
        outcome.results.append(
            ExpectationResult(e, success, int(row[f"x{i}_all"] or 0), bad, percent, None, sample)
        )
    return outcome


def evaluate_table(
    landed: DataFrame, exps: list[Expectation], declared: list[str]
) -> list[ExpectationResult]:
    """Judge table-level expectations on the rows about to be written (declared names)."""
    from pyspark.sql import functions as F

    def col(name: str) -> Column:
        return F.col(f"`{name}`")

    schema = {f.name: f.dataType.simpleString() for f in landed.schema.fields if f.name in declared}
    aggs: list[Column] = []
    for i, e in enumerate(exps):
        aggs += table_aggregates(i, e.type, e.kwargs, col)
    row: dict[str, Any] = {}
    error: str | None = None
    if aggs:
        try:
            first = landed.agg(*aggs).first()
            row = first.asDict() if first is not None else {}
        except Exception as exc:
            error = _first_line(exc)
    out = []
    for i, e in enumerate(exps):
        kw = e.kwargs
        try:
            if error is not None and table_aggregates(i, e.type, kw, col):
                raise RuntimeError(error)
            dups = None
            if e.type == "expect_column_values_to_be_unique":
                dups = duplicate_rows(landed, [kw["column"]], col)
            elif e.type == "expect_compound_columns_to_be_unique":
                dups = duplicate_rows(landed, list(kw["column_list"]), col)
            j = judge_table(i, e.type, kw, row, schema, dups)
        except Exception as exc:
            out.append(ExpectationResult(e, False, exception=_first_line(exc)))
            continue
        percent = None
        if j.unexpected_count is not None and j.element_count:
            percent = 100.0 * j.unexpected_count / j.element_count
        out.append(
            ExpectationResult(
                e,
                j.success,
                j.element_count,
                j.unexpected_count,
                percent,
                _jsonable(j.observed),
                j.sample,
            )
        )
    return out


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)
