"""The flagship job through the real CLI and through spark-submit.sh, in new processes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Project
from tests.helpers import REPO

sys.path.insert(0, str(REPO / "jobs" / "retail"))
import generate_data

pytestmark = pytest.mark.e2e

DEFECTS_PER_DAY = 3  # generate_data writes one bad amount, timestamp and customer id a day


@pytest.fixture(scope="module")
def first_run(retail_project: Project) -> dict[str, object]:
    out = retail_project.root / "result.json"
    proc = retail_project.lakeforge("run", "jobs/retail/pipeline.yml", "--json-result", str(out))
    assert "succeeded" in proc.stdout
    assert "rows in" in proc.stdout and ": ok" in proc.stdout
    return json.loads(out.read_text())


def test_run_summary_accounts_for_every_row(first_run: dict[str, object], tmp_path: Path) -> None:
    counts = generate_data.generate(tmp_path)  # same defaults, same seed as the fixture's data
    steps = {s["table"]: s for s in first_run["steps"]}  # type: ignore[attr-defined]
    orders = steps["silver.orders"]
    days = counts["orders"] // 60
    assert orders["rows_read"] == counts["orders"]
    assert orders["rows_quarantined"] == DEFECTS_PER_DAY * days
    assert orders["rows_written"] == counts["orders"] - DEFECTS_PER_DAY * days
    assert steps["silver.customers"]["rows_written"] == counts["customers"]
    assert all(s["status"] == "ok" and s["version"] == 0 for s in steps.values())


def test_new_process_sees_tables_by_name(
    retail_project: Project, first_run: dict[str, object]
) -> None:
    rows = retail_project.sql_json(
        "SELECT SUM(orders) AS n FROM gold.daily_revenue VERSION AS OF 0"
    )
    completed = retail_project.sql_json(
        "SELECT COUNT(*) AS n FROM silver.orders WHERE status = 'completed'"
    )
    assert rows[0]["n"] == completed[0]["n"] > 0
    reasons = retail_project.sql_json(
        "SELECT reason FROM silver.orders__quarantine ORDER BY reason"
    )
    assert {r["reason"].split(":")[0] for r in reasons} == {"cast_failed", "null_not_allowed"}


def test_history_shows_run_id(retail_project: Project, first_run: dict[str, object]) -> None:
    out = retail_project.lakeforge("history", "gold.daily_revenue", "--format", "json").stdout
    versions = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert versions[-1]["version"] == 0
    assert versions[-1]["run_id"] == first_run["run_id"]


def test_spark_submit_runs_the_same_job(
    retail_project: Project, first_run: dict[str, object]
) -> None:
    proc = retail_project.run(
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
    assert result["run_id"] != first_run["run_id"]
    assert {s["table"]: s["version"] for s in result["steps"]}["gold.daily_revenue"] == 1
    # Same data, same gold: version 1 equals version 0 (bronze doubled, silver has no dedup yet,
    # so compare the revenue per order instead of totals).
    v0 = retail_project.sql_json(
        "SELECT order_date, revenue / orders AS avg FROM gold.daily_revenue VERSION AS OF 0 ORDER BY 1"
    )
    v1 = retail_project.sql_json(
        "SELECT order_date, revenue / orders AS avg FROM gold.daily_revenue VERSION AS OF 1 ORDER BY 1"
    )
    assert v0 == v1


def test_bad_config_fails_before_spark(retail_project: Project) -> None:
    bad = retail_project.root / "jobs" / "retail" / "broken.yml"
    bad.write_text(
        (retail_project.root / "jobs/retail/pipeline.yml")
        .read_text()
        .replace("keys: [order_id]", "keys: [order_id]\n    partition_by: [order_ts]")
        .replace("from: bronze.customers", "from: bronze.custmers")
    )
    proc = retail_project.lakeforge("run", str(bad), check=False)
    assert proc.returncode == 1
    assert "LF-CFG-002" in proc.stderr and "broken.yml:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "starting Spark" not in proc.stderr


def test_sql_error_is_one_line(retail_project: Project, first_run: dict[str, object]) -> None:
    proc = retail_project.lakeforge("sql", "SELECT * FROM gold.no_such_table", check=False)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error ")]
    assert len(errors) == 1 and "LF-SQL-001" in errors[0]
    assert "Traceback" not in proc.stderr


def test_spark_sql_sees_gold_tables(retail_project: Project, first_run: dict[str, object]) -> None:
    """Plain `spark-sql` with the profile's settings reads the registered tables."""
    args = retail_project.lakeforge("submit-args").stdout.splitlines()
    spark_sql = str(Path(sys.executable).parent / "spark-sql")
    proc = retail_project.run(
        spark_sql, *args, "-e", "SELECT COUNT(*) FROM gold.revenue_by_segment VERSION AS OF 0"
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    gold = {s["table"]: s for s in first_run["steps"]}["gold.revenue_by_segment"]  # type: ignore[attr-defined]
    assert lines[-1].strip() == str(gold["rows_written"])
