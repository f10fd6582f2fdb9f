"""The accepted text forms of strict casts (steps/casting.py), checked without a JVM.

The same patterns run in Spark (``rlike``); tests/integration/test_casting_spark.py checks
that Spark agrees on the values below."""

from __future__ import annotations

import re

import pytest

from lakeforge.steps.casting import accepted_pattern, spark_regex

ACCEPTED = {
    "bigint": ["12", "+12", "-12", " 12 ", "\t12", "007"],
    "int": ["0", "2147483647"],
    "decimal(10,2)": ["10.50", "10.5", "10.", "10", ".5", "-0.25", "10.500", " 3.00 "],
    "decimal(10,0)": ["10", "10.", "10.000"],
    "double": ["1e3", "-2.5E-4", "12.", ".5", "NaN", "-Infinity", "inf", "+INF"],
    "boolean": ["true", "FALSE", "t", "f", "yes", "No", "y", "N", "1", "0"],
    "date": ["2026-01-05", " 2026-01-05 ", "0001-01-01", "9999-12-31"],
    "timestamp": [
        "2026-01-05",
        "2026-01-05 10:00",
        "2026-01-05T10:00:00",
        "2026-01-05 10:00:00.123456",
        "2026-01-05T10:00:00Z",
        "2026-01-05T10:00:00.5+01:00",
        "2026-01-05T10:00:00-05:30",
        "2026-01-05 10:00:00Z",
    ],
    "timestamp_ntz": ["2026-01-05", "2026-01-05 10:00:00.1"],
}

REJECTED = {
    "bigint": ["12abc", "12.0", "1e3", "0x1F", "12L", "1_000", "1,000", "\u0661\u0662", "", " "],
    "decimal(10,2)": ["10.555", "1e3", "12D", "abc", "1.2.3", "\u0661\u0662", "."],
    "decimal(10,0)": ["10.5"],
    "double": ["12D", "12f", "1e", "e3", "infinit", "0x1p3"],
    "boolean": ["truee", "on", "2", "yess"],
    "date": [
        "2026-01-05 not-a-date",
        "2026-01-05T99",
        "2026-01-05 10:00",
        "99999-01-01",
        "+2026-01-05",
        "-0001-01-01",
        "2026-1-5",
        "2026-01",
        "2026",
        "20260105",
    ],
    "timestamp": [
        "2026-01-05T99",
        "2026-01-05T10",
        "2026-01-05T1",
        "2026-01-05 not-a-date",
        "2026-01-05T10:00:00.",
        "2026-01-05T10:00:00.1234567",  # beyond microseconds: Spark would truncate
        "2026-01-05 10:00:00 UTC",
        "2026-01-05T10:00:00Europe/Paris",
        "2026-01-05T10:00:00-0100",
        "2026-01-05T10:00-05:30",  # a zone needs the seconds
        "2026-01-05T10:00Z",
        "T10:00",
        "10:00:00",
        "99999-01-01",
    ],
    "timestamp_ntz": ["2026-01-05T10:00:00Z", "2026-01-05T10:00:00+01:00"],
}


@pytest.mark.parametrize("type_name,value", [(t, v) for t, vs in ACCEPTED.items() for v in vs])
def test_accepted_forms(type_name: str, value: str) -> None:
    pattern = accepted_pattern(type_name)
    assert pattern is not None
    assert re.fullmatch(pattern, value), (type_name, value)


@pytest.mark.parametrize("type_name,value", [(t, v) for t, vs in REJECTED.items() for v in vs])
def test_rejected_forms(type_name: str, value: str) -> None:
    pattern = accepted_pattern(type_name)
    assert pattern is not None
    assert not re.fullmatch(pattern, value), (type_name, value)


@pytest.mark.parametrize("type_name", ["string", "binary"])
def test_text_types_accept_anything(type_name: str) -> None:
    assert accepted_pattern(type_name) is None


def test_spark_regex_is_anchored_at_the_very_end() -> None:
    # Java's `$` would also match before a final newline; `\z` does not.
    regex = spark_regex("[0-9]+")
    assert regex.startswith("^") and regex.endswith("\\z") and "$" not in regex


def test_every_declarable_numeric_and_time_type_has_a_form() -> None:
    from lakeforge.config.models import _SIMPLE_TYPES

    untyped = {t for t in _SIMPLE_TYPES if accepted_pattern(t) is None}
    assert untyped == {"string", "binary"}
