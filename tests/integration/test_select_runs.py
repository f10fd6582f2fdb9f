"""Orchestrated runs: one pipeline run as several ``lakeforge run --select`` tasks sharing a
run id (what an Airflow or Databricks task per step does), on the shared session."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from tests.e2e.conftest import Project
from tests.helpers import deliver_tiny, new_tiny_project

PIPELINE = "jobs/tiny/pipeline.yml"


def test_tasks_of_one_run_write_their_steps_and_share_the_run_id(
    spark: SparkSession, tmp_path: Path
) -> None:
    sfx = f"_{uuid.uuid4().hex[:8]}"
    rid = f"orchestrated{sfx}"
    project = Project(new_tiny_project(tmp_path / "p", sfx), spark)
    deliver_tiny(project.root, 1)

    # Task 1: silver.orders and what it needs.
    project.lakeforge(
        "run", PIPELINE, "--select", f"+silver.orders{sfx}", "--run-id", rid,
        "--json-result", "task1.json",
    )  # fmt: skip
    task1 = json.loads((project.root / "task1.json").read_text())
    assert [s["table"] for s in task1["steps"]] == [f"bronze.orders{sfx}", f"silver.orders{sfx}"]
    assert not spark.catalog.tableExists(f"silver.customers{sfx}")
    assert not spark.catalog.tableExists(f"gold.customer_value{sfx}")

    # Task 2: the rest, reading bronze and silver as task 1 left them.
    project.lakeforge(
        "run", PIPELINE, "-s", f"silver.customers{sfx}", "-s", "gold", "--run-id", rid
    )
    gold = spark.table(f"gold.customer_value{sfx}")
    expected = spark.sql(
        f"SELECT customer_id, COUNT(*) AS orders, SUM(amount) AS spend, "
        f"MAX(updated_at) AS last_ts FROM silver.orders{sfx} GROUP BY customer_id"
    )
    assertDataFrameEqual(gold, expected)
    assert spark.table(f"silver.customers{sfx}").count() > 0

    # One run id ties both tasks' writes together; bronze was ingested once.
    written = {
        r["table_name"]
        for r in spark.sql(
            f"SELECT table_name FROM lakeforge.table_versions WHERE run_id = '{rid}' "
            "AND role = 'write'"
        ).collect()
    }
    assert {f"bronze.orders{sfx}", f"silver.orders{sfx}", f"silver.customers{sfx}",
            f"gold.customer_value{sfx}"} <= written  # fmt: skip
    assert spark.table(f"bronze.orders{sfx}").count() == 5
    (status,) = spark.sql(f"SELECT status FROM lakeforge.runs WHERE run_id = '{rid}'").collect()
    assert status["status"] == "succeeded"
