"""Expectations in a conform step, on the shared session: the four actions, one pass,
results in ``lakeforge.quality_results`` and an HTML report, environments, and an
expectation that raises."""

from __future__ import annotations

import json
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyspark.sql import Row, SparkSession

from lakeforge.errors import Code
from lakeforge.pipeline.executor import execute
from lakeforge.plan.builder import build_plan
from lakeforge.plan.load import load_pipeline
from lakeforge.results import RunResult
from tests.helpers import make_project

pytestmark = pytest.mark.spark

# 10 orders; order 3 has a negative amount, 4 an unknown status, 5 a malformed email,
# 6 no email, 7 is a cast failure (amount "abc"), 8 and 9 share email c@x.org.
ORDERS = """\
order_id,amount,status,email,placed,shipped
1,10.00,new,a@x.org,2026-11-01,2026-11-02
2,20.00,shipped,b@x.org,2026-11-01,2026-11-03
3,-5.00,new,c1@x.org,2026-11-01,2026-11-02
4,15.00,lost,d@x.org,2026-11-01,2026-11-02
5,12.00,new,not-an-email,2026-11-01,2026-11-02
6,30.00,new,,2026-11-01,2026-11-02
7,abc,new,e@x.org,2026-11-01,2026-11-02
8,40.00,new,c@x.org,2026-11-01,2026-11-02
9,50.00,shipped,c@x.org,2026-11-02,2026-11-01
10,60.00,new,f@x.org,2026-11-02,2026-11-03
"""

PIPELINE = """\
name: q_{s}
bronze:
  o_{s}: {source: {format: csv, path: raw/o}}
silver:
  o_{s}:
    from: bronze.o_{s}
    keys: [order_id]
    columns:
      order_id: bigint
      amount: decimal(10,2)
      status: string
      email: string
      placed: date
      shipped: date
    expectations:
{expectations}
"""


class Project:
    def __init__(self, root: Path, expectations: str) -> None:
        self.s = uuid.uuid4().hex[:6]
        body = PIPELINE.replace(
            "{expectations}", textwrap.indent(textwrap.dedent(expectations), " " * 6)
        )
        self.root = root
        self.path = make_project(root, body.replace("{s}", self.s))
        raw = root / "raw" / "o" / "orders.csv"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(ORDERS)
        self.table = f"silver.o_{self.s}"

    def run(self, spark: SparkSession, data_env: str | None = None) -> RunResult:
        loaded = load_pipeline(self.path)
        return execute(build_plan(loaded), spark, loaded.project_root, data_env=data_env)

    def results(
        self, spark: SparkSession, run_id: str, table: str | None = None
    ) -> dict[str, dict[str, object]]:
        rows = spark.sql(
            f"SELECT * FROM lakeforge.quality_results WHERE run_id = '{run_id}' "
            f"AND table_name = '{table or self.table}'"
        ).collect()
        return {r["expectation"]: r.asDict() for r in rows}


ALL_ACTIONS = """\
- expect_column_values_to_be_between: {column: amount, min_value: 0}
  action: quarantine
  name: amount_not_negative
- expect_column_values_to_be_in_set: {column: status, value_set: [new, shipped]}
  action: drop
  name: known_status
- expect_column_values_to_match_regex: {column: email, regex: '^[^@]+@[^@]+$'}
  action: warn
  name: email_shape
- expect_column_values_to_not_be_null: {column: email, mostly: 0.5}
  name: email_present
- expect_column_pair_values_a_to_be_greater_than_b: {column_A: shipped, column_B: placed}
  action: warn
  name: ships_after_placing
- expect_table_row_count_to_be_between: {min_value: 1, max_value: 100}
  action: fail
- expect_column_values_to_be_unique: {column: email}
  name: email_unique
- expect_column_mean_to_be_between: {column: amount, min_value: 0, max_value: 1000}
"""


@dataclass(frozen=True)
class AllActions:
    """ALL_ACTIONS run once on the 10 orders (a module fixture): what the run left in its
    tables is read right after it, so a later run on the same project (the test of an
    existing table's rebuild) does not change what the first test sees."""

    p: Project
    first: RunResult
    landed: list[Row]
    quarantine: list[Row]


@pytest.fixture(scope="module")
def all_actions(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> AllActions:
    p = Project(tmp_path_factory.mktemp("grown"), ALL_ACTIONS)
    first = p.run(spark)
    landed = spark.table(p.table).collect() if first.ok else []
    quarantine = spark.table(f"{p.table}__quarantine").collect() if first.ok else []
    return AllActions(p, first, landed, quarantine)


def test_actions_warn_drop_quarantine_and_accounting(
    spark: SparkSession, all_actions: AllActions
) -> None:
    p, result = all_actions.p, all_actions.first
    assert result.ok, result.error
    step = result.step(p.table)
    # 10 in: 7 (cast) + 3 (negative) quarantined, 4 (status lost) dropped, 7 landed.
    assert (step.rows_read, step.rows_quarantined, step.rows_dropped) == (10, 2, 1)
    assert step.rows_written == 7 and step.balanced
    landed = {r["order_id"] for r in all_actions.landed}
    assert landed == {1, 2, 5, 6, 8, 9, 10}
    q = all_actions.quarantine
    reasons = {json.loads(r["record"])["order_id"]: r["reasons"] for r in q}
    # Nothing is lost: the dropped row is set aside too, under its own kind of reason.
    assert set(reasons) == {"3", "4", "7"}
    assert reasons["3"] == ["expectation:amount_not_negative"]
    assert reasons["4"] == ["drop:known_status"]
    assert reasons["7"][0].startswith("cast_failed:amount")

    res = p.results(spark, result.run_id)
    assert set(res) == {
        "amount_not_negative",
        "known_status",
        "email_shape",
        "email_present",
        "ships_after_placing",
        "table_row_count_to_be_between",
        "email_unique",
        "column_mean_to_be_between:amount",
    }
    # Row-level: evaluated on the 9 rows that passed their casts (all written: landed or
    # set aside; no key repeats here, so no row was superseded).
    assert res["known_status"]["element_count"] == 9
    assert (
        res["amount_not_negative"]["unexpected_count"],
        res["amount_not_negative"]["success"],
    ) == (1, False)
    assert res["amount_not_negative"]["sample"] == ["-5.00"]
    assert res["known_status"]["unexpected_count"] == 1 and res["known_status"]["sample"] == [
        "lost"
    ]
    assert res["email_shape"]["unexpected_count"] == 1  # the null email is ignored
    assert res["email_shape"]["sample"] == ["not-an-email"]
    assert res["email_present"]["success"] is True  # 1 null of 9, mostly 0.5
    assert res["ships_after_placing"]["unexpected_count"] == 1
    # Table-level: on the 7 rows written.
    assert res["table_row_count_to_be_between"]["observed_value"] == "7"
    assert res["email_unique"]["success"] is False
    assert res["email_unique"]["unexpected_count"] == 2
    assert all(r["table_version"] == step.version for r in res.values())

    # The report: Great Expectations' result format and pages a person can open.
    assert step.quality_report is not None
    page = Path(step.quality_report)
    text = page.read_text()  # Great Expectations' Data Docs page, with the samples
    assert "Data documentation compiled by Great Expectations" in text
    assert "-5.00" in text and "not-an-email" in text
    index = (page.parent / "index.html").read_text()  # ours: names and actions
    assert "amount_not_negative" in index and "quarantine" in index
    suite = json.loads(page.with_suffix(".json").read_text())
    assert suite["statistics"]["evaluated_expectations"] == 8
    assert suite["statistics"]["unsuccessful_expectations"] == 5


FIVE_ROW_LEVEL = """\
- expect_column_values_to_be_between: {column: amount, min_value: 0}
  action: quarantine
- expect_column_values_to_be_in_set: {column: status, value_set: [new, shipped]}
  action: drop
- expect_column_values_to_match_regex: {column: email, regex: '^[^@]+@[^@]+$'}
- expect_column_values_to_not_be_null: {column: email, mostly: 0.5}
- expect_column_pair_values_a_to_be_greater_than_b: {column_A: shipped, column_B: placed}
"""


def _jobs(
    spark: SparkSession, p: Project, tag: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[RunResult, int]:
    """Run ``p``; count the Spark jobs of its conform step alone."""
    from lakeforge.steps import conform

    sc = spark.sparkContext
    group = f"jobs-{p.s}-{tag}"
    real_run, real_record = conform.run_conform, conform.Quality.record

    def run(*args: object) -> None:
        sc.setJobGroup(group, "conform step")
        try:
            real_run(*args)  # type: ignore[arg-type]
        finally:
            sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]

    def record(self: conform.Quality, *args: object) -> None:
        # Appending to the shared lakeforge.quality_results may checkpoint its log (every
        # tenth commit): a cost of the session's history, not of these expectations.
        sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
        try:
            real_record(self, *args)  # type: ignore[arg-type]
        finally:
            sc.setJobGroup(group, "conform step")

    with monkeypatch.context() as m:
        m.setattr(conform, "run_conform", run)
        m.setattr(conform.Quality, "record", record)
        result = p.run(spark)
    return result, len(sc.statusTracker().getJobIdsForGroup(group))


def test_row_expectations_cost_no_job_of_their_own(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five row-level expectations (quarantine, drop, warn) cost the same Spark jobs as
    one warn: the writes carry them and one aggregation over what was written counts them
    all. A ``fail`` one needs its check before the commit: one job for all of them."""
    one = Project(tmp_path / "one", "- expect_column_values_to_not_be_null: {column: email}\n")
    five = Project(tmp_path / "five", FIVE_ROW_LEVEL)
    r1, jobs_one = _jobs(spark, one, "one", monkeypatch)
    r5, jobs_five = _jobs(spark, five, "five", monkeypatch)
    assert r1.ok and r5.ok, (r1.error, r5.error)
    assert r5.step(five.table).rows_dropped == 1 and r5.step(five.table).rows_quarantined == 2
    assert jobs_five == jobs_one, (jobs_one, jobs_five)

    from lakeforge.quality.evaluate import evaluate_rows
    from lakeforge.steps.conform import cast_name, flag_rows

    step = next(s for s in build_plan(load_pipeline(five.path)).steps if s.table == five.table)
    flagged = flag_rows(spark.table(f"bronze.o_{five.s}"), step)  # type: ignore[arg-type]
    rows = [e for e in step.expectations if e.level == "row"]  # type: ignore[union-attr]
    sc = spark.sparkContext

    def jobs(exps: list[object], tag: str) -> int:
        group = f"one-pass-{five.s}-{tag}"
        sc.setJobGroup(group, "count jobs")
        try:
            outcome = evaluate_rows(flagged, exps, list(step.spec.columns), cast_name)  # type: ignore[arg-type,union-attr]
        finally:
            sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
        assert len(outcome.results) == len(exps)
        return len(sc.statusTracker().getJobIdsForGroup(group))

    single, all_five = jobs(rows[:1], "one"), jobs(rows, "five")
    # The check before a commit: five cost the same jobs as one, a single aggregation
    # (plus, at most, Delta reading its log for the input table).
    assert all_five == single and all_five <= 3


def test_fail_keeps_previous_version_and_records_reason(
    spark: SparkSession, tmp_path: Path
) -> None:
    p = Project(
        tmp_path,
        """\
        - expect_column_values_to_be_between: {column: amount, min_value: 0}
          action: fail
          name: amount_not_negative
        """,
    )
    result = p.run(spark)
    assert not result.ok
    assert result.error_code == Code.EXPECTATION_FAILED
    assert "amount_not_negative" in (result.error or "") and "-5.00" in (result.error or "")
    assert not spark.catalog.tableExists(p.table)  # nothing committed
    res = p.results(spark, result.run_id)
    assert res["amount_not_negative"]["success"] is False
    assert res["amount_not_negative"]["table_version"] is None
    run = spark.sql(f"SELECT * FROM lakeforge.runs WHERE run_id = '{result.run_id}'").first()
    assert run is not None and run["status"] == "failed" and run["error_code"] == "LF-RUN-007"


RAISING = """\
- expect_column_values_to_match_regex: {column: email, regex: '([a-z'}
  action: warn
  name: broken_regex
- expect_column_values_to_be_in_set: {column: status, value_set: [new, shipped]}
  action: quarantine
"""

RAISING_QUARANTINE = """\
- expect_column_values_to_match_regex: {column: status, regex: '(['}
  action: quarantine
  name: broken_quarantine
"""


@dataclass(frozen=True)
class Raising:
    """One run of one pipeline (a module fixture) with two silver tables of the same
    bronze: ``silver.o_<s>`` with RAISING, ``silver.oq_<s>`` with RAISING_QUARANTINE. Each
    table is evaluated, written and recorded by its own step."""

    p: Project
    quarantine_table: str
    result: RunResult


@pytest.fixture(scope="module")
def raising(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Raising:
    p = Project(tmp_path_factory.mktemp("raising"), RAISING)
    block = PIPELINE[PIPELINE.index("  o_{s}:\n    from:") :].replace("  o_{s}:", "  oq_{s}:", 1)
    block = block.replace(
        "{expectations}", textwrap.indent(textwrap.dedent(RAISING_QUARANTINE), " " * 6)
    )
    p.path.write_text(p.path.read_text() + block.replace("{s}", p.s))
    return Raising(p, f"silver.oq_{p.s}", p.run(spark))


def test_raising_expectation_is_recorded_and_follows_its_action(
    spark: SparkSession, raising: Raising
) -> None:
    p, result = raising.p, raising.result
    assert result.ok, result.error
    res = p.results(spark, result.run_id)
    assert res["broken_regex"]["success"] is False
    assert "([a-z" in str(res["broken_regex"]["exception"]) or res["broken_regex"]["exception"]
    assert res["column_values_to_be_in_set:status"]["unexpected_count"] == 1


def test_environment_bound_expectations(spark: SparkSession, tmp_path: Path) -> None:
    exps = """\
    - expect_column_values_to_not_be_null: {column: email}
      environments: [training]
      action: fail
      name: label_present
    - expect_column_values_to_be_null: {column: email}
      environments: [serving]
      name: label_absent
    """
    p = Project(tmp_path, exps)
    serving = p.run(spark, data_env="serving")
    assert serving.ok, serving.error
    assert set(p.results(spark, serving.run_id)) == {"label_absent"}
    training = p.run(spark, data_env="training")  # same input: skipped, nothing new
    assert training.ok
    q = Project(tmp_path / "second", exps)
    failed = q.run(spark, data_env="training")
    assert failed.error_code == Code.EXPECTATION_FAILED and "label_present" in str(failed.error)


def test_raising_quarantine_expectation_sets_every_evaluated_row_aside(
    spark: SparkSession, raising: Raising
) -> None:
    """A quarantine expectation that raises fails the first write that evaluates it; it is
    found, recorded with its error, and then holds for no row: nothing unchecked lands."""
    p, result, table = raising.p, raising.result, raising.quarantine_table
    assert result.ok, result.error
    step = result.step(table)
    assert (step.rows_read, step.rows_written, step.rows_quarantined) == (10, 0, 10)
    q = spark.table(f"{table}__quarantine").collect()
    assert sum(1 for r in q if r["reasons"] == ["expectation:broken_quarantine"]) == 9
    res = p.results(spark, result.run_id, table)["broken_quarantine"]
    assert res["success"] is False and res["exception"]


MORE_ORDERS = """\
order_id,amount,status,email,placed,shipped
11,70.00,new,g@x.org,2026-11-03,2026-11-04
12,80.00,lost,h@x.org,2026-11-03,2026-11-04
13,-1.00,new,bad-email,2026-11-03,2026-11-02
"""


def _report(step: object) -> dict[str, object]:
    return json.loads(Path(step.quality_report).with_suffix(".json").read_text())  # type: ignore[attr-defined]


def _outcomes(spark: SparkSession, p: Project, run_id: str) -> dict[str, tuple[object, ...]]:
    keys = ("success", "element_count", "unexpected_count", "unexpected_percent", "sample")
    return {
        name: (*(r[k] for k in keys), str(r["observed_value"]))
        for name, r in p.results(spark, run_id).items()
    }


def test_an_existing_table_is_measured_by_its_own_write(
    spark: SparkSession, tmp_path: Path, all_actions: AllActions
) -> None:
    """Rebuilding an existing table, the write itself counts the expectations (a Spark
    Observation): the same results, to the sample, as the aggregation a new table gets."""
    # The shared ALL_ACTIONS project: its first run made the table new.
    grown, first = all_actions.p, all_actions.first
    assert first.ok, first.error
    assert _report(first.step(grown.table))["meta"]["measured_by"] == "aggregation"  # type: ignore[index]
    (grown.root / "raw" / "o" / "more.csv").write_text(MORE_ORDERS)
    second = grown.run(spark)  # a new bronze version: the table is rebuilt in place
    assert second.ok, second.error
    step = second.step(grown.table)
    assert _report(step)["meta"]["measured_by"] == "observation"  # type: ignore[index]
    assert (step.rows_read, step.rows_written, step.rows_quarantined, step.rows_dropped) == (
        13,
        8,
        3,
        2,
    )

    fresh = Project(tmp_path / "fresh", ALL_ACTIONS)  # the same rows, into a new table
    (fresh.root / "raw" / "o" / "more.csv").write_text(MORE_ORDERS)
    once = fresh.run(spark)
    assert once.ok, once.error
    assert _report(once.step(fresh.table))["meta"]["measured_by"] == "aggregation"  # type: ignore[index]
    observed, aggregated = (
        _outcomes(spark, grown, second.run_id),
        _outcomes(spark, fresh, once.run_id),
    )
    assert observed == aggregated
    assert observed["known_status"][2] == 2 and observed["email_shape"][2] == 2
