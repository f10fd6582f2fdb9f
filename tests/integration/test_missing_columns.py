"""A column one CSV file of several lacks: bronze records it per row (``_lf_missing_columns``)
and silver's casting can tell it from a NULL value (issue 14, point 4)."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakeforge.config.models import SourceSpec
from lakeforge.io.delta import last_commit, write_table
from lakeforge.io.files import (
    META_MISSING_COLUMNS,
    MISSING_KEY,
    lacks_from_history,
    missing_columns,
    read_batch,
    recorded_lacks,
    table_lacks,
)
from lakeforge.io.listing import list_files
from lakeforge.pipeline.executor import execute
from lakeforge.plan.builder import build_plan
from lakeforge.plan.load import load_pipeline
from lakeforge.plan.steps import ConformStep, IngestStep
from lakeforge.quality.gate import BAD, REASONS
from lakeforge.steps.casting import absent_from_file, may_lack, missing_reason
from lakeforge.steps.ingest import check_schema
from lakeforge.steps.rows import flag_rows
from tests.helpers import make_project

pytestmark = pytest.mark.spark


def test_missing_columns_are_the_batch_and_table_columns_a_header_lacks() -> None:
    headers = [("id", "qty", "note"), ("id",), ("ID", "extra col")]
    assert missing_columns(("id",), headers) == ["qty", "note", "extra_col"]
    # Compared without case, as Spark's union by name; names as bronze stores them.
    assert missing_columns(("ID", "extra col"), headers) == ["qty", "note"]
    assert missing_columns(("id", "qty", "note"), headers, ["id", "Qty", "old"]) == [
        "extra_col",
        "old",
    ]
    assert missing_columns(("a",), [("a",)]) == []


def test_the_newest_record_answers_past_commits_that_add_no_rows() -> None:
    def meta(lacks: list[str] | None) -> str:
        return json.dumps({"lakeforge_run_id": "r", "batch_id": 1, MISSING_KEY: lacks})

    recorded = ("WRITE", {"numFiles": "2"}, meta(["qty"]))
    # Newest first: metadata-only commits, OPTIMIZE, a DELETE, an empty append are passed.
    assert lacks_from_history(
        [
            ("SET TBLPROPERTIES", {}, None),
            ("OPTIMIZE", {"numAddedFiles": "1"}, None),
            ("DELETE", {"numAddedFiles": "3"}, None),
            ("WRITE", {"numFiles": "0"}, None),
            recorded,
            ("WRITE", {"numFiles": "1"}, meta([])),
        ]
    ) == {"qty"}
    assert lacks_from_history([("WRITE", {"numFiles": "1"}, meta([]))]) == set()
    # A commit that may add rows without a record (another writer, an older bronze, a
    # MERGE, a RESTORE), a malformed record, or no record at all: the log cannot say.
    for unknown in [
        ("WRITE", {"numFiles": "1"}, None),
        ("WRITE", {"numFiles": "1"}, '{"lakeforge_run_id": "r"}'),
        ("MERGE", {"numTargetFilesAdded": "1"}, None),
        ("RESTORE", {"numRestoredFiles": "1"}, None),
        ("CREATE TABLE", {}, None),
        ("WRITE", {"numFiles": "1"}, meta(None)),
    ]:
        assert lacks_from_history([unknown, recorded]) is None, unknown
    assert lacks_from_history([]) is None
    assert lacks_from_history([("SET TBLPROPERTIES", {}, None)]) is None


def _write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def _missing_by_file(df: object) -> dict[str, list[str] | None]:
    rows = df.select(  # type: ignore[attr-defined]
        F.element_at(F.split("_lf_source_file", "/"), -1).alias("f"), META_MISSING_COLUMNS
    ).collect()
    out: dict[str, list[str] | None] = {}
    for r in rows:
        value = r[META_MISSING_COLUMNS]
        out.setdefault(r["f"], None if value is None else list(value))
    return out


def test_each_row_lists_the_columns_its_file_lacks(spark: SparkSession, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write(raw, "day1.csv", "id,qty,note\n1,1,a\n2,,b\n")
    _write(raw, "day2.csv", "id\n3\n4\n")
    _write(raw, "day3.csv", "note,id\nc,5\n")
    spec = SourceSpec.model_validate({"format": "csv", "path": str(raw)})
    batch = read_batch(spark, spec, list_files(spark, str(raw)), "r", 1)
    assert batch.source_rows == batch.df.count() == 5
    assert _missing_by_file(batch.df) == {
        "day1.csv": [],
        "day2.csv": ["qty", "note"],
        "day3.csv": ["qty"],
    }
    # A NULL value in a file that has the column is not a missing column.
    row2 = batch.df.where("id = '2'").first()
    assert row2 is not None and row2["qty"] is None and row2[META_MISSING_COLUMNS] == []


def test_formats_without_headers_list_nothing(spark: SparkSession, tmp_path: Path) -> None:
    raw = tmp_path / "json"
    _write(raw, "a.json", '{"id": 1, "qty": 2}\n')
    _write(raw, "b.json", '{"id": 3}\n')
    spec = SourceSpec.model_validate({"format": "json", "path": str(raw)})
    batch = read_batch(spark, spec, list_files(spark, str(raw)), "r", 1)
    assert _missing_by_file(batch.df) == {"a.json": [], "b.json": []}


def _ingest_step(root: Path, table: str, raw: Path) -> IngestStep:
    text = f"""\
        name: p_{table.split(".")[1]}
        bronze:
          {table.split(".")[1]}:
            source: {{format: csv, path: {raw}}}
            schema_evolution: fail
        """
    plan = build_plan(load_pipeline(make_project(root, textwrap.dedent(text))))
    step = plan.steps[0]
    assert isinstance(step, IngestStep)
    return step


def test_a_bronze_table_older_than_the_column_keeps_working(
    spark: SparkSession, tmp_path: Path
) -> None:
    table = f"bronze.mc_{uuid.uuid4().hex[:6]}"
    raw1, raw2 = tmp_path / "raw1", tmp_path / "raw2"
    _write(raw1, "old.csv", "id,qty\n1,1\n")
    _write(raw2, "new.csv", "id\n2\n")
    step = _ingest_step(tmp_path, table, raw2)
    spec = step.spec.source
    # A bronze table written before _lf_missing_columns existed.
    old = read_batch(spark, spec, list_files(spark, str(raw1)), "r1", 1).df
    spark.sql("CREATE SCHEMA IF NOT EXISTS bronze")
    write_table(old.drop(META_MISSING_COLUMNS), table, "append", "r1", table)
    assert META_MISSING_COLUMNS not in spark.table(table).columns

    new = read_batch(spark, spec, list_files(spark, str(raw2)), "r2", 2, table)
    # The lineage column is added whatever the policy (schema_evolution: fail).
    assert check_schema(step, spark, new.df) is True
    write_table(new.df, table, "append", "r2", table, merge_schema=True)
    bronze = spark.table(table)
    # new.csv lacks qty, which only the bronze table knew; old rows hold NULL (unknown).
    assert _missing_by_file(bronze) == {"old.csv": None, "new.csv": ["qty"]}

    absent = absent_from_file(bronze.columns, "qty", "quantity")
    assert absent is not None
    got = {
        r["id"]: (r["flag"], r["reason"])
        for r in bronze.select(
            "id", absent.flag.alias("flag"), absent.reason.alias("reason")
        ).collect()
    }
    # NULL list = rows bronze wrote before it kept the list: taken as complete.
    assert got == {"1": (False, None), "2": (True, missing_reason("quantity"))}
    assert missing_reason("quantity") == "missing_column:quantity"
    assert absent_from_file(["id", "qty"], "qty", "qty") is None

    # Neither commit recorded what rows lack (written without lakeforge's ingest): the log
    # cannot say, so silver tests every row; bronze's next record comes from the rows.
    assert recorded_lacks(spark, table) is None
    assert may_lack(bronze, table, ["id", "qty"]) == {"id", "qty"}
    assert table_lacks(spark, table) == {"qty"}
    third = read_batch(spark, spec, list_files(spark, str(raw1)), "r3", 3, table)
    assert third.lacks == ["qty"]  # old.csv has every column; the table's rows do not


def test_a_pipeline_run_records_missing_columns_and_balances(
    spark: SparkSession, tmp_path: Path
) -> None:
    s = uuid.uuid4().hex[:6]
    raw = tmp_path / "raw"
    _write(raw, "day1.csv", "id,note\n1,a\n2,b\n")
    _write(raw, "day2.csv", "id\n3\n")
    text = f"""\
        name: mc_{s}
        bronze:
          mc_{s}:
            source: {{format: csv, path: {raw}}}
        silver:
          mc_{s}:
            from: bronze.mc_{s}
            keys: [id]
            columns:
              id: bigint
              note: string
        """
    loaded = load_pipeline(make_project(tmp_path, textwrap.dedent(text)))
    result = execute(build_plan(loaded), spark, loaded.project_root)
    assert result.ok, result
    assert _missing_by_file(spark.table(f"bronze.mc_{s}")) == {
        "day1.csv": [],
        "day2.csv": ["note"],
    }
    # Row 3's file had no `note`: quarantined for that, not landed with a NULL note.
    quarantine = spark.table(f"silver.mc_{s}__quarantine").collect()
    assert [(r["reason"], r["record"]) for r in quarantine] == [
        ("missing_column:note", quarantine[0]["record"])
    ]
    assert '"id":"3"' in quarantine[0]["record"].replace(" ", "")
    # The bronze commit says so: silver knows which column to test without reading rows.
    meta = last_commit(spark, f"bronze.mc_{s}").meta  # type: ignore[union-attr]
    assert meta is not None and meta[MISSING_KEY] == ["note"]
    assert sorted(r["id"] for r in spark.table(f"silver.mc_{s}").collect()) == [1, 2]
    for step in result.steps:
        assert step.rows_read == 3
        assert step.rows_read == (
            step.rows_written + step.rows_quarantined + step.rows_dropped + step.rows_deduplicated
        )


def _read_schema(df: object) -> str:
    """The data columns the physical plan reads from the table's files."""
    plan = str(df._jdf.queryExecution().executedPlan().toString())  # type: ignore[attr-defined]
    return plan[plan.index("ReadSchema") :]


def test_silver_reads_the_array_only_when_the_log_says_a_column_may_be_missing(
    spark: SparkSession, tmp_path: Path
) -> None:
    s = uuid.uuid4().hex[:6]
    raw = tmp_path / "raw"
    _write(raw, "day1.csv", "id,note\n1,a\n2,\n")
    text = f"""\
        name: mr_{s}
        bronze:
          mr_{s}:
            source: {{format: csv, path: {raw}}}
        silver:
          mr_{s}:
            from: bronze.mr_{s}
            keys: [id]
            columns:
              id: bigint
              note: string
        """
    bronze = f"bronze.mr_{s}"
    loaded = load_pipeline(make_project(tmp_path, textwrap.dedent(text)))
    plan = build_plan(loaded)
    conform = plan.steps[1]
    assert isinstance(conform, ConformStep)
    result = execute(plan, spark, loaded.project_root)
    assert result.ok, result
    assert last_commit(spark, bronze).meta[MISSING_KEY] == []  # type: ignore[index,union-attr]
    # A commit that adds no rows leaves the record in force.
    spark.sql(f"ALTER TABLE {bronze} SET TBLPROPERTIES ('t.rep' = '1')")
    assert recorded_lacks(spark, bronze) == set()
    flagged = flag_rows(spark.table(bronze), conform).select(REASONS, BAD)
    assert META_MISSING_COLUMNS not in _read_schema(flagged)
    # Row 2's NULL note is a value (nullable), not a missing column.
    assert [r[REASONS] for r in flagged.collect()] == [[], []]

    # A later file without `note`: the record (cumulative) names it, silver tests it.
    _write(raw, "day2.csv", "id\n3\n")
    result = execute(build_plan(loaded), spark, loaded.project_root)
    assert result.ok, result
    assert recorded_lacks(spark, bronze) == {"note"}
    flagged = flag_rows(spark.table(bronze), conform).select("id", REASONS, BAD)
    assert META_MISSING_COLUMNS in _read_schema(flagged)
    got = {r["id"]: (r[REASONS], r[BAD]) for r in flagged.collect()}
    assert got == {"1": ([], False), "2": ([], False), "3": (["missing_column:note"], True)}
    quarantine = spark.table(f"silver.mr_{s}__quarantine").collect()
    assert [r["reason"] for r in quarantine] == ["missing_column:note"]

    # A complete file later still records `note`: rows already in bronze lack it.
    _write(raw, "day3.csv", "id,note\n4,d\n")
    result = execute(build_plan(loaded), spark, loaded.project_root)
    assert result.ok, result
    assert last_commit(spark, bronze).meta[MISSING_KEY] == ["note"]  # type: ignore[index,union-attr]
    # Another writer's rows (no record): the log cannot say, every row is tested.
    spark.sql(f"INSERT INTO {bronze} (id, note) VALUES ('5', 'e')")
    assert recorded_lacks(spark, bronze) is None
    assert may_lack(spark.table(bronze), bronze, ["id", "note"]) == {"id", "note"}
