"""The Spark expression of the hash split equals the plain-Python one, row for row."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakeforge.training.splits import SplitRanges, assign, bucket_of, spark_bucket, spark_split

pytestmark = pytest.mark.spark


def test_spark_and_python_assign_the_same_split(spark: SparkSession) -> None:
    rng = random.Random(11)
    rows = []
    for i in range(3000):
        rows.append(
            (
                rng.choice([None, rng.randint(-(2**40), 2**40)]),
                rng.choice([None, "", f"cust-{i}", "é€😀|x", "a\x1fb"]),
                rng.choice([None, date(2020, 1, 1) + timedelta(days=rng.randint(0, 3000))]),
                rng.choice([None, Decimal(rng.randint(-(10**6), 10**6)) / 100]),
                rng.choice([None, True, False]),
            )
        )
    schema = "k bigint, s string, d date, m decimal(12,2), b boolean"
    df = spark.createDataFrame(rows, schema)
    ranges = SplitRanges.from_fractions({"train": 0.7, "validation": 0.15, "test": 0.15})
    cols = [
        (F.col(c), t)
        for c, t in (
            ("k", "bigint"),
            ("s", "string"),
            ("d", "date"),
            ("m", "decimal(12,2)"),
            ("b", "boolean"),
        )
    ]
    got = df.select(
        "*",
        spark_bucket(cols, "salt-x", ranges.buckets).alias("bucket"),
        spark_split(cols, "salt-x", ranges).alias("split"),
    ).collect()
    assert len(got) == len(rows)
    for r in got:
        key = (r["k"], r["s"], r["d"], r["m"], r["b"])
        assert r["bucket"] == bucket_of(key, "salt-x", ranges.buckets), key
        assert r["split"] == assign(key, "salt-x", ranges), key
    assert {r["split"] for r in got} == {"train", "validation", "test"}
