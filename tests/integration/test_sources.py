"""Every source format lands in bronze and conforms in silver: JSON (lines and
multi-line, with a corrupt record), Parquet, Avro (the cached spark-avro 4.1.1 jar on
Spark 4.2), text, globs and a declared bronze schema."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakeforge.pipeline.executor import execute
from lakeforge.plan.builder import build_plan
from lakeforge.plan.load import load_pipeline
from lakeforge.results import RunResult
from tests.helpers import make_project

pytestmark = pytest.mark.spark


def run(
    spark: SparkSession, root: Path, fmt: str, path: str, extra: str = ""
) -> tuple[str, RunResult]:
    s = uuid.uuid4().hex[:6]
    text = f"""\
name: src_{s}
bronze:
  ev_{s}:
    source:
      format: {fmt}
      path: {path}
{extra}
silver:
  ev_{s}:
    from: bronze.ev_{s}
    keys: [id]
    columns: {{id: bigint, name: string}}
"""
    loaded = load_pipeline(make_project(root, text))
    result = execute(build_plan(loaded), spark, loaded.project_root)
    assert result.ok, result.error
    return s, result


def test_json_lines_with_a_corrupt_record(spark: SparkSession, tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "2026" / "11"
    raw.mkdir(parents=True)
    (raw / "a.json").write_text(
        '{"id": 1, "name": "x"}\n{"id": 2, "name": "y"\n{"id": 3, "name": "z"}\n'
    )
    s, result = run(spark, tmp_path, "json", "raw/*/*/*.json")
    step = result.step(f"silver.ev_{s}")
    assert (step.rows_read, step.rows_written, step.rows_quarantined) == (3, 2, 1)
    q = spark.table(f"silver.ev_{s}__quarantine").first()
    assert (
        q is not None
        and q["reason"] == "malformed_record"
        and q["record"] == '{"id": 2, "name": "y"'
    )


def test_multiline_json(spark: SparkSession, tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.json").write_text(
        json.dumps([{"id": 1, "name": "x"}, {"id": 2, "name": "y"}], indent=2)
    )
    s, _ = run(spark, tmp_path, "json", "raw", extra="      options: {multiLine: true}")
    assert sorted(r["id"] for r in spark.table(f"silver.ev_{s}").collect()) == [1, 2]


def test_parquet_and_avro(spark: SparkSession, tmp_path: Path) -> None:
    df = spark.createDataFrame([(1, "x"), (2, "y"), (2, "y2")], "id BIGINT, name STRING")
    df.coalesce(1).write.parquet(str(tmp_path / "p" / "raw"))
    df.coalesce(1).write.format("avro").save(str(tmp_path / "a" / "raw"))
    for fmt, root in (("parquet", tmp_path / "p"), ("avro", tmp_path / "a")):
        s, result = run(spark, root, fmt, "raw")
        step = result.step(f"silver.ev_{s}")
        assert (step.rows_read, step.rows_written, step.rows_deduplicated) == (3, 2, 1), fmt
        # _SUCCESS and .crc files beside the data are not ingested.
        assert result.steps[0].files == 1, fmt


def test_text_and_declared_schema(spark: SparkSession, tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.csv").write_text("1|x\n2|y\nbad|z\n")
    extra = '      options: {header: false, sep: "|"}\n      schema: {id: bigint, name: string}'
    s, result = run(spark, tmp_path, "csv", "raw/a.csv", extra=extra)
    assert dict(spark.table(f"bronze.ev_{s}").dtypes)["id"] == "bigint"
    step = result.step(f"silver.ev_{s}")
    # A value that does not fit the declared bronze schema makes the line malformed.
    assert (step.rows_written, step.rows_quarantined) == (2, 1)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "raw").mkdir()
    (tmp_path / "t" / "raw" / "log.txt").write_text("hello\nworld\n")
    text = f"""\
name: txt_{s}
bronze:
  log_{s}: {{source: {{format: text, path: raw}}}}
"""
    loaded = load_pipeline(make_project(tmp_path / "t", text))
    result = execute(build_plan(loaded), spark, loaded.project_root)
    assert result.ok and result.steps[0].rows_written == 2
    assert sorted(r["value"] for r in spark.table(f"bronze.log_{s}").collect()) == [
        "hello",
        "world",
    ]
