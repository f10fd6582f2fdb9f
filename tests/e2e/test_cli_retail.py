"""The flagship job over several daily batches, through the CLI's entry point (in-process,
on the shared test session: see tests/e2e/conftest.py), spark-submit.sh and spark-sql (each
in a new process, with its own JVM); expectations come from the generator's own truth."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Project
from tests.helpers import REPO

sys.path.insert(0, str(REPO / "jobs" / "retail"))
import generate_data

pytestmark = pytest.mark.e2e


def truth(days: range) -> list[generate_data.DayTruth]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return generate_data.generate(Path(tmp), days=max(days), only=set(days))


def batch_duplicates(days: list[generate_data.DayTruth]) -> int:
    """Rows silver.orders must deduplicate in one batch: exact re-sends, plus updates of an
    order that appeared earlier in the same batch (only the latest version lands)."""
    seen: set[int] = set()
    dups = 0
    for t in days:
        dups += t.orders_duplicates + sum(1 for oid in t.orders_updated_ids if oid in seen)
        seen |= set(t.orders_new_ids) | set(t.late_ids) | set(t.orders_updated_ids)
    return dups


def run_json(project: Project, name: str, *extra: str) -> dict[str, Any]:
    out = project.root / name
    proc = project.lakeforge("run", "jobs/retail/pipeline.yml", "--json-result", str(out), *extra)
    assert "succeeded" in proc.stdout and ": ok" in proc.stdout
    return json.loads(out.read_text())


def steps(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["table"]: s for s in result["steps"]}


@pytest.fixture(scope="module")
def runs(retail_project: Project) -> dict[str, dict[str, Any]]:
    first = run_json(retail_project, "run1.json")
    retail_project.run(
        sys.executable,
        "jobs/retail/generate_data.py",
        "--days",
        "5",
        "--only",
        "4,5",
        "--out",
        "data/raw/retail",
    )
    second = run_json(retail_project, "run2.json")
    return {"first": first, "second": second}


def test_first_batch_accounts_for_every_row(runs: dict[str, dict[str, Any]]) -> None:
    days = truth(range(1, 4))
    orders = steps(runs["first"])["silver.orders"]
    rows = sum(t.orders_rows for t in days)
    invalid = sum(t.orders_invalid for t in days)
    dups = batch_duplicates(days)
    assert steps(runs["first"])["bronze.orders"]["rows_written"] == rows
    assert (orders["rows_read"], orders["rows_quarantined"], orders["rows_deduplicated"]) == (
        rows,
        invalid,
        dups,
    )
    assert orders["rows_written"] == rows - invalid - dups
    customers = steps(runs["first"])["silver.customers"]
    assert customers["rows_written"] == sum(t.customers_changes for t in days)
    assert customers["rows_deduplicated"] == sum(t.customers_unchanged for t in days)
    assert all(s["version"] == 0 and s["committed"] for s in runs["first"]["steps"])


def test_second_batch_ingests_only_new_files(runs: dict[str, dict[str, Any]]) -> None:
    days = truth(range(4, 6))
    second = steps(runs["second"])
    assert second["bronze.orders"]["files"] == 2
    assert second["bronze.orders"]["rows_written"] == sum(t.orders_rows for t in days)
    orders = second["silver.orders"]
    assert orders["rows_quarantined"] == sum(t.orders_invalid for t in days)
    assert orders["rows_deduplicated"] == batch_duplicates(days)
    assert all(s["version"] == 1 for s in runs["second"]["steps"])


def test_tables_reflect_merges_history_and_schema_change(
    retail_project: Project, runs: dict[str, Any]
) -> None:
    days = truth(range(1, 6))
    valid_ids = set().union(*(set(t.orders_new_ids) | set(t.late_ids) for t in days))
    got = retail_project.sql_json(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT order_id) AS d, COUNT(channel) AS with_channel FROM silver.orders"
    )[0]
    assert got["n"] == got["d"] == len(valid_ids)
    later = set().union(
        *(set(t.orders_new_ids) | set(t.late_ids) | set(t.orders_updated_ids) for t in days[3:])
    )
    assert got["with_channel"] == len(later)  # the column the feed gained on day 4
    last_update = days[-1].orders_updated_ids[0]
    status = retail_project.sql_json(
        f"SELECT updated_at FROM silver.orders WHERE order_id = {last_update}"
    )
    assert status[0]["updated_at"].startswith("2026-11-05")
    cust = retail_project.sql_json(
        "SELECT COUNT(*) AS n, SUM(CAST(is_current AS INT)) AS cur FROM silver.customers"
    )[0]
    assert cust["n"] == sum(t.customers_changes for t in days)
    assert cust["cur"] == 60 + 3 * 4
    reasons = retail_project.sql_json(
        "SELECT reason, COUNT(*) AS n FROM silver.orders__quarantine GROUP BY 1"
    )
    kinds: dict[str, int] = {}
    for r in reasons:  # "cast_failed:order_ts:timestamp:<value>" -> "cast_failed:order_ts"
        kind = ":".join(r["reason"].split(":")[:2])
        kinds[kind] = kinds.get(kind, 0) + r["n"]
    assert kinds == {
        "cast_failed:amount": 5,
        "cast_failed:order_ts": 5,
        "null_not_allowed:customer_id": 5,
        "malformed_record": 5,
    }


def test_lineage_of_gold_reaches_raw_files(retail_project: Project, runs: dict[str, Any]) -> None:
    out = retail_project.lakeforge("lineage", "gold.daily_revenue@1", "--format", "json").stdout
    tree = json.loads(out[out.index("{") :])
    assert tree["run_id"] == runs["second"]["run_id"]
    ups = {n["table"]: n for n in tree["upstream"]}
    assert set(ups) == {"silver.orders", "silver.order_lines"}
    bronze = ups["silver.orders"]["upstream"][0]
    assert bronze["table"] == "bronze.orders" and bronze["version"] == 1
    assert sorted(Path(f).name for f in bronze["files"]) == [
        f"orders_2026-11-0{d}.csv" for d in range(1, 6)
    ]


def test_spark_submit_rerun_commits_nothing(retail_project: Project, runs: dict[str, Any]) -> None:
    proc = retail_project.run_jvm(
        str(REPO / "spark-submit.sh"),
        "--master",
        "local[2]",
        "--conf",
        "spark.sql.shuffle.partitions=3",
        "run",
        "jobs/retail/pipeline.yml",
        "--json-result",
        "submit.json",
    )
    assert "succeeded" in proc.stdout
    result = json.loads((retail_project.root / "submit.json").read_text())
    assert result["run_id"] not in (runs["first"]["run_id"], runs["second"]["run_id"])
    assert not any(s["committed"] for s in result["steps"])
    assert {s["version"] for s in result["steps"]} == {1}


def test_history_and_time_travel(retail_project: Project, runs: dict[str, Any]) -> None:
    out = retail_project.lakeforge("history", "silver.orders", "--format", "json").stdout
    versions = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(v["version"], v["run_id"]) for v in versions] == [
        (1, runs["second"]["run_id"]),
        (0, runs["first"]["run_id"]),
    ]
    v0 = retail_project.sql_json("SELECT COUNT(*) AS n FROM silver.orders@0")
    assert v0[0]["n"] == steps(runs["first"])["silver.orders"]["rows_written"]


def test_spark_sql_sees_gold_tables(retail_project: Project, runs: dict[str, Any]) -> None:
    """Plain `spark-sql` with the profile's settings reads the registered tables."""
    args = retail_project.lakeforge("submit-args").stdout.splitlines()
    spark_sql = str(Path(sys.executable).parent / "spark-sql")
    proc = retail_project.run_jvm(
        spark_sql, *args, "-e", "SELECT COUNT(*) FROM gold.revenue_by_segment VERSION AS OF 1"
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines[-1].strip() == str(
        steps(runs["second"])["gold.revenue_by_segment"]["rows_written"]
    )


def test_bad_config_fails_before_spark(retail_project: Project) -> None:
    bad = retail_project.root / "jobs" / "retail" / "broken.yml"
    bad.write_text(
        (retail_project.root / "jobs/retail/pipeline.yml")
        .read_text()
        .replace("keys: [order_id]", "keys: [order_id]\n    partition_by: [order_ts]")
        .replace("from: bronze.customers", "from: bronze.custmers")
    )
    # A new process, through the console script: here no JVM at all is the point.
    proc = retail_project.lakeforge_process("run", str(bad), check=False)
    assert proc.returncode == 1
    assert "LF-CFG-002" in proc.stderr and "broken.yml:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "starting Spark" not in proc.stderr


def test_sql_error_is_one_line(retail_project: Project, runs: dict[str, Any]) -> None:
    proc = retail_project.lakeforge("sql", "SELECT * FROM gold.no_such_table", check=False)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error ")]
    assert len(errors) == 1 and "LF-SQL-001" in errors[0]
    assert "Traceback" not in proc.stderr


def test_expectations_quarantine_drop_and_report(
    retail_project: Project, runs: dict[str, Any]
) -> None:
    """order_lines' suite file quarantines fat-fingered quantities and drops QA test
    products; orders' inline expectations all hold; results and a report are kept."""
    for name, days in (("first", truth(range(1, 4))), ("second", truth(range(4, 6)))):
        lines = steps(runs[name])["silver.order_lines"]
        assert lines["rows_quarantined"] == sum(t.lines_invalid + t.lines_implausible for t in days)
        assert lines["rows_dropped"] == sum(t.lines_test_sku for t in days)
        assert lines["rows_read"] == sum(t.lines_rows for t in days)
        assert (lines["expectations"], lines["expectations_failed"]) == (4, 2)
        assert Path(lines["quality_report"]).is_file()
        orders = steps(runs[name])["silver.orders"]
        assert (orders["expectations"], orders["expectations_failed"]) == (5, 0)
    run_id = runs["first"]["run_id"]
    got = {
        r["expectation"]: r
        for r in retail_project.sql_json(
            "SELECT expectation, action, success, unexpected_count, sample, table_version "
            f"FROM lakeforge.quality_results WHERE run_id = '{run_id}' "
            "AND table_name = 'silver.order_lines'"
        )
    }
    assert set(got) == {
        "qty_plausible",
        "no_test_products",
        "price_in_catalogue_range",
        "one_row_per_line",
    }
    assert (got["qty_plausible"]["unexpected_count"], got["qty_plausible"]["sample"]) == (
        3,
        ["250"],
    )
    assert got["no_test_products"]["action"] == "drop"
    assert got["one_row_per_line"]["success"] is True
    assert {r["table_version"] for r in got.values()} == {0}
    reasons = retail_project.sql_json(
        "SELECT reason, COUNT(*) AS n FROM silver.order_lines__quarantine GROUP BY 1"
    )
    assert {r["reason"]: r["n"] for r in reasons}["expectation:qty_plausible"] == 5
    dropped = retail_project.sql_json(
        "SELECT COUNT(*) AS n FROM silver.order_lines WHERE sku LIKE 'TEST-%'"
    )
    assert dropped[0]["n"] == 0
    out = retail_project.lakeforge(
        "quality", "--run", run_id, "--failed", "--format", "json"
    ).stdout
    failed = {json.loads(line)["expectation"] for line in out.splitlines() if line.startswith("{")}
    assert failed == {"qty_plausible", "no_test_products"}  # everything else held
