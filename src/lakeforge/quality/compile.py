"""Expectations -> Spark column expressions.

Row-level: :func:`unexpected` gives a boolean Column that is true exactly for the rows
Great Expectations would list as unexpected (nulls are ignored, as Great Expectations does,
except by the null expectations themselves), and :func:`considered` the rows that count
towards the percentage. Table-level: :func:`table_aggregates` gives the aggregate
Columns one ``agg`` needs, and :func:`judge_table` turns their values into a result.
Uniqueness needs a grouping of its own (:func:`duplicate_rows`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


Resolver = Callable[[str], "Column"]  # declared column name -> its (typed) Column
# Table-level expectations whose one aggregate is the row count: a job (or a write's
# observation) that counts its rows anyway gives it for free.
ROW_COUNT = ("expect_table_row_count_to_be_between", "expect_table_row_count_to_equal")


def _lit_cmp(c: Column, op: str, value: Any) -> Column:
    from pyspark.sql import functions as F

    v = F.lit(value)
    return {"<": c < v, "<=": c <= v, ">": c > v, ">=": c >= v}[op]


def _outside(c: Column, kw: Mapping[str, Any]) -> Column | None:
    """True when ``c`` is outside [min_value, max_value] (strict bounds honoured)."""
    parts = []
    if kw.get("min_value") is not None:
        parts.append(_lit_cmp(c, "<=" if kw.get("strict_min") else "<", kw["min_value"]))
    if kw.get("max_value") is not None:
        parts.append(_lit_cmp(c, ">=" if kw.get("strict_max") else ">", kw["max_value"]))
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out | p
    return out


def unexpected(type_: str, kw: Mapping[str, Any], col: Resolver) -> Column:
    """True for the rows that fail a row-level expectation (never null)."""
    from pyspark.sql import functions as F

    if type_.startswith("expect_column_pair_"):
        a, b = col(kw["column_A"]), col(kw["column_B"])
        holds = a >= b if kw.get("or_equal") else a > b
        return F.coalesce(
            considered(type_, kw, col) & ~F.coalesce(holds, F.lit(False)), F.lit(False)
        )
    c = col(kw["column"])
    cond: Column
    if type_ == "expect_column_values_to_not_be_null":
        return c.isNull()
    if type_ == "expect_column_values_to_be_null":
        return c.isNotNull()
    if type_ == "expect_column_values_to_be_between":
        outside = _outside(c, kw)
        cond = outside if outside is not None else F.lit(False)
    elif type_ == "expect_column_values_to_be_in_set":
        cond = ~c.isin(list(kw["value_set"]))
    elif type_ == "expect_column_values_to_not_be_in_set":
        cond = c.isin(list(kw["value_set"]))
    elif type_ == "expect_column_values_to_match_regex":
        cond = ~c.cast("string").rlike(kw["regex"])
    elif type_ == "expect_column_values_to_not_match_regex":
        cond = c.cast("string").rlike(kw["regex"])
    elif type_ == "expect_column_value_lengths_to_be_between":
        outside = _outside(F.length(c.cast("string")), kw)
        cond = outside if outside is not None else F.lit(False)
    elif type_ == "expect_column_value_lengths_to_equal":
        cond = F.length(c.cast("string")) != F.lit(int(kw["value"]))
    else:
        raise ValueError(f"{type_} is not a row-level expectation")
    # Each condition is null on a null value (which no expectation here counts): coalesce
    # makes that false without a second reference to the column. That matters: a filter
    # Spark pushes down repeats the column's expression (say, a string-to-decimal cast)
    # once per reference, with no common subexpressions shared.
    return F.coalesce(cond, F.lit(False))


def considered(type_: str, kw: Mapping[str, Any], col: Resolver) -> Column:
    """The rows that count towards an expectation's percentage (Great Expectations'
    "nonmissing" rows; every row for the null expectations)."""
    from pyspark.sql import functions as F

    if type_ in ("expect_column_values_to_not_be_null", "expect_column_values_to_be_null"):
        return F.lit(True)
    if type_.startswith("expect_column_pair_"):
        a, b = col(kw["column_A"]).isNull(), col(kw["column_B"]).isNull()
        ignore = kw.get("ignore_row_if", "both_values_are_missing")
        if ignore == "either_value_is_missing":
            return ~(a | b)
        if ignore == "both_values_are_missing":
            return ~(a & b)
        return F.lit(True)
    return col(kw["column"]).isNotNull()


def sample_value(type_: str, kw: Mapping[str, Any], col: Resolver) -> Column:
    """What a failing row shows in the results' sample."""
    from pyspark.sql import functions as F

    if type_.startswith("expect_column_pair_"):
        return F.concat_ws(
            " vs ",
            F.coalesce(col(kw["column_A"]).cast("string"), F.lit("null")),
            F.coalesce(col(kw["column_B"]).cast("string"), F.lit("null")),
        )
    return F.coalesce(col(kw["column"]).cast("string"), F.lit("null"))


@dataclass(frozen=True)
class TableJudgement:
    success: bool
    observed: Any
    unexpected_count: int | None = None
    element_count: int | None = None
    sample: tuple[str, ...] = ()
    details: str = ""


def table_aggregates(i: int, type_: str, kw: Mapping[str, Any], col: Resolver) -> list[Column]:
    """The aggregates one ``agg`` over the written rows computes for expectation ``i``
    (aliased ``t{i}_...``); schema-only and uniqueness expectations need none."""
    from pyspark.sql import functions as F

    def a(expr: Column, what: str) -> Column:
        return expr.alias(f"t{i}_{what}")

    if type_ in ROW_COUNT:
        return [a(F.count(F.lit(1)), "v")]
    if type_ in (
        "expect_column_to_exist",
        "expect_table_columns_to_match_set",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_be_unique",
        "expect_compound_columns_to_be_unique",
    ):
        return []
    c = col(kw["column"])
    simple: dict[str, Callable[[Column], Column]] = {
        # In double, as Great Expectations' Spark engine reports a mean: over a decimal
        # column Spark's own avg keeps a wider decimal sum, BigDecimal arithmetic on every
        # row (profiled: the costliest single aggregate a write observes).
        "expect_column_mean_to_be_between": lambda x: F.avg(x.cast("double")),
        "expect_column_min_to_be_between": F.min,
        "expect_column_max_to_be_between": F.max,
        "expect_column_sum_to_be_between": F.sum,
        "expect_column_stdev_to_be_between": F.stddev_samp,
        "expect_column_median_to_be_between": F.median,
    }
    if type_ in simple:
        return [a(simple[type_](c), "v")]
    if type_ == "expect_column_quantile_values_to_be_between":
        qs = [float(q) for q in kw["quantile_ranges"]["quantiles"]]
        return [a(F.percentile_approx(c, qs, 10000), "v")]
    if type_ == "expect_column_unique_value_count_to_be_between":
        return [a(F.count_distinct(c), "v")]
    if type_ == "expect_column_proportion_of_unique_values_to_be_between":
        return [a(F.count_distinct(c), "d"), a(F.count(c), "n")]
    values = list(kw.get("value_set") or [])
    outside = c.isNotNull() & ~c.isin(values)
    if type_ in (
        "expect_column_distinct_values_to_be_in_set",
        "expect_column_distinct_values_to_equal_set",
    ):
        aggs = [
            a(F.sum(F.when(outside, 1).otherwise(0)), "out"),
            a(F.first(F.when(outside, c.cast("string")), ignorenulls=True), "s1"),
            a(F.min(F.when(outside, c.cast("string"))), "s2"),
            a(F.max(F.when(outside, c.cast("string"))), "s3"),
        ]
    else:
        aggs = []
    if type_ in (
        "expect_column_distinct_values_to_contain_set",
        "expect_column_distinct_values_to_equal_set",
    ):
        aggs += [
            a(F.max(F.when(c == F.lit(v), 1).otherwise(0)), f"has{j}") for j, v in enumerate(values)
        ]
    return aggs


def _in_range(value: Any, kw: Mapping[str, Any]) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    lo, hi = kw.get("min_value"), kw.get("max_value")
    try:
        if lo is not None and (value <= lo if kw.get("strict_min") else value < lo):
            return False
        if hi is not None and (value >= hi if kw.get("strict_max") else value > hi):
            return False
    except TypeError:  # e.g. a date against a string bound: compare as text
        return _in_range(str(value), {**kw, "min_value": _s(lo), "max_value": _s(hi)})
    return True


def _s(v: Any) -> Any:
    return None if v is None else str(v)


def _plain(value: Any) -> Any:
    """Spark values (Decimal, date) -> JSON-friendly observed values."""
    from datetime import date, datetime
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def judge_table(
    i: int,
    type_: str,
    kw: Mapping[str, Any],
    row: Mapping[str, Any],
    schema: Mapping[str, str],
    duplicates: tuple[int, int, tuple[str, ...]] | None,
) -> TableJudgement:
    """Success and observed value of table-level expectation ``i``.

    Args:
        row: the aggregate row (``t{i}_...`` columns).
        schema: column -> Spark simple type name of the written rows.
        duplicates: for uniqueness: (rows in duplicated groups, rows, sample values).
    """

    def v(what: str) -> Any:
        return _plain(row.get(f"t{i}_{what}"))

    if type_ == "expect_table_row_count_to_be_between":
        return TableJudgement(_in_range(v("v"), kw), v("v"))
    if type_ == "expect_table_row_count_to_equal":
        return TableJudgement(v("v") == kw["value"], v("v"))
    if type_ == "expect_column_to_exist":
        return TableJudgement(kw["column"] in schema, sorted(schema))
    if type_ == "expect_table_columns_to_match_set":
        have, want = set(schema), set(kw["column_set"])
        ok = have == want if kw.get("exact_match", True) else want <= have
        return TableJudgement(ok, sorted(have), details=f"missing {sorted(want - have)}")
    if type_ == "expect_column_values_to_be_of_type":
        actual = schema.get(kw["column"], "")
        return TableJudgement(_same_type(actual, kw["type_"]), actual)
    if type_ in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
        assert duplicates is not None
        dup_rows, total, sample = duplicates
        mostly = float(kw.get("mostly", 1.0))
        ok = total == 0 or (total - dup_rows) / total >= mostly
        return TableJudgement(ok, dup_rows, dup_rows, total, sample)
    if type_ == "expect_column_quantile_values_to_be_between":
        got = v("v") or []
        ranges = kw["quantile_ranges"]["value_ranges"]
        ok = len(got) == len(ranges) and all(
            _in_range(g, {"min_value": r[0], "max_value": r[1]})
            for g, r in zip(got, ranges, strict=False)
        )
        return TableJudgement(ok, {"quantiles": kw["quantile_ranges"]["quantiles"], "values": got})
    if type_ == "expect_column_proportion_of_unique_values_to_be_between":
        n = v("n") or 0
        ratio = (v("d") or 0) / n if n else None
        return TableJudgement(_in_range(ratio, kw), ratio)
    if type_ in (
        "expect_column_distinct_values_to_be_in_set",
        "expect_column_distinct_values_to_contain_set",
        "expect_column_distinct_values_to_equal_set",
    ):
        values = list(kw.get("value_set") or [])
        outside = int(v("out") or 0)
        sample = tuple(sorted({str(s) for s in (v("s1"), v("s2"), v("s3")) if s is not None}))
        missing = [x for j, x in enumerate(values) if not v(f"has{j}")]
        ok = True
        if type_ != "expect_column_distinct_values_to_contain_set":
            ok = outside == 0
        if type_ != "expect_column_distinct_values_to_be_in_set":
            ok = ok and not missing
        return TableJudgement(
            ok,
            {"values_outside_set": list(sample), "missing_from_data": missing},
            unexpected_count=outside
            if type_ != "expect_column_distinct_values_to_contain_set"
            else None,
            sample=sample,
        )
    # mean / median / min / max / sum / stdev / unique value count
    return TableJudgement(_in_range(v("v"), kw), v("v"))


def _same_type(actual: str, wanted: str) -> bool:
    """Spark type names either way: ``int`` / ``IntegerType``, ``decimal(12,2)`` / ``DecimalType``."""
    norm = {
        "integertype": "int",
        "longtype": "bigint",
        "shorttype": "smallint",
        "bytetype": "tinyint",
        "stringtype": "string",
        "doubletype": "double",
        "floattype": "float",
        "booleantype": "boolean",
        "datetype": "date",
        "timestamptype": "timestamp",
        "timestampntztype": "timestamp_ntz",
        "binarytype": "binary",
        "decimaltype": "decimal",
        "integer": "int",
        "long": "bigint",
    }
    a = actual.lower()
    w = norm.get(wanted.lower(), wanted.lower())
    if w == "decimal":
        return a.startswith("decimal")
    return a == w or a.split("(")[0] == w


def duplicate_rows(
    df: DataFrame, columns: list[str], col: Resolver
) -> tuple[int, int, tuple[str, ...]]:
    """Rows whose value (or value combination) occurs more than once, as Great
    Expectations counts them (every occurrence), with up to three sample values."""
    from pyspark.sql import functions as F

    keys = [col(c).alias(f"k{j}") for j, c in enumerate(columns)]
    grouped = df.select(*keys)
    if len(columns) == 1:
        grouped = grouped.where(F.col("k0").isNotNull())
    counts = grouped.groupBy(*[f"k{j}" for j in range(len(columns))]).count()
    shown = F.concat_ws(
        "|",
        *[F.coalesce(F.col(f"k{j}").cast("string"), F.lit("null")) for j in range(len(columns))],
    )
    row = counts.agg(
        F.sum(F.when(F.col("count") > 1, F.col("count")).otherwise(0)).alias("dup"),
        F.sum("count").alias("n"),
        F.min(F.when(F.col("count") > 1, shown)).alias("s1"),
        F.max(F.when(F.col("count") > 1, shown)).alias("s2"),
    ).first()
    assert row is not None
    sample = tuple(sorted({s for s in (row["s1"], row["s2"]) if s is not None}))
    return int(row["dup"] or 0), int(row["n"] or 0), sample
