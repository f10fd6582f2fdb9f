"""The Great Expectations expectation types lakeforge evaluates, and their kwargs.

Pure Python, no Great Expectations import: ``lakeforge validate`` checks suites with this
table in well under a second and without a JVM. A unit test checks every entry against
Great Expectations' own expectation classes (same type names, kwargs among theirs,
required kwargs required), so this table cannot drift from the library silently.

Two levels, because they cost differently and allow different actions:

* ``row``: a condition per row (values not null, between, in a set, matching a regex,
  lengths, column pairs). Compiled to Spark column conditions that the step's writes
  carry, then counted together in one aggregation; actions ``warn``, ``drop``,
  ``quarantine``, ``fail``.
* ``table``: a property of the rows being written (row count, uniqueness, mean / median /
  quantile / min / max / sum / stdev ranges, distinct value sets, schema). Actions
  ``warn`` and ``fail`` only: there is no single row to drop or quarantine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lakeforge.config.models import Action

Level = Literal["row", "table"]
ROW_ACTIONS = tuple(Action)
TABLE_ACTIONS = (Action.WARN, Action.FAIL)

# Kwarg value kinds, checked at validate time.
COLUMN = "column"  # a declared column name
COLUMNS = "columns"  # a list of declared column names
NUMBER = "number"  # int / float / null (also a date or timestamp string: compared by Spark)
BOOL = "bool"
SET = "set"  # a list of scalars
TEXT = "text"
INT = "int"
FRACTION = "fraction"  # 0..1 (mostly)
QUANTILES = "quantiles"  # {quantiles: [..], value_ranges: [[lo, hi], ..]}
CHOICE_IGNORE = "ignore_row_if"
ANY = "any"


@dataclass(frozen=True)
class Kind:
    """One supported expectation type."""

    type: str
    level: Level
    required: Mapping[str, str]
    optional: Mapping[str, str]

    @property
    def kwargs(self) -> dict[str, str]:
        return {**self.required, **self.optional}

    @property
    def actions(self) -> tuple[Action, ...]:
        return ROW_ACTIONS if self.level == "row" else TABLE_ACTIONS


RANGE = {"min_value": NUMBER, "max_value": NUMBER, "strict_min": BOOL, "strict_max": BOOL}
MOSTLY = {"mostly": FRACTION}


def _kinds() -> dict[str, Kind]:
    col = {"column": COLUMN}
    row: dict[str, tuple[dict[str, str], dict[str, str]]] = {
        "expect_column_values_to_not_be_null": (col, MOSTLY),
        "expect_column_values_to_be_null": (col, MOSTLY),
        "expect_column_values_to_be_between": (col, {**RANGE, **MOSTLY}),
        "expect_column_values_to_be_in_set": ({**col, "value_set": SET}, MOSTLY),
        "expect_column_values_to_not_be_in_set": ({**col, "value_set": SET}, MOSTLY),
        "expect_column_values_to_match_regex": ({**col, "regex": TEXT}, MOSTLY),
        "expect_column_values_to_not_match_regex": ({**col, "regex": TEXT}, MOSTLY),
        "expect_column_value_lengths_to_be_between": (col, {**RANGE, **MOSTLY}),
        "expect_column_value_lengths_to_equal": ({**col, "value": INT}, MOSTLY),
        "expect_column_pair_values_a_to_be_greater_than_b": (
            {"column_A": COLUMN, "column_B": COLUMN},
            {"or_equal": BOOL, "ignore_row_if": CHOICE_IGNORE, **MOSTLY},
        ),
    }
    table: dict[str, tuple[dict[str, str], dict[str, str]]] = {
        "expect_table_row_count_to_be_between": ({}, RANGE),
        "expect_table_row_count_to_equal": ({"value": INT}, {}),
        "expect_column_values_to_be_unique": (col, MOSTLY),
        "expect_compound_columns_to_be_unique": ({"column_list": COLUMNS}, MOSTLY),
        "expect_column_mean_to_be_between": (col, RANGE),
        "expect_column_median_to_be_between": (col, RANGE),
        "expect_column_min_to_be_between": (col, RANGE),
        "expect_column_max_to_be_between": (col, RANGE),
        "expect_column_sum_to_be_between": (col, RANGE),
        "expect_column_stdev_to_be_between": (col, RANGE),
        "expect_column_quantile_values_to_be_between": (
            {**col, "quantile_ranges": QUANTILES},
            {"allow_relative_error": ANY},
        ),
        "expect_column_distinct_values_to_be_in_set": ({**col, "value_set": SET}, {}),
        "expect_column_distinct_values_to_contain_set": ({**col, "value_set": SET}, {}),
        "expect_column_distinct_values_to_equal_set": ({**col, "value_set": SET}, {}),
        "expect_column_unique_value_count_to_be_between": (col, RANGE),
        "expect_column_proportion_of_unique_values_to_be_between": (col, RANGE),
        "expect_column_to_exist": (col, {}),
        "expect_table_columns_to_match_set": ({"column_set": COLUMNS}, {"exact_match": BOOL}),
        "expect_column_values_to_be_of_type": ({**col, "type_": TEXT}, {}),
    }
    out = {t: Kind(t, "row", req, opt) for t, (req, opt) in row.items()}
    out.update({t: Kind(t, "table", req, opt) for t, (req, opt) in table.items()})
    return out


KINDS: dict[str, Kind] = _kinds()

# Great Expectations kwargs that change what is evaluated, which lakeforge does not do.
UNSUPPORTED = {
    "row_condition": "filter rows in the step instead (row_condition is not supported)",
    "condition_parser": "row_condition is not supported",
}
# Accepted and ignored: they shape Great Expectations' own output, not the check.
IGNORED = ("result_format", "catch_exceptions")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_value(kind: str, value: Any) -> str | None:
    """None if ``value`` fits ``kind``, else what is wrong."""
    if kind == COLUMN:
        return None if isinstance(value, str) and value else "expected a column name"
    if kind == COLUMNS:
        ok = isinstance(value, list) and value and all(isinstance(v, str) for v in value)
        return None if ok else "expected a list of column names"
    if kind == NUMBER:
        ok = value is None or _is_number(value) or isinstance(value, str)
        return None if ok else "expected a number (or a date / timestamp string)"
    if kind == BOOL:
        return None if isinstance(value, bool) else "expected true or false"
    if kind == SET:
        ok = isinstance(value, list) and all(
            v is None or isinstance(v, (str, int, float, bool)) for v in value
        )
        return None if ok else "expected a list of values"
    if kind == TEXT:
        return None if isinstance(value, str) else "expected a string"
    if kind == INT:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return None if ok else "expected a non-negative integer"
    if kind == FRACTION:
        ok = _is_number(value) and 0 <= value <= 1
        return None if ok else "expected a fraction between 0 and 1"
    if kind == QUANTILES:
        return _check_quantiles(value)
    if kind == CHOICE_IGNORE:
        choices = ("both_values_are_missing", "either_value_is_missing", "neither")
        return None if value in choices else f"expected one of {', '.join(choices)}"
    return None


def _check_quantiles(value: Any) -> str | None:
    if not isinstance(value, dict) or set(value) != {"quantiles", "value_ranges"}:
        return "expected {quantiles: [...], value_ranges: [[min, max], ...]}"
    qs, ranges = value["quantiles"], value["value_ranges"]
    if not isinstance(qs, list) or not all(_is_number(q) and 0 <= q <= 1 for q in qs):
        return "quantiles must be numbers between 0 and 1"
    if not isinstance(ranges, list) or len(ranges) != len(qs):
        return "value_ranges needs one [min, max] per quantile"
    for r in ranges:
        if not isinstance(r, list) or len(r) != 2 or not all(v is None or _is_number(v) for v in r):
            return "each value range is [min, max] (numbers or null)"
    return None


@dataclass(frozen=True)
class KwargProblem:
    key: str | None  # the kwarg at fault (None: the expectation as a whole)
    message: str


def check_kwargs(type_: str, kwargs: Mapping[str, Any]) -> list[KwargProblem]:
    """Problems with ``kwargs`` for ``type_`` (the type must be in :data:`KINDS`)."""
    kind = KINDS[type_]
    allowed = kind.kwargs
    problems = []
    for key, value in kwargs.items():
        if key in UNSUPPORTED:
            problems.append(KwargProblem(key, UNSUPPORTED[key]))
        elif key in IGNORED:
            continue
        elif key not in allowed:
            problems.append(
                KwargProblem(
                    key,
                    f"unknown kwarg '{key}' for {type_} (allowed: {', '.join(sorted(allowed))})",
                )
            )
        else:
            wrong = check_value(allowed[key], value)
            if wrong:
                problems.append(KwargProblem(key, f"{key}: {wrong} (got {value!r})"))
    for key in kind.required:
        if key not in kwargs:
            problems.append(KwargProblem(None, f"{type_} needs kwarg '{key}'"))
    no_bounds = kwargs.get("min_value") is None and kwargs.get("max_value") is None
    if set(RANGE) <= set(allowed) and no_bounds:
        problems.append(KwargProblem(None, f"{type_} needs min_value or max_value"))
    return problems


def columns_of(type_: str, kwargs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kwarg, column) pairs naming the columns an expectation reads."""
    kind = KINDS[type_]
    out: list[tuple[str, str]] = []
    for key, vkind in kind.kwargs.items():
        value = kwargs.get(key)
        if vkind == COLUMN and isinstance(value, str):
            out.append((key, value))
        elif vkind == COLUMNS and isinstance(value, list) and key != "column_set":
            out.extend((key, v) for v in value if isinstance(v, str))
    return out
