"""Evaluate a table's expectations inside its conform step, without a pass of their own.

Row-level expectations become one boolean column each on the flagged rows (rows that
already failed a cast or a null key are quarantined for that and not evaluated). They
cost no Spark job before the commit: the writes carry them. A ``quarantine`` failure adds
``expectation:<name>`` to the row's reasons, a ``drop`` failure ``drop:<name>``; either
sends the row to the table's quarantine, so nothing is lost and a dropped row can still be
audited. Dropped is an outcome of its own, told from the expectations' flags and actions
(:func:`_dropped`), never decoded back from the reasons: the accounting counts such a row
as dropped, not quarantined.

Results are then measured on what the step wrote: this run's rows in the version just
committed plus the rows this run set aside by an expectation. When the table and its
quarantine already exist, each write counts its own rows with a Spark ``Observation``
(:func:`landed_observation`, :func:`aside_observation`): no job at all. Otherwise one job
counts the landed rows read back (the same lean aggregates, :func:`measure_landed`) and a
small one the rows set aside (few, by design). Either way the counts over many rows are
packed into a few 64-bit sums (:func:`_pack`): an Observation updates every aggregate for
every row outside whole-stage codegen, so fewer aggregates is what makes it cheap. Rows that a
newer row of the same key superseded are not written, so they are not counted; warn
percentages describe the table's new rows, as Great Expectations would validating it.

Only an expectation with action ``fail`` must be judged before anything is committed: it
costs one counting pass over the rows read (all ``fail`` ones together, one job).

An expectation whose evaluation raises (an invalid regex, say) fails the first job that
evaluates it; the suspects are then evaluated one at a time to find it. It is recorded as
failed with the exception text and follows its action: warn records it, fail stops the
step, drop and quarantine apply to every evaluated row (nothing unchecked lands).

Table-level expectations are judged on the rows this step writes (for ``overwrite``, the
whole new table; for the incremental modes, this run's batch); uniqueness needs its own
grouping. Those with action ``fail`` are judged before the commit, on the rows about to
be written (a pass of their own); ``warn`` ones after it: their aggregates ride along with
the row-level counting, or else one ``agg`` over the version just written reads only the
columns they need.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeforge.config.models import Action
from lakeforge.quality.compile import (
    ROW_COUNT,
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
# True when the row has a reason: the cheap boolean that filters and partitions use, so the
# reasons arrays are only ever built for the rows that go to the quarantine.
BAD = "_lf_bad"
CLEAN = "_lf_clean"  # passed the cast and key checks: the rows expectations evaluate
SAMPLE_SIZE = 2  # the smallest and the largest failing value
QUARANTINE_PREFIX = "expectation:"
DROP_PREFIX = "drop:"
# Reasons the cast and key checks give (see steps.rows.flag_rows): such rows were never
# evaluated by an expectation.
CHECK_PREFIXES = ("cast_failed:", "null_not_allowed:", "missing_column:", "malformed_record")


def flag_name(i: int) -> str:
    return f"_lf_x{i}"


def reason_for(e: Expectation) -> str:
    return f"{DROP_PREFIX if e.action is Action.DROP else QUARANTINE_PREFIX}{e.name}"


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
        return not self.success and self.expectation.action is Action.FAIL


@dataclass
class RowOutcome:
    results: list[ExpectationResult] = field(default_factory=list)
    rows: int = 0  # rows evaluated
    quarantined: int = 0  # ... set aside by a quarantine expectation (or more reasons)
    dropped: int = 0  # ... set aside by drop expectations only
    raised: dict[str, str] = field(default_factory=dict)  # expectation name -> error


def _resolver(declared: list[str], cast_name: Any) -> Any:
    from pyspark.sql import functions as F

    def col(name: str) -> Column:
        return F.col(cast_name(name)) if name in declared else F.col(f"`{name}`")

    return col


def _with_flags(
    flagged: DataFrame,
    exps: list[Expectation],
    raised: dict[str, str],
    col: Any,
    clean: Column | None = None,
) -> DataFrame:
    """Add ``_lf_clean`` and a flag per expectation."""
    from pyspark.sql import functions as F

    if clean is None:  # cast and key checks passed
        clean = ~F.col(BAD) if BAD in flagged.columns else F.size(F.col(REASONS)) == 0
    flags = []
    for i, e in enumerate(exps):
        cond = F.lit(True) if e.name in raised else unexpected(e.type, e.kwargs, col)
        flags.append((clean & cond).alias(flag_name(i)))
    return flagged.select("*", clean.alias(CLEAN), *flags)


def with_checks(
    flagged: DataFrame,
    exps: list[Expectation],
    declared: list[str],
    cast_name: Any,
    raised: dict[str, str] | None = None,
) -> DataFrame:
    """Add the expectation columns and their reasons to ``flagged`` (lazily: no job).

    A row failing a ``quarantine`` or ``drop`` expectation gets its reason appended, which
    sends it to the quarantine instead of the table."""
    from pyspark.sql import functions as F

    raised = raised or {}
    col = _resolver(declared, cast_name)
    df = _with_flags(flagged, exps, raised, col)
    setting_aside = [(i, e) for i, e in enumerate(exps) if e.action.sets_aside]
    if setting_aside:
        reasons = [F.when(F.col(flag_name(i)), F.lit(reason_for(e))) for i, e in setting_aside]
        # Flags are false on rows that already have reasons, so appending cannot mix the
        # two kinds; one reference to the (costly) cast reasons keeps it computed once.
        df = df.withColumn(REASONS, F.concat(F.col(REASONS), F.array_compact(F.array(*reasons))))
        # The same verdict as a boolean, without the flags' clean factor: Spark inlines it
        # into the write's filter, where it must stay cheap.
        bad = F.col(BAD)
        for _, e in setting_aside:
            bad = bad | (F.lit(True) if e.name in raised else unexpected(e.type, e.kwargs, col))
        df = df.withColumn(BAD, bad)
    return df


@dataclass(frozen=True)
class Aggregates:
    """One ``agg``'s (or Observation's) columns, and how to read its row back."""

    columns: list[Column]
    n_of: dict[int, str]  # expectation index -> alias of its "considered" count
    # alias -> (packed sum's alias, shift, width): counts that share one sum (see _pack)
    packed: dict[str, tuple[str, int, int]] = field(default_factory=dict)

    def read(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with packed counts unpacked under their own aliases."""
        out = {k: v for k, v in row.items() if not k.startswith(PACKED)}
        for alias, (group, shift, width) in self.packed.items():
            out[alias] = (int(row[group] or 0) >> shift) & ((1 << width) - 1)
        return out


PACKED = "_lf_p"


def _pack(counts: list[tuple[str, Column]], bound: int) -> Aggregates:
    """Counts as few 64-bit sums: each row adds ``1 << shift`` per condition it meets.

    A Spark Observation updates every aggregate's buffer for every row, outside
    whole-stage codegen, so its cost grows with the number of aggregates, not with their
    simplicity. No count can exceed ``bound`` (the rows read), so ``width`` bits hold one
    exactly and ``63 // width`` of them share a sum without carrying into each other.
    """
    from pyspark.sql import functions as F

    width = max(1, int(bound).bit_length())
    per_sum = max(1, 63 // width)
    columns: list[Column] = []
    packed: dict[str, tuple[str, int, int]] = {}
    for g in range(0, len(counts), per_sum):
        group = f"{PACKED}{g // per_sum}"
        terms = []
        for j, (alias, cond) in enumerate(counts[g : g + per_sum]):
            terms.append(F.when(cond, F.lit(1 << (width * j))).otherwise(F.lit(0)))
            packed[alias] = (group, width * j, width)
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        columns.append(F.sum(total).alias(group))
    return Aggregates(columns, {}, packed)


def _aggregates(
    exps: list[Expectation],
    col: Any,
    only: int | None = None,
    flags: list[Column | None] | None = None,
    within: Column | None = None,
    bound: int | None = None,
) -> Aggregates:
    """The one ``agg``'s columns. Kept lean on purpose: every aggregate adds generated
    code, and past a few dozen of them a row costs far more than the sum of their parts
    (measured: 35 aggregates cost 4x what 16 do). Counts shared by several expectations
    (rows evaluated, a column's non-null rows) are computed once; the sample is the
    smallest and largest failing value.

    Args:
        flags: each expectation's failure as an expression, over rows that are all
            evaluated and have no reasons (a table's landed rows, observed as they are
            written); None for one known to hold on every such row (``quarantine`` and
            ``drop`` ones), which then only gets its count of rows considered. Those
            rows are counted as ``rows`` only (every one is evaluated). Default: the
            ``_lf_x<i>`` columns, ``_lf_clean`` and ``_lf_reasons``.
        within: with the default flags, count only these rows (the quarantine's rows that
            an expectation set aside, not those its cast and key checks did).
        bound: no count exceeds it: the counts are packed into few sums (see
            :func:`_pack`), for a Spark Observation.
    """
    from pyspark.sql import functions as F

    counts: list[tuple[str, Column]] = []  # alias -> the rows it counts
    if flags is None:
        has_reasons = F.size(F.col(REASONS)) > 0
        dropped = _dropped(exps)
        # Rows quarantined for their own casts or keys are not evaluated; the rest are.
        evaluated = F.col(CLEAN)
        scope = F.lit(True) if within is None else within
        counts += [
            ("rows", scope),
            ("quarantined", scope & has_reasons & ~dropped),
            ("dropped", scope & dropped),
            ("evaluated", evaluated),
        ]
    else:
        evaluated = F.lit(True)
        counts.append(("rows", F.lit(True)))
    samples: list[Column] = []
    shared: dict[str, str] = {}  # considered-expression -> alias
    n_of: dict[int, str] = {}
    for i, e in enumerate(exps):
        if only is not None and i != only:
            continue
        cond = evaluated & considered(e.type, e.kwargs, col)
        key = str(cond)
        if key not in shared:
            shared[key] = f"n{len(shared)}"
            counts.append((shared[key], cond))
        n_of[i] = shared[key]
        bad = F.col(flag_name(i)) if flags is None else flags[i]
        if bad is None:
            continue
        counts.append((f"x{i}_bad", bad))
        shown = F.when(bad, sample_value(e.type, e.kwargs, col))
        samples += [F.min(shown).alias(f"x{i}_s1"), F.max(shown).alias(f"x{i}_s2")]
    if bound is not None:
        packed = _pack(counts, bound)
        return Aggregates(packed.columns + samples, n_of, packed.packed)
    columns = [
        F.count(F.lit(1)).alias(a) if a == "rows" and within is None else F.count_if(c).alias(a)
        for a, c in counts
    ]
    return Aggregates(columns + samples, n_of)


def _dropped(exps: list[Expectation]) -> Column:
    """The outcome ``drop``, from the ``_lf_x<i>`` flags: a row a ``drop`` expectation
    sets aside and no ``quarantine`` one does (flags are false on rows the cast and key
    checks quarantined, so those are never dropped)."""
    from pyspark.sql import functions as F

    drops = [F.col(flag_name(i)) for i, e in enumerate(exps) if e.action is Action.DROP]
    keeps = [F.col(flag_name(i)) for i, e in enumerate(exps) if e.action is Action.QUARANTINE]
    if not drops:
        return F.lit(False)
    dropped = drops[0]
    for flag in drops[1:]:
        dropped = dropped | flag
    for flag in keeps:
        dropped = dropped & ~flag
    return dropped


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:500]


def find_raising(
    flagged: DataFrame, exps: list[Expectation], declared: list[str], cast_name: Any
) -> dict[str, str]:
    """After a job that evaluated ``exps`` failed: which of them raise, each with its
    error's first line (one job per expectation: only ever on this error path)."""
    return _probe(flagged, exps, _resolver(declared, cast_name))


def _probe(
    frame: DataFrame, exps: list[Expectation], col: Any, clean: Column | None = None
) -> dict[str, str]:
    raised: dict[str, str] = {}
    for i, e in enumerate(exps):
        others = {x.name: "" for x in exps if x.name != e.name}
        try:
            probe = _with_flags(frame, exps, others, col, clean)
            probe.agg(*_aggregates(exps, col, only=i).columns).first()
        except Exception as exc:
            raised[e.name] = _first_line(exc)
    return raised


def _outcome(
    row: Any, exps: list[Expectation], raised: dict[str, str], n_of: dict[int, str]
) -> RowOutcome:
    outcome = RowOutcome(
        rows=int(row["rows"] or 0),
        quarantined=int(row["quarantined"] or 0),
        dropped=int(row["dropped"] or 0),
        raised=dict(raised),
    )
    for i, e in enumerate(exps):
        bad = int(row[f"x{i}_bad"] or 0)
        n = int(row[n_of[i]] or 0)
        total = int(row["evaluated"] or 0)
        sample = tuple(
            sorted({str(row[f"x{i}_s{k}"]) for k in (1, 2) if row[f"x{i}_s{k}"] is not None})
        )[:SAMPLE_SIZE]
        if e.name in raised:
            outcome.results.append(ExpectationResult(e, False, total, exception=raised[e.name]))
            continue
        percent = 100.0 * bad / n if n else 0.0
        mostly = float(e.kwargs.get("mostly", 1.0))
        success = n == 0 or (n - bad) / n >= mostly
        outcome.results.append(ExpectationResult(e, success, total, bad, percent, None, sample))
    return outcome


def evaluate_rows(
    flagged: DataFrame,
    exps: list[Expectation],
    declared: list[str],
    cast_name: Any,
) -> RowOutcome:
    """Count ``exps`` on the rows read, in one job (the check before a commit, for
    expectations with action ``fail``)."""
    col = _resolver(declared, cast_name)
    aggs = _aggregates(exps, col)
    try:
        row = _with_flags(flagged, exps, {}, col).agg(*aggs.columns).first()
        raised: dict[str, str] = {}
    except Exception as first_error:
        raised = find_raising(flagged, exps, declared, cast_name)
        if not raised:
            raise first_error from None
        row = _with_flags(flagged, exps, raised, col).agg(*aggs.columns).first()
    assert row is not None
    return _outcome(row.asDict(), exps, raised, aggs.n_of)


def landed_observation(
    exps: list[Expectation],
    raised: dict[str, str],
    table_exps: list[Expectation],
    bound: int,
) -> Aggregates:
    """Aggregates for a Spark ``Observation`` on the table's own write. Every row there
    landed, so it holds the ``quarantine`` and ``drop`` expectations by construction: for
    those only the rows considered are counted, and only the others are evaluated.
    Table-level aggregates ride along (a row count is the observation's ``rows``).

    Args:
        bound: the rows read: no count exceeds it (the counts are packed, see _pack)."""
    from pyspark.sql import functions as F

    def col(name: str) -> Column:
        return F.col(f"`{name}`")

    flags: list[Column | None] = [
        None
        if e.action.sets_aside
        else F.lit(True)
        if e.name in raised
        else unexpected(e.type, e.kwargs, col)
        for e in exps
    ]
    aggs = _aggregates(exps, col, flags=flags, bound=bound)
    for i, e in enumerate(table_exps):
        if e.type not in ROW_COUNT:
            aggs.columns.extend(table_aggregates(i, e.type, e.kwargs, col))
    return aggs


def aside_observation(
    exps: list[Expectation], declared: list[str], cast_name: Any, bound: int
) -> Aggregates:
    """Aggregates for a Spark ``Observation`` on the quarantine's write, over the checked
    rows (:func:`with_checks`) it sets aside: those an expectation set aside count; those
    the cast and key checks quarantined are not evaluated."""
    from pyspark.sql import functions as F

    return _aggregates(exps, _resolver(declared, cast_name), within=F.col(CLEAN), bound=bound)


def measure_observed(
    landed: dict[str, Any],
    set_aside: DataFrame | dict[str, Any] | None,
    exps: list[Expectation],
    declared: list[str],
    raised: dict[str, str],
    n_of: dict[int, str],
    table_exps: list[Expectation],
) -> tuple[RowOutcome, dict[str, Any] | None]:
    """Count ``exps`` on what the step wrote, from the table write's observed metrics
    (see :func:`landed_observation`) plus those of the rows set aside: observed by the
    quarantine's write too (a dict, see :func:`aside_observation`), or counted by one
    small job over them (cached as the quarantine write computed them).

    Args:
        set_aside: this run's rows that expectations sent to the quarantine, typed again
            from their records (declared columns), with their reasons in ``_lf_reasons``.
        table_exps: table-level expectations whose aggregates (over the landed rows)
            the observation computed, for :func:`evaluate_table`'s ``aggregated``.

    Returns:
        The row-level outcome, and the table-level aggregates (None when there are none).
    """
    from pyspark.sql import functions as F

    def col(name: str) -> Column:
        return F.col(f"`{name}`")

    # Every landed row was evaluated and holds the quarantine and drop expectations.
    merged = {"quarantined": 0, "dropped": 0, **landed, "evaluated": landed["rows"]}
    for i in range(len(exps)):
        merged.setdefault(f"x{i}_bad", 0)
        merged.setdefault(f"x{i}_s1", None)
        merged.setdefault(f"x{i}_s2", None)
    aside: dict[str, Any] | None = None
    if isinstance(set_aside, dict):
        aside = set_aside
    elif set_aside is not None:
        frame = set_aside.select(*[col(c) for c in declared], F.col(REASONS))
        checked = _with_flags(frame, exps, raised, col, F.lit(True))
        first = checked.agg(*_aggregates(exps, col).columns).first()
        assert first is not None
        aside = first.asDict()
    for key, value in (aside or {}).items():
        mine = merged.get(key)
        if value is None:
            continue
        if mine is None:
            merged[key] = value
        elif key.endswith("_s1"):
            merged[key] = min(mine, value)
        elif key.endswith("_s2"):
            merged[key] = max(mine, value)
        else:
            merged[key] = mine + value
    tables = None
    if table_exps:
        tables = {k: v for k, v in landed.items() if k[:1] == "t"}
        for i, e in enumerate(table_exps):
            if e.type in ROW_COUNT:
                tables[f"t{i}_v"] = landed["rows"]
    return _outcome(merged, exps, raised, n_of), tables


def measure_landed(
    landed: DataFrame,
    set_aside: DataFrame | dict[str, Any] | None,
    exps: list[Expectation],
    declared: list[str],
    raised: dict[str, str],
    table_exps: list[Expectation],
    bound: int,
) -> tuple[RowOutcome, dict[str, Any] | None]:
    """:func:`measure_observed` when no write observed them: the same lean aggregates a
    write's observation computes (:func:`landed_observation`), in one job over the landed
    rows read back, plus the rows set aside. Evaluating those apart keeps the
    ``quarantine`` and ``drop`` expectations, and the reasons, off the (many) landed rows.

    A ``warn`` expectation is first evaluated here (the writes do not need it), and a
    table-level aggregate may raise too. If the job fails, the expectations are probed one
    at a time on what was written to find the ones that raise; they are recorded as
    failed, and the job runs again without the table-level aggregates (then None:
    :func:`evaluate_table` computes them itself, and records their error).

    Args:
        landed: this run's rows in the committed version (declared, typed columns).
        set_aside: as for :func:`measure_observed`.
        bound: no count over ``landed`` exceeds it (see :func:`_pack`).
    """
    from pyspark.sql import functions as F

    def count(known: dict[str, str], tables: list[Expectation]) -> Any:
        aggs = landed_observation(exps, known, tables, bound)
        first = landed.agg(*aggs.columns).first()
        assert first is not None
        counts = aggs.read(first.asDict())
        return measure_observed(counts, set_aside, exps, declared, known, aggs.n_of, tables)

    try:
        return count(raised, table_exps)
    except Exception as first_error:

        def col(name: str) -> Column:
            return F.col(f"`{name}`")

        written = landed.select(
            *[col(c) for c in declared], F.array().cast("array<string>").alias(REASONS)
        )
        if set_aside is not None and not isinstance(set_aside, dict):
            written = written.unionByName(set_aside.select(*[col(c) for c in declared], REASONS))
        pending = [e for e in exps if e.name not in raised]
        found = _probe(written, pending, col, F.lit(True))
        if not found and not table_exps:
            raise first_error from None
        return count({**raised, **found}, [])


def evaluate_table(
    landed: DataFrame,
    exps: list[Expectation],
    declared: list[str],
    aggregated: dict[str, Any] | None = None,
) -> list[ExpectationResult]:
    """Judge table-level expectations on the rows about to be written (declared names).

    Args:
        aggregated: their aggregates, when another job computed them already."""
    from pyspark.sql import functions as F

    def col(name: str) -> Column:
        return F.col(f"`{name}`")

    schema = {f.name: f.dataType.simpleString() for f in landed.schema.fields if f.name in declared}
    aggs: list[Column] = []
    for i, e in enumerate(exps):
        aggs += table_aggregates(i, e.type, e.kwargs, col)
    row: dict[str, Any] = {}
    error: str | None = None
    if aggregated is not None:
        row = aggregated
    elif aggs:
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
