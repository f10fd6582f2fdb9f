"""A column one CSV file of several lacks: bronze records it per row (``_lf_missing_columns``)
and silver's casting can tell it from a NULL value (issue 14, point 4)."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakeforge.config.models import SourceSpec
from lakeforge.io.delta import write_table
from lakeforge.io.files import META_MISSING_COLUMNS, missing_columns, read_batch
from lakeforge.io.listing import list_files
from lakeforge.pipeline.executor import execute
from lakeforge.plan.builder import build_plan
from lakeforge.plan.load import load_pipeline
from lakeforge.plan.steps import IngestStep
from lakeforge.steps.casting import absent_from_file, missing_reason
from lakeforge.steps.ingest import check_schema
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
    assert sorted(r["id"] for r in spark.table(f"silver.mc_{s}").collect()) == [1, 2]
    for step in result.steps:
        assert step.rows_read == 3
        assert step.rows_read == (
            step.rows_written + step.rows_quarantined + step.rows_dropped + step.rows_deduplicated
        )
