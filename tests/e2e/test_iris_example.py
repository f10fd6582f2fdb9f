"""The iris example end to end, each command as a user runs it: generate (its own
process) -> ``lakeforge run`` -> ``lakeforge publish`` (the CLI's entry point) ->
``jobs/iris/train.py`` (its ``main``), these three in-process on the shared test session
(see tests/e2e/conftest.py). What the data must become comes from the generator's own
truth."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import mlflow  # the dev extra installs lakeforge[mlflow]: no skipping here
import pytest

from tests.e2e.conftest import (
    assert_tables_new,
    environ_restored,
    new_example_project,
    pipeline_tables,
    runtime_conf_restored,
)
from tests.helpers import REPO, load_script

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.e2e


def generator() -> ModuleType:
    return load_script(REPO / "jobs" / "iris" / "generate_data.py", "iris_generate_data")


def train_in_process(root: Path, spark: SparkSession, *argv: str) -> None:
    """``python jobs/iris/train.py ARGV`` from ``root``, in this process.

    The script's session joins the shared one; what it leaves in process-wide state is put
    back: environment variables (MLflow's among them), runtime SQL settings, and MLflow's
    tracking URI and active experiment (later tests start runs of their own).
    """
    script = load_script(REPO / "jobs" / "iris" / "train.py", "iris_train")
    try:
        with contextlib.chdir(root), environ_restored(), runtime_conf_restored(spark):
            script.main(list(argv))
    finally:
        mlflow.set_tracking_uri(None)
        # No public call forgets the experiment set_experiment made active.
        mlflow.tracking.fluent._active_experiment_id = None
    assert mlflow.active_run() is None


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory, spark: SparkSession) -> dict[str, Any]:
    """Every step once; each test checks one part of what came out."""
    project = new_example_project(tmp_path_factory.mktemp("iris-project"), spark)
    pipeline = project.root / "jobs" / "iris" / "pipeline.yml"
    assert_tables_new(spark, [*pipeline_tables(pipeline), "training.iris_species"])
    project.run(sys.executable, "jobs/iris/generate_data.py", "--out", "data/raw/iris")
    project.lakeforge("run", "jobs/iris/pipeline.yml", "--json-result", "run.json")
    quarantine = project.sql_json(
        "SELECT reason, get_json_object(record, '$.flower_id') AS flower_id "
        "FROM silver.measurements__quarantine"
    )
    published = project.lakeforge("publish", "jobs/iris/training/iris_species.yml")
    uri = (project.root / "mlruns").as_uri()
    train_in_process(project.root, spark, "--tracking-uri", uri, "--json-result", "train.json")
    return {
        "project": project,
        "run": json.loads((project.root / "run.json").read_text()),
        "quarantine": quarantine,
        "set_id": published.stdout.strip().splitlines()[-1],
        "train": json.loads((project.root / "train.json").read_text()),
        "tracking_uri": uri,
    }


def test_rows_accounting_and_bad_rows_quarantined(iris: dict[str, Any], tmp_path: Path) -> None:
    truth = generator().generate(tmp_path)
    steps = {s["table"]: s for s in iris["run"]["steps"]}
    assert iris["run"]["status"] == "succeeded"
    assert steps["bronze.measurements"]["rows_written"] == truth.rows
    silver = steps["silver.measurements"]
    quarantined = sum(truth.quarantined.values())
    assert (silver["rows_read"], silver["rows_quarantined"], silver["rows_deduplicated"]) == (
        truth.rows,
        quarantined,
        truth.duplicates,
    )
    assert silver["rows_written"] == truth.flowers
    assert silver["rows_read"] == (
        silver["rows_written"]
        + silver["rows_quarantined"]
        + silver["rows_dropped"]
        + silver["rows_deduplicated"]
    )
    assert steps["gold.flower_features"]["rows_written"] == truth.flowers
    reasons = sorted(r["reason"] for r in iris["quarantine"])
    assert reasons == sorted(generator().REASONS.values())
    # Only the injected rows (ids beyond the 150 real flowers, or none) were set aside.
    assert all(r["flower_id"] is None or int(r["flower_id"]) > 900 for r in iris["quarantine"])


def test_training_set_published_with_three_splits(iris: dict[str, Any]) -> None:
    set_id = iris["set_id"]
    assert set_id == "iris_species-v0"
    manifest_file = iris["project"].root / "training_sets" / "iris_species" / f"{set_id}.json"
    manifest = json.loads(manifest_file.read_text())
    assert list(manifest["splits"]) == ["train", "validation", "test"]
    rows = {s: v["rows"] for s, v in manifest["splits"].items()}
    assert sum(rows.values()) == 150 and all(n > 0 for n in rows.values())
    assert {i["table"]: i["version"] for i in manifest["inputs"]} == {
        "silver.measurements": 0,
        "gold.flower_features": 0,
    }
    # Every label found its flower's features (same measurement time, lag 0).
    assert all(
        s["point_in_time"]["features[0]"]["match_rate"] == 1.0 for s in manifest["splits"].values()
    )
    assert iris["train"]["rows"] == rows


def test_train_run_logged_to_mlflow(iris: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 and a file: store
    summary = iris["train"]
    client = mlflow.MlflowClient(tracking_uri=iris["tracking_uri"])
    run = client.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["lakeforge.training_set.id"] == iris["set_id"]
    assert tags["lakeforge.input.labels"] == "silver.measurements@0"
    assert tags["lakeforge.input.features.0"] == "gold.flower_features@0"
    assert run.data.metrics["test_accuracy"] > 0.8  # iris is easy
    assert run.data.metrics["validation_accuracy"] > 0.8
    contexts = {
        t.value: d.dataset.digest
        for d in run.inputs.dataset_inputs
        for t in d.tags
        if t.key == "mlflow.data.context"
    }
    manifest = json.loads(
        (
            iris["project"].root / "training_sets" / "iris_species" / f"{iris['set_id']}.json"
        ).read_text()
    )
    assert contexts == {s: v["checksum"] for s, v in manifest["splits"].items()}


def _plain(value: Any) -> Any:
    """A value as Spark's collect and the Arrow readers can both be compared in: rows and
    structs as dicts, timestamps as naive local times (what PySpark's collect gives)."""
    from datetime import datetime

    from pyspark.sql import Row

    if isinstance(value, Row):
        return {k: _plain(v) for k, v in value.asDict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone().replace(tzinfo=None)
    return value


def test_every_table_reads_the_same_without_spark(
    iris: dict[str, Any], spark: SparkSession
) -> None:
    """delta-rs and Polars, readers with no JVM, see every table the example wrote
    (bronze, silver, its quarantine, gold, the training set, the system tables) with
    Spark's rows and values."""
    import polars as pl
    from deltalake import DeltaTable

    from lakeforge.lineage.system_tables import DDL

    project = iris["project"]
    tables = pipeline_tables(project.root / "jobs" / "iris" / "pipeline.yml")
    tables += ["silver.measurements__quarantine", "training.iris_species", *DDL]
    assert len(tables) == 11  # 3 steps, a quarantine, a training set, 6 system tables
    nonempty = 0
    for table in tables:
        location = spark.sql(f"DESCRIBE DETAIL {table}").first()["location"]  # type: ignore[index]
        path = location.removeprefix("file:")
        df = spark.table(table)
        expected = sorted(repr(_plain(list(r))) for r in df.collect())
        nonempty += bool(expected)
        arrow = DeltaTable(path).to_pyarrow_table()
        assert arrow.column_names == df.columns, table
        got_rs = sorted(repr(_plain(list(r.values()))) for r in arrow.to_pylist())
        assert got_rs == expected, f"delta-rs reads {table} differently"
        frame = pl.read_delta(path)
        got_pl = sorted(repr(_plain(list(r))) for r in frame.iter_rows())
        assert got_pl == expected, f"Polars reads {table} differently"
    assert nonempty >= len(tables) - 2  # rejected_files (and maybe one more) may be empty
