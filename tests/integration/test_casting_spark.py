"""Strict casts in Spark agree with their patterns, and keep years inside 1..9999."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakeforge.steps.casting import strict_cast
from tests.unit.test_casting import ACCEPTED, REJECTED

pytestmark = pytest.mark.spark


def test_spark_accepts_and_rejects_what_the_patterns_say(spark: SparkSession) -> None:
    values = sorted({v for vs in (*ACCEPTED.values(), *REJECTED.values()) for v in vs})
    df = spark.createDataFrame([(v,) for v in values], "v string")
    types = sorted(set(ACCEPTED) | set(REJECTED))
    cols = []
    for i, t in enumerate(types):
        cast = strict_cast(F.col("v"), "string", t)
        cols += [cast.typed.isNotNull().alias(f"ok{i}"), cast.failed.alias(f"bad{i}")]
    rows = {r["v"]: r for r in df.select("v", *cols).collect()}
    for i, t in enumerate(types):
        for v in ACCEPTED.get(t, []):
            assert (rows[v][f"ok{i}"], rows[v][f"bad{i}"]) == (True, False), (t, v)
        for v in REJECTED.get(t, []):
            assert rows[v][f"ok{i}"] is False, (t, v)
            # A blank string is no value at all in CSV terms, but it is not null here.
            assert rows[v][f"bad{i}"] is True, (t, v)


def test_typed_values_and_year_range(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [
            ("2026-01-05", " 10.50 ", "0000-01-01"),
            ("9999-12-31", "-.5", "0001-01-01"),
            (None, None, None),
        ],
        "d string, m string, y string",
    )
    d = strict_cast(F.col("d"), "string", "date")
    m = strict_cast(F.col("m"), "string", "decimal(10,2)")
    y = strict_cast(F.col("y"), "string", "timestamp")
    rows = df.select(
        d.typed.alias("d"),
        m.typed.alias("m"),
        y.typed.cast("string").alias("y"),
        d.failed.alias("df"),
        m.failed.alias("mf"),
        y.failed.alias("yf"),
    ).collect()
    assert rows[0]["d"] == dt.date(2026, 1, 5) and rows[0]["m"] == Decimal("10.50")
    assert rows[0]["y"] is None and rows[0]["yf"] is True  # year 0 fits the form, not the range
    assert rows[1]["d"] == dt.date(9999, 12, 31) and rows[1]["m"] == Decimal("-0.50")
    assert rows[1]["y"] == "0001-01-01 00:00:00" and rows[1]["yf"] is False
    # Null input is no cast failure (the nullable rules judge it).
    assert (rows[2]["df"], rows[2]["mf"], rows[2]["yf"]) == (False, False, False)


def test_typed_input_out_of_range_year_fails(spark: SparkSession) -> None:
    # A date Spark holds but no client can read back (e.g. from Parquet): not landed.
    df = spark.sql("SELECT make_date(99999, 1, 1) AS big, DATE'2026-01-05' AS ok")
    big = strict_cast(F.col("big"), "date", "date")
    ok = strict_cast(F.col("ok"), "date", "date")
    row = df.select(big.failed.alias("big"), ok.failed.alias("ok"), ok.typed.alias("v")).first()
    assert row is not None
    assert (row["big"], row["ok"], row["v"]) == (True, False, dt.date(2026, 1, 5))
