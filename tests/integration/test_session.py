"""The session lakeforge builds (tests share one, built by build_session)."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession


def test_building_columns_captures_no_call_site(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PySpark's per-call call-site capture is off (session.BASE_CONF): building a step's
    expressions makes no extra py4j round trips and no stack walks."""
    from pyspark.errors import utils
    from pyspark.sql import functions as F

    assert spark.conf.get("spark.python.sql.dataFrameDebugging.enabled") == "false"
    captured: list[int] = []

    def capture(depth: int) -> str:
        captured.append(depth)
        return ""

    # PySpark reads the setting once per process: read it again from this session.
    monkeypatch.setattr(utils, "_enable_debugging_cache", None)
    monkeypatch.setattr(utils, "_capture_call_site", capture)
    expr = F.when(F.col("id") > F.lit(1), F.col("id") * 2).otherwise(0).alias("x")
    assert spark.range(3).select(expr).columns == ["x"]
    assert captured == []


def test_generated_code_outlives_a_few_runs_of_queries(spark: SparkSession) -> None:
    """Spark compiles a class per distinct generated code and keeps 100 by default. A
    run of a step generates dozens of them (Delta's own queries inline versions and
    times), so a session that runs steps again (a notebook, a scheduler, this suite)
    compiled its own stages anew every time, and the JVM then compiled them to machine
    code again (session.BASE_CONF: profiled in bench/RESULTS.md). Code compiled before
    150 other classes is still cached: running it again compiles nothing."""
    # The test session runs interpreted expressions (tests/conftest.py); a lakeforge
    # session generates code: so does this test, and puts the session back after.
    generated = {
        "spark.sql.codegen.wholeStage": "true",
        "spark.sql.codegen.factoryMode": "FALLBACK",
    }
    saved = {k: spark.conf.get(k) for k in generated}
    for key, value in generated.items():
        spark.conf.set(key, value)
    try:
        _generated_code_is_kept(spark)
    finally:
        for key, value in saved.items():
            spark.conf.set(key, value)


def _generated_code_is_kept(spark: SparkSession) -> None:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    compiled = jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME()
    assert spark.conf.get("spark.sql.codegen.cache.maxEntries") == "1000"
    probe = spark.range(10).selectExpr("id * 7 + 3 AS x").where("x % 2 = 1")
    assert [r.x for r in probe.collect()] == [3, 17, 31, 45, 59]
    before = compiled.getCount()
    for i in range(150):  # each inlines its own literal: 150 new classes at least
        spark.range(2).selectExpr(f"id * {1000 + i} AS y").collect()
    assert compiled.getCount() - before >= 150
    before = compiled.getCount()
    assert [r.x for r in probe.collect()] == [3, 17, 31, 45, 59]
    assert compiled.getCount() == before
