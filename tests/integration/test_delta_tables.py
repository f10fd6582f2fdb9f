"""Delta tables through lakeforge's writer: registered by name, versioned, time travel."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from lakeforge.io.delta import count_rows, latest_version, read_version, write_table
from lakeforge.runtime.session import ensure_schemas

pytestmark = pytest.mark.spark


def unique(name: str) -> str:
    return f"{name}_{uuid.uuid4().hex[:8]}"


def test_write_registers_versions_and_time_travels(
    spark: SparkSession, lakehouse_root: Path
) -> None:
    ensure_schemas(spark)
    table = f"bronze.{unique('events')}"
    first = spark.createDataFrame([(1, "a"), (2, "b")], "id INT, v STRING")
    second = spark.createDataFrame([(3, "c")], "id INT, v STRING")

    c0 = write_table(first, table, "append", "run-one", table)
    c1 = write_table(second, table, "append", "run-two", table)

    assert (c0.version, c0.rows_written) == (0, 2)
    assert (c1.version, c1.rows_written) == (1, 1)
    assert spark.catalog.tableExists(table)
    history = spark.sql(f"DESCRIBE HISTORY {table}").orderBy("version").collect()
    assert [h["version"] for h in history] == [0, 1]
    assert [json.loads(h["userMetadata"])["lakeforge_run_id"] for h in history] == [
        "run-one",
        "run-two",
    ]

    assertDataFrameEqual(read_version(spark, table, 0), first)
    assertDataFrameEqual(spark.sql(f"SELECT * FROM {table} VERSION AS OF 0"), first)
    assertDataFrameEqual(spark.table(table), first.union(second))
    assert count_rows(spark, table, 0) == 2 and count_rows(spark, table, 1) == 3
    assert latest_version(spark, table) == 1

    # Managed table files live under the profile's warehouse folder.
    location = spark.sql(f"DESCRIBE DETAIL {table}").first()["location"]  # type: ignore[index]
    assert str(lakehouse_root / "lakehouse" / "warehouse") in location


def test_overwrite_keeps_old_version_readable(spark: SparkSession) -> None:
    ensure_schemas(spark)
    table = f"gold.{unique('mart')}"
    v0 = spark.createDataFrame([("x", 1)], "k STRING, n INT")
    v1 = spark.createDataFrame([("x", 1.5), ("y", 2.0)], "k STRING, n DOUBLE")
    write_table(v0, table, "overwrite", "r0", table)
    commit = write_table(v1, table, "overwrite", "r1", table, overwrite_schema=True)
    assert commit.version == 1 and commit.rows_written == 2
    assertDataFrameEqual(spark.table(table), v1)
    assertDataFrameEqual(read_version(spark, table, 0), v0)


def test_latest_version_of_missing_table_is_none(spark: SparkSession) -> None:
    ensure_schemas(spark)
    assert latest_version(spark, f"silver.{unique('nothing')}") is None


def test_observed_overwrite_reports_and_commits_even_when_empty(spark: SparkSession) -> None:
    """An observed overwrite of an existing table goes through ``writeTo().overwrite``:
    its Observation reports, and every run still gets its version, even when no rows
    replace no rows (Delta alone would commit nothing then)."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    ensure_schemas(spark)
    table = f"silver.{unique('observed')}"
    empty = spark.createDataFrame([], "id INT")
    write_table(empty, table, "overwrite", "r0", table)
    for run, rows in (("r1", []), ("r2", [(1,), (2,)]), ("r3", [])):
        seen = Observation(unique("obs"))
        df = spark.createDataFrame(rows, "id INT").observe(seen, F.count(F.lit(1)).alias("n"))
        commit = write_table(df, table, "overwrite", run, table, observed=True)
        assert commit.committed_now and (commit.meta or {})["lakeforge_run_id"] == run
        assert seen.get["n"] == len(rows) == commit.rows_written
        assert spark.table(table).count() == len(rows)
    assert latest_version(spark, table) == 3


def test_log_reads_answer_what_history_answers(spark: SparkSession) -> None:
    """The newest version and commits read from the Delta log's own files equal what
    ``history()`` shows, across commit kinds; a view or a missing table gets None (the
    callers then ask ``history()``, which raises the usual errors)."""
    from delta.tables import DeltaTable

    from lakeforge.io.delta import (
        commit_context,
        last_commit,
        recent_commit_infos,
        snapshot_version,
    )

    ensure_schemas(spark)
    table = f"silver.{unique('log_reads')}"
    spark.sql(f"CREATE TABLE {table} (id BIGINT, v STRING) USING DELTA")
    with commit_context(spark, json.dumps({"batch": 1, "q": 'a"b é'}), None):
        spark.sql(f"INSERT INTO {table} VALUES (1, 'x'), (2, 'y')")
    spark.sql(
        f"MERGE INTO {table} t USING (SELECT 2L AS id, 'z' AS v UNION ALL SELECT 3L, 'w') s "
        "ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ('lakeforge.test' = 'x')")
    spark.sql(f"DELETE FROM {table} WHERE id = 1")

    history = DeltaTable.forName(spark, table).history().collect()
    ours = recent_commit_infos(spark, table, 20)
    assert ours is not None and len(ours) == len(history) == 5
    for mine, theirs in zip(ours, history, strict=True):
        assert mine["version"] == theirs["version"]
        assert mine["operation"] == theirs["operation"]
        assert mine["userMetadata"] == theirs["userMetadata"]
        assert mine["operationMetrics"] == dict(theirs["operationMetrics"] or {})
    assert [r["version"] for r in recent_commit_infos(spark, table, 2) or []] == [4, 3]
    assert snapshot_version(spark, table) == latest_version(spark, table) == 4
    newest = last_commit(spark, table)
    assert newest is not None and (newest.version, newest.operation) == (4, "DELETE")
    assert json.loads(str(history[3]["userMetadata"]))["q"] == 'a"b é'

    view = f"silver.{unique('log_view')}"
    spark.sql(f"CREATE VIEW {view} AS SELECT 1 AS id")
    assert snapshot_version(spark, view) is None
    assert recent_commit_infos(spark, view, 1) is None
    assert snapshot_version(spark, "silver.no_such_table_here") is None


def test_row_counts_from_the_log_equal_spark_counts(spark: SparkSession, tmp_path: Path) -> None:
    """A version's row count read from the Delta log by delta-rs (no Spark job) equals
    Spark's ``count(*)`` of that version, through appends, an overwrite, a delete and an
    empty version; with deletion vectors, and where delta-rs cannot read, it gives way."""
    from lakeforge.io.delta import catalog_location
    from lakeforge.io.delta_rs import reach, stats_row_count

    ensure_schemas(spark)
    table = f"bronze.{unique('counted')}"
    spark.range(5).write.format("delta").saveAsTable(table)
    spark.range(7).write.format("delta").mode("append").saveAsTable(table)
    spark.range(3).write.format("delta").mode("overwrite").saveAsTable(table)
    spark.sql(f"DELETE FROM {table} WHERE id = 1")
    spark.sql(f"DELETE FROM {table}")
    location = catalog_location(spark, table)
    assert location is not None
    where = reach(spark, location)
    assert where is not None
    for version in range(5):
        truth = spark.sql(f"SELECT count(*) AS n FROM {table} VERSION AS OF {version}").first()
        assert truth is not None
        assert stats_row_count(where, version) == truth["n"], version
        assert count_rows(spark, table, version) == truth["n"]
    assert [stats_row_count(where, v) for v in range(5)] == [5, 12, 3, 2, 0]

    dv = f"bronze.{unique('with_dv')}"
    spark.sql(
        f"CREATE TABLE {dv} (id BIGINT) USING DELTA "
        "TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')"
    )
    spark.range(10).coalesce(1).write.format("delta").mode("append").saveAsTable(dv)
    spark.sql(f"DELETE FROM {dv} WHERE id < 4")
    dv_location = catalog_location(spark, dv)
    assert dv_location is not None
    dv_reach = reach(spark, dv_location)
    assert dv_reach is not None
    assert stats_row_count(dv_reach, 2) is None  # a file's rows are not all live
    assert count_rows(spark, dv, 2) == 6  # Spark's answer instead

    missing = reach(spark, f"file:{tmp_path}/none")
    assert missing is not None and stats_row_count(missing, 0) is None  # not a table
    assert reach(spark, "hdfs://nn/w/t") is None
