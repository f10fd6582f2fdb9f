"""Every source format lands in bronze and conforms in silver: JSON (lines and
multi-line, with a corrupt record), Parquet, Avro (the cached spark-avro 4.1.1 jar on
Spark 4.2), text, globs and a declared bronze schema.

One module fixture builds one project whose pipeline holds every source as its own bronze
table (and silver table), runs it once, and each test asserts on its own tables' steps."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
from pyspark.sql import SparkSession

from lakeforge.pipeline.executor import execute
from lakeforge.plan.builder import build_plan
from lakeforge.plan.load import load_pipeline
from lakeforge.results import RunResult
from tests.helpers import make_project

pytestmark = pytest.mark.spark

# Each source: its table stem, format, path (relative to the project root) and the
# extra YAML under ``source:``. Every one gets a bronze table and a silver table
# (``keys: [id]``, ``columns: {id: bigint, name: string}``), except the text log.
SOURCES: tuple[tuple[str, str, str, str], ...] = (
    ("jl", "json", "jl/*/*/*.json", ""),
    ("ml", "json", "ml", "      options: {multiLine: true}\n"),
    ("pq", "parquet", "p", ""),
    ("av", "avro", "a", ""),
    (
        "cs",
        "csv",
        "c/a.csv",
        '      options: {header: false, sep: "|"}\n      schema: {id: bigint, name: string}\n',
    ),
)


@dataclass(frozen=True)
class Sources:
    """The shared run: ``s`` is the tables' unique suffix (``<stem>_<s>``)."""

    s: str
    result: RunResult


def pipeline_text(s: str) -> str:
    bronze = "".join(
        f"  {stem}_{s}:\n    source:\n      format: {fmt}\n      path: {path}\n{extra}"
        for stem, fmt, path, extra in SOURCES
    )
    bronze += f"  log_{s}: {{source: {{format: text, path: t}}}}\n"
    silver = "".join(
        f"  {stem}_{s}:\n    from: bronze.{stem}_{s}\n    keys: [id]\n"
        "    columns: {id: bigint, name: string}\n"
        for stem, *_ in SOURCES
    )
    return f"name: src_{s}\nbronze:\n{bronze}silver:\n{silver}"


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, spark: SparkSession) -> Sources:
    root = tmp_path_factory.mktemp("sources")
    # JSON lines, found by a glob, with a corrupt second record.
    raw = root / "jl" / "2026" / "11"
    raw.mkdir(parents=True)
    (raw / "a.json").write_text(
        '{"id": 1, "name": "x"}\n{"id": 2, "name": "y"\n{"id": 3, "name": "z"}\n'
    )
    # Multi-line JSON.
    (root / "ml").mkdir()
    (root / "ml" / "a.json").write_text(
        json.dumps([{"id": 1, "name": "x"}, {"id": 2, "name": "y"}], indent=2)
    )
    # Parquet and Avro written by Spark: _SUCCESS and .crc files lie beside the data.
    df = spark.createDataFrame([(1, "x"), (2, "y"), (2, "y2")], "id BIGINT, name STRING")
    df.coalesce(1).write.parquet(str(root / "p"))
    df.coalesce(1).write.format("avro").save(str(root / "a"))
    # CSV read with a declared bronze schema; one value does not fit it.
    (root / "c").mkdir()
    (root / "c" / "a.csv").write_text("1|x\n2|y\nbad|z\n")
    # Text.
    (root / "t").mkdir()
    (root / "t" / "log.txt").write_text("hello\nworld\n")

    s = uuid.uuid4().hex[:6]
    loaded = load_pipeline(make_project(root, pipeline_text(s)))
    result = execute(build_plan(loaded), spark, loaded.project_root)
    assert result.ok, result.error
    return Sources(s, result)


def test_json_lines_with_a_corrupt_record(spark: SparkSession, ran: Sources) -> None:
    step = ran.result.step(f"silver.jl_{ran.s}")
    assert (step.rows_read, step.rows_written, step.rows_quarantined) == (3, 2, 1)
    q = spark.table(f"silver.jl_{ran.s}__quarantine").first()
    assert (
        q is not None
        and q["reason"] == "malformed_record"
        and q["record"] == '{"id": 2, "name": "y"'
    )


def test_multiline_json(spark: SparkSession, ran: Sources) -> None:
    assert sorted(r["id"] for r in spark.table(f"silver.ml_{ran.s}").collect()) == [1, 2]


def test_parquet_and_avro(ran: Sources) -> None:
    for fmt, stem in (("parquet", "pq"), ("avro", "av")):
        step = ran.result.step(f"silver.{stem}_{ran.s}")
        assert (step.rows_read, step.rows_written, step.rows_deduplicated) == (3, 2, 1), fmt
        # _SUCCESS and .crc files beside the data are not ingested.
        assert ran.result.step(f"bronze.{stem}_{ran.s}").files == 1, fmt


def test_text_and_declared_schema(spark: SparkSession, ran: Sources) -> None:
    assert dict(spark.table(f"bronze.cs_{ran.s}").dtypes)["id"] == "bigint"
    step = ran.result.step(f"silver.cs_{ran.s}")
    # A value that does not fit the declared bronze schema makes the line malformed.
    assert (step.rows_written, step.rows_quarantined) == (2, 1)
    log = ran.result.step(f"bronze.log_{ran.s}")
    assert ran.result.ok and log.rows_written == 2
    assert sorted(r["value"] for r in spark.table(f"bronze.log_{ran.s}").collect()) == [
        "hello",
        "world",
    ]
