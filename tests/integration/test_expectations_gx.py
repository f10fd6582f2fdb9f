"""lakeforge's one-pass evaluation against Great Expectations' own Spark engine, and
``suggest`` producing a suite that Great Expectations loads and lakeforge runs."""

from __future__ import annotations

import json
import textwrap
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.quality.evaluate import evaluate_rows, evaluate_table
from lakeforge.quality.spec import Expectation
from tests.helpers import make_project

pytestmark = pytest.mark.spark

ROWS = [
    (1, "new", Decimal("10.50"), date(2026, 11, 1), date(2026, 11, 2), "a@x.org"),
    (2, "shipped", Decimal("-3.00"), date(2026, 11, 1), date(2026, 11, 1), "b@x.org"),
    (3, "lost", Decimal("99.99"), date(2026, 11, 2), None, None),
    (4, None, Decimal("0.00"), date(2026, 11, 3), date(2026, 11, 2), "nope"),
    (5, "new", None, date(2026, 11, 3), date(2026, 11, 5), "a@x.org"),
    (6, "new", Decimal("12.00"), None, None, "c@x.org"),
    (7, "returned", Decimal("1000.00"), date(2026, 11, 4), date(2026, 11, 6), "d@x.org"),
]
SCHEMA = "id bigint, status string, amount decimal(10,2), placed date, shipped date, email string"

ROW_LEVEL: list[tuple[str, dict[str, Any]]] = [
    ("expect_column_values_to_not_be_null", {"column": "status"}),
    ("expect_column_values_to_be_null", {"column": "shipped"}),
    ("expect_column_values_to_be_between", {"column": "amount", "min_value": 0, "max_value": 100}),
    (
        "expect_column_values_to_be_between",
        {"column": "amount", "min_value": 0, "strict_min": True, "mostly": 0.5},
    ),
    ("expect_column_values_to_be_in_set", {"column": "status", "value_set": ["new", "shipped"]}),
    ("expect_column_values_to_not_be_in_set", {"column": "status", "value_set": ["lost"]}),
    ("expect_column_values_to_match_regex", {"column": "email", "regex": "^[^@]+@[^@]+$"}),
    ("expect_column_values_to_not_match_regex", {"column": "email", "regex": "x\\.org$"}),
    (
        "expect_column_value_lengths_to_be_between",
        {"column": "status", "min_value": 4, "max_value": 7},
    ),
    ("expect_column_value_lengths_to_equal", {"column": "status", "value": 3}),
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        {
            "column_A": "shipped",
            "column_B": "placed",
            "or_equal": True,
            "ignore_row_if": "either_value_is_missing",
        },
    ),
]
TABLE_LEVEL: list[tuple[str, dict[str, Any]]] = [
    ("expect_table_row_count_to_be_between", {"min_value": 1, "max_value": 5}),
    ("expect_table_row_count_to_equal", {"value": 7}),
    ("expect_column_values_to_be_unique", {"column": "email"}),
    ("expect_compound_columns_to_be_unique", {"column_list": ["status", "placed"]}),
    ("expect_column_mean_to_be_between", {"column": "amount", "min_value": 0, "max_value": 100}),
    ("expect_column_max_to_be_between", {"column": "amount", "max_value": 1000}),
    ("expect_column_min_to_be_between", {"column": "amount", "min_value": 0}),
    ("expect_column_sum_to_be_between", {"column": "amount", "min_value": 1000, "max_value": 2000}),
    ("expect_column_stdev_to_be_between", {"column": "amount", "min_value": 1, "max_value": 10}),
    (
        "expect_column_distinct_values_to_be_in_set",
        {"column": "status", "value_set": ["new", "shipped", "lost"]},
    ),
    (
        "expect_column_distinct_values_to_contain_set",
        {"column": "status", "value_set": ["new", "lost"]},
    ),
    (
        "expect_column_distinct_values_to_equal_set",
        {"column": "status", "value_set": ["new", "shipped", "lost", "returned"]},
    ),
    (
        "expect_column_unique_value_count_to_be_between",
        {"column": "status", "min_value": 2, "max_value": 3},
    ),
    (
        "expect_column_proportion_of_unique_values_to_be_between",
        {"column": "email", "min_value": 0.5},
    ),
    ("expect_column_to_exist", {"column": "email"}),
    ("expect_table_columns_to_match_set", {"column_set": ["id", "status"], "exact_match": False}),
]


def _exp(i: int, type_: str, kw: dict[str, Any]) -> Expectation:
    return Expectation(name=f"e{i}", type=type_, kwargs_json=json.dumps(kw), action="warn")


def _gx_results(df: DataFrame, cases: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_spark(f"s{uuid.uuid4().hex[:6]}", persist=False)
    batch = (
        source.add_dataframe_asset("rows")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": df})
    )
    out = []
    for type_, kw in cases:
        cls = getattr(gxe, "".join(p.capitalize() for p in type_.split("_")))
        out.append(batch.validate(cls(**kw), result_format="SUMMARY"))
    return out


@pytest.fixture(scope="module")
def frame(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(ROWS, SCHEMA)


def test_row_level_agrees_with_great_expectations(frame: DataFrame) -> None:
    exps = [_exp(i, t, kw) for i, (t, kw) in enumerate(ROW_LEVEL)]
    flagged = frame.withColumn("_lf_reasons", F.array().cast("array<string>"))
    ours = evaluate_rows(flagged, exps, [], lambda c: c).results
    theirs = _gx_results(frame, ROW_LEVEL)
    for (type_, kw), mine, gx in zip(ROW_LEVEL, ours, theirs, strict=True):
        label = f"{type_} {kw}"
        assert mine.exception is None, label
        assert mine.success == gx.success, label
        assert mine.unexpected_count == gx.result["unexpected_count"], label
        assert mine.unexpected_percent == pytest.approx(gx.result["unexpected_percent"]), label


def test_table_level_agrees_with_great_expectations(frame: DataFrame) -> None:
    exps = [_exp(i, t, kw) for i, (t, kw) in enumerate(TABLE_LEVEL)]
    ours = evaluate_table(frame, exps, [f.name for f in frame.schema.fields])
    theirs = _gx_results(frame, TABLE_LEVEL)
    for (type_, kw), mine, gx in zip(TABLE_LEVEL, ours, theirs, strict=True):
        label = f"{type_} {kw}"
        assert mine.exception is None, label
        assert mine.success == gx.success, f"{label}: ours {mine.observed_value}, GX {gx.result}"
        if type_ == "expect_column_values_to_be_unique":
            assert mine.unexpected_count == gx.result["unexpected_count"], label
    # The results are not all the same verdict: the comparison has teeth.
    assert {r.success for r in ours} == {True, False}


def test_suggest_writes_a_suite_gx_loads_and_lakeforge_runs(
    spark: SparkSession, tmp_path: Path, frame: DataFrame
) -> None:
    from great_expectations.core import ExpectationSuite

    from lakeforge.pipeline.executor import execute
    from lakeforge.plan.builder import build_plan
    from lakeforge.plan.load import load_pipeline
    from lakeforge.quality.suggest import dumps, profile, suggest_suite

    s = uuid.uuid4().hex[:6]
    raw = tmp_path / "raw" / "o" / "o.csv"
    raw.parent.mkdir(parents=True)
    header = "id,status,amount,placed,shipped,email\n"
    raw.write_text(
        header + "".join(",".join("" if v is None else str(v) for v in r) + "\n" for r in ROWS)
    )
    pipeline = textwrap.dedent(
        f"""\
        name: sg_{s}
        bronze:
          o_{s}: {{source: {{format: csv, path: raw/o}}}}
        silver:
          o_{s}:
            from: bronze.o_{s}
            columns: {{id: bigint, status: string, amount: "decimal(10,2)", placed: date,
                       shipped: date, email: string}}
            expectations: [{{suite: quality/o.json}}]
        """
    )
    path = make_project(tmp_path, pipeline)
    # First: no suite yet -> write the table without expectations to profile it.
    suite_file = path.parent / "quality" / "o.json"
    suite_file.parent.mkdir(parents=True, exist_ok=True)
    suite_file.write_text(json.dumps({"name": "empty", "expectations": []}))
    loaded = load_pipeline(path)
    assert execute(build_plan(loaded), spark, loaded.project_root).ok
    table = f"silver.o_{s}"
    profiles = {p.name: p for p in profile(spark.table(table), max_values=5)}
    assert profiles["status"].values == ("lost", "new", "returned", "shipped")
    assert profiles["amount"].min == -3 and profiles["amount"].max == 1000
    assert profiles["id"].nulls == 0 and profiles["shipped"].nulls == 2
    suite = suggest_suite(table, 1, list(profiles.values()))
    ExpectationSuite(**json.loads(dumps(suite)))  # a valid Great Expectations suite
    types = [e["type"] for e in suite["expectations"]]
    assert "expect_column_values_to_not_be_null" in types
    assert all(e["meta"]["lakeforge"]["action"] == "warn" for e in suite["expectations"])
    suite_file.write_text(dumps(suite))
    # Rebuild with the suggested suite on the same data: every expectation holds.
    raw.with_name("o2.csv").write_text(raw.read_text())
    loaded = load_pipeline(path)
    result = execute(build_plan(loaded), spark, loaded.project_root)
    assert result.ok, result.error
    step = result.step(table)
    assert step.expectations == len(suite["expectations"]) and step.expectations_failed == 0
