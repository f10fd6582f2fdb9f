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
