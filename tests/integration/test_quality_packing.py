"""Counts packed into shared 64-bit sums (what a Spark Observation of a write computes)
read back exactly as separate counts, up to the bound and across several sums."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from lakeforge.quality.evaluate import _pack

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.mark.parametrize("rows", [7, 8, 2**21 - 1])
def test_packed_counts_read_back_exactly(spark: SparkSession, rows: int) -> None:
    from pyspark.sql import functions as F

    n = min(rows, 5000)  # rows actually present; the bound may be larger
    df = spark.range(n).select(F.col("id"))
    conds = [
        ("every", F.lit(True)),  # reaches n: the largest count a field must hold
        ("none", F.lit(False)),
        ("odd", F.col("id") % 2 == 1),
        ("third", F.col("id") % 3 == 0),
        ("tail", F.col("id") >= n - 1),
    ] * 5  # 25 counts: more than one sum at every width
    named = [(f"{a}{i}", c) for i, (a, c) in enumerate(conds)]
    packed = _pack(named, rows)
    assert len(packed.columns) < len(named)
    row = df.agg(*packed.columns).first()
    assert row is not None
    got = packed.read(row.asDict())
    expected_row = df.agg(*[F.count_if(c).alias(a) for a, c in named]).first()
    assert expected_row is not None
    assert got == expected_row.asDict()
    assert got["every0"] == n
