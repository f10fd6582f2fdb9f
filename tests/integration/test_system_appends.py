"""System-table appends, both ways (lakeforge/lineage/appends.py).

delta-rs appends rows to a table Spark created from the DDL; Spark must read back exactly
what ``spark.createDataFrame`` would hold, for every system table, with NULLs, arrays,
quotes, unicode, big numbers and naive and aware timestamps. The Spark way builds rows in
the JVM from one JSON literal (no Python worker) and must equal the same. On both, a value
of the wrong type fails instead of landing as NULL. The choice of way follows the table's
location, and a table dropped since it was chosen is looked up again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from lakeforge.errors import Code
from lakeforge.lineage import native as appends
from lakeforge.lineage import system_tables as st

pytestmark = pytest.mark.spark


def sample(table: str, i: int) -> tuple[Any, ...]:
    """A row of ``table``'s DDL with awkward values, varied by ``i``."""
    values: list[Any] = []
    for col in st.DDL[table].split(", "):
        name, kind = col.split()[0], col.split()[1]
        if i == 0 and name not in ("run_id", "table_name", "path", "id"):
            values.append(None)  # every nullable column NULL
        elif kind == "STRING":
            values.append(f'{name} "quoted" \\ é ✓ {i}\n')
        elif kind == "BIGINT":
            values.append(2**40 + i if i % 2 else -i)
        elif kind == "DOUBLE":
            values.append(0.1 * i)
        elif kind == "BOOLEAN":
            values.append(i % 2 == 1)
        elif kind == "TIMESTAMP":
            aware = datetime(2026, 11, 30, 5, 1, 2, 123456, tzinfo=UTC) + timedelta(hours=i)
            naive = datetime(2026, 3, 29, 2, 30, 0, 7)  # read as local time, like PySpark
            east = aware.astimezone(timezone(timedelta(hours=5, minutes=30)))
            values.append((aware, naive, east)[i % 3])
        elif kind == "ARRAY<STRING>":
            values.append([] if i == 1 else ["a", None, '"b"'])
        else:  # pragma: no cover - a new DDL type needs a case here
            raise AssertionError(f"{table}.{name}: no sample for {kind}")
    return tuple(values)


def scratch_table(spark: SparkSession, table: str) -> str:
    spark.sql("CREATE SCHEMA IF NOT EXISTS appends_test")
    name = f"appends_test.{table.split('.')[1]}_{uuid.uuid4().hex[:8]}"
    spark.sql(f"CREATE TABLE {name} ({st.DDL[table]}) USING DELTA")
    return name


@pytest.mark.parametrize("table", sorted(st.DDL))
def test_delta_rs_append_reads_back_as_create_data_frame(spark: SparkSession, table: str) -> None:
    name = scratch_table(spark, table)
    way = appends.appender(spark, name)
    assert isinstance(way, appends.NativeAppend)  # a local warehouse: delta-rs
    rows = [sample(table, i) for i in range(5)]
    way.append(spark, name, st.DDL[table], rows[:2])
    way.append(spark, name, st.DDL[table], rows[2:])
    theirs = spark.createDataFrame(rows, appends.spark_schema(st.DDL[table]))
    back = spark.table(name)
    assert [(f.name, f.dataType) for f in back.schema] == [
        (f.name, f.dataType) for f in theirs.schema
    ]
    assertDataFrameEqual(back, theirs, checkRowOrder=False)
    history = spark.sql(f"DESCRIBE HISTORY {name}").collect()
    assert [r["version"] for r in history] == [2, 1, 0]  # one commit per append


@pytest.mark.parametrize("table", sorted(st.DDL))
def test_literal_frame_equals_create_data_frame(spark: SparkSession, table: str) -> None:
    rows = [sample(table, i) for i in range(5)]
    ours = appends.literal_frame(spark, st.DDL[table], rows)
    theirs = spark.createDataFrame(rows, appends.spark_schema(st.DDL[table]))
    assert ours.schema == theirs.schema
    assertDataFrameEqual(ours, theirs, checkRowOrder=True)


def test_wrong_type_fails_instead_of_landing_null(spark: SparkSession) -> None:
    ddl = st.DDL[st.TABLE_VERSIONS]
    row = list(sample(st.TABLE_VERSIONS, 2))
    row[5] = "seven"  # version BIGINT: the JSON reader must refuse it (FAILFAST)
    with pytest.raises(Exception, match=r"(?i)malformed|FAILFAST"):
        appends.literal_frame(spark, ddl, [tuple(row)]).collect()
    name = scratch_table(spark, st.TABLE_VERSIONS)
    with pytest.raises(Exception, match=r"(?i)int|seven"):
        appends.appender(spark, name).append(spark, name, ddl, [tuple(row)])
    assert spark.table(name).count() == 0
    row = list(sample(st.RUN_EVENTS, 2))
    row[5] = "not a timestamp"  # started_at: PySpark's own conversion refuses it
    with pytest.raises(AttributeError):
        appends.literal_frame(spark, st.DDL[st.RUN_EVENTS], [tuple(row)])


def test_a_dropped_table_is_looked_up_again_never_remade_by_path(spark: SparkSession) -> None:
    name = scratch_table(spark, st.RUN_EVENTS)
    first = appends.appender(spark, name)
    assert isinstance(first, appends.NativeAppend)
    spark.sql(f"DROP TABLE {name}")
    with pytest.raises(appends.TableGone):
        first.append(spark, name, st.DDL[st.RUN_EVENTS], [sample(st.RUN_EVENTS, 3)])
    assert appends.appender(spark, name) == appends.SparkAppend(None)  # the metastore's way
    # Through the cached way: gone, looked up again, made anew by the metastore.
    appends.append(spark, name, st.DDL[st.RUN_EVENTS], [sample(st.RUN_EVENTS, 3)])
    assert spark.table(name).count() == 1
    assert isinstance(appends.appender(spark, name), appends.NativeAppend)


def test_the_choice_follows_the_location(spark: SparkSession) -> None:
    assert appends._choose(spark, "file:/tmp/w/a.db/t") == appends.NativeAppend("/tmp/w/a.db/t")
    assert appends._choose(spark, "file:///tmp/w%20x/t") == appends.NativeAppend("/tmp/w x/t")
    s3 = appends._choose(spark, "s3a://bucket/w/lakeforge.db/run_events")
    assert isinstance(s3, appends.NativeAppend)
    assert s3.uri == "s3://bucket/w/lakeforge.db/run_events"
    assert s3.storage_options["conditional_put"] == "etag"
    assert appends._choose(spark, "hdfs://nn/w/t") == appends.SparkAppend("hdfs://nn/w/t")
    assert appends._choose(spark, "dbfs:/user/hive/t") == appends.SparkAppend("dbfs:/user/hive/t")


def test_an_unreadable_log_is_one_coded_error(tmp_path: Path) -> None:
    log = tmp_path / "t" / "_delta_log"
    log.mkdir(parents=True)
    (log / "00000000000000000000.json").write_text("{not json\n")
    way = appends.NativeAppend(str(tmp_path / "t"))
    with pytest.raises(appends.SystemTableError) as caught:
        way.append(None, "lakeforge.x", st.DDL[st.RUN_EVENTS], [sample(st.RUN_EVENTS, 1)])  # type: ignore[arg-type]
    assert caught.value.code == Code.SYSTEM_TABLE_FAILED
    assert "lakeforge.x" in caught.value.message
    assert sorted(p.name for p in log.iterdir()) == ["00000000000000000000.json"]


def at(minute: int, second: int = 0) -> datetime:
    return datetime(2026, 12, 1, 10, minute, second, tzinfo=UTC)


def test_stale_runs_read_natively_equal_spark(spark: SparkSession) -> None:
    """The delta-rs reader of ``run_events`` keeps the ``runs`` view's rule, ties included."""
    name = scratch_table(spark, st.RUN_EVENTS)

    def event(run: str, pipeline: str, status: str, rec: datetime, end: datetime | None) -> Any:
        return (
            run,
            pipeline,
            "local",
            "h",
            "c",
            at(0, ord(run[-1]) % 50),
            end,
            status,
            None,
            None,
            rec,
        )

    rows = [
        event("r-a", "p", "running", at(1), None),
        event("r-a", "p", "succeeded", at(2), at(2)),  # ended: not stale
        event("r-b", "p", "running", at(3), None),  # killed: stale
        event("r-c", "p", "running", at(4), None),
        event("r-c", "p", "interrupted", at(4), at(4)),  # tie on recorded_at: the ended one wins
        event("r-d", "q", "running", at(5), None),  # another pipeline
        event("r-e", "p", "running", at(6), None),  # the asking run itself
        event("r-f", "p", "failed", at(7), at(7)),
        event("r-f", "p", "running", at(8), None),  # newest event is running: stale
    ]
    appends.append(spark, name, st.DDL[st.RUN_EVENTS], rows)
    way = appends.native(spark, name)
    assert way is not None
    native_rows = st._stale_native(way, "p", "r-e")
    # The Spark reader over the same table, by name.
    spark_rows = [
        r.asDict()
        for r in spark.table(name)
        .where("pipeline = 'p'")
        .selectExpr(
            "*",
            "row_number() OVER (PARTITION BY run_id ORDER BY recorded_at DESC, "
            "ended_at DESC NULLS LAST) AS _rn",
        )
        .where("_rn = 1 AND status = 'running' AND run_id != 'r-e'")
        .orderBy("started_at", "run_id")
        .collect()
    ]
    assert [r["run_id"] for r in native_rows] == [r["run_id"] for r in spark_rows]
    assert [r["run_id"] for r in native_rows] == ["r-f", "r-b"]  # r-f started first
    for ours, theirs in zip(native_rows, spark_rows, strict=True):
        assert ours["started_at"] == theirs["started_at"].astimezone(UTC)


def test_ingestion_log_read_natively_equals_spark(spark: SparkSession) -> None:
    """Latest event per path: newest ``recorded_at``; at a tie, ``committed`` wins."""
    from lakeforge.steps import ingest

    table = f"bronze.native_log_{uuid.uuid4().hex[:8]}"
    mtime = datetime(2026, 11, 30, 1, 2, 3, 456789, tzinfo=UTC)

    def event(path: str, status: str, rec: datetime, version: int | None) -> Any:
        return (table, path, 10, mtime, 1, "run", status, version, rec, "etag", None)

    rows = [
        event("a.csv", "pending", at(1), None),
        event("a.csv", "committed", at(1), 4),  # same instant: committed wins
        event("b.csv", "committed", at(1), 3),
        event("b.csv", "pending", at(2), None),  # newer pending (a retry): pending wins
        event("c.csv", "pending", at(3), None),
        ("bronze.other", "a.csv", 1, mtime, 9, "run", "committed", 9, at(9), None, None),
    ]
    st.ensure_system_tables(spark)
    st._append(spark, st.INGESTED_FILES, rows)
    way = appends.native(spark, st.INGESTED_FILES)
    assert way is not None
    ours = ingest._latest_native(way, table)
    theirs = ingest._latest_spark(spark, table)
    assert ours == theirs
    assert {p: (e.status, e.bronze_version) for p, e in ours.items()} == {
        "a.csv": ("committed", 4),
        "b.csv": ("pending", None),
        "c.csv": ("pending", None),
    }
    assert ours["a.csv"].mtime_ms == int(mtime.timestamp() * 1000)
