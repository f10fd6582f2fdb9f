"""MLflow logging of a published training set (issue 6 point 8), on a local file tracking
store under tmp_path, read back with MlflowClient: the manifest artifact, one dataset
input per split (digest = our checksum, context = split, source = table and version),
and the tags with the set's id and pinned input versions."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow  # the dev extra installs lakeforge[mlflow]: no skipping here
import pytest
from click.testing import CliRunner
from pyspark.sql import SparkSession

import lakeforge
from lakeforge.cli.main import cli
from lakeforge.errors import Code, RuntimeSetupError
from lakeforge.training.publish import Published, publish
from tests.integration.test_training_publish import Inputs, make_inputs

pytestmark = pytest.mark.spark


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    uri = (tmp_path / "mlruns").as_uri()
    # MLflow 3 refuses the file store unless this is set (a database store needs the
    # full mlflow package; the extra installs mlflow-skinny).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def published(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Inputs, Published]:
    inputs = make_inputs(spark)
    return inputs, publish(spark, inputs.spec(), tmp_path_factory.mktemp("project"))


def test_log_records_manifest_datasets_and_tags(
    published: tuple[Inputs, Published], tracking: str, tmp_path: Path
) -> None:
    inputs, pub = published
    m = pub.manifest
    logged = lakeforge.log_to_mlflow(pub)  # no active run: a run of its own
    client = mlflow.MlflowClient()
    run = client.get_run(logged.run_id)
    assert run.info.status == "FINISHED"

    # The artifact is the manifest, byte for byte as JSON.
    assert logged.artifact_path == f"training_sets/{pub.id}.json"
    local = client.download_artifacts(logged.run_id, logged.artifact_path, str(tmp_path))
    assert json.loads(Path(local).read_text()) == m

    # One dataset input per split: digest = checksum, context = split name.
    inputs_by_context = {}
    for d in run.inputs.dataset_inputs:
        tags = {t.key: t.value for t in d.tags}
        inputs_by_context[tags["mlflow.data.context"]] = d
        assert tags["lakeforge.training_set.id"] == pub.id
    # (the store does not keep the order inputs were logged in)
    assert sorted(inputs_by_context) == sorted(m["splits"]) == ["test", "train", "validation"]
    for split, d in inputs_by_context.items():
        assert d.dataset.name == f"{pub.id}:{split}"
        assert d.dataset.digest == m["splits"][split]["checksum"]
        assert d.dataset.source_type == "delta_table"
        assert json.loads(d.dataset.source) == {
            "delta_table_name": pub.table,
            "delta_table_version": pub.table_version,
        }
        assert json.loads(d.dataset.profile) == {"num_rows": m["splits"][split]["rows"]}

    # Tags: the id and every pinned input version.
    tags = run.data.tags
    assert tags["lakeforge.training_set.id"] == pub.id
    assert tags["lakeforge.training_set.table"] == f"{pub.table}@{pub.table_version}"
    assert tags["lakeforge.training_set.config_hash"] == m["config_hash"]
    assert tags["lakeforge.input.labels"] == f"{inputs.labels}@0"
    assert tags["lakeforge.input.features.0"] == f"{inputs.features}@0"
    found = client.search_runs(
        [run.info.experiment_id], f"tags.`lakeforge.training_set.id` = '{pub.id}'"
    )
    assert [r.info.run_id for r in found] == [logged.run_id]


def test_log_by_id_into_the_active_run(
    spark: SparkSession, published: tuple[Inputs, Published], tracking: str
) -> None:
    _, pub = published
    with mlflow.start_run() as active:
        logged = lakeforge.log_to_mlflow(pub.id, spark=spark)
        mlflow.log_metric("accuracy", 0.9)
    assert logged.run_id == active.info.run_id
    run = mlflow.MlflowClient().get_run(active.info.run_id)
    assert run.data.tags["lakeforge.training_set.id"] == pub.id
    assert run.data.metrics["accuracy"] == 0.9
    assert len(run.inputs.dataset_inputs) == 3
    # The manifest file works as well as the id, and a run id as well as a run.
    again = lakeforge.log_to_mlflow(str(pub.manifest_path), run=active.info.run_id)
    assert again.run_id == active.info.run_id


def test_missing_extra_is_a_coded_error(
    published: tuple[Inputs, Published], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    with pytest.raises(RuntimeSetupError) as exc:
        lakeforge.log_to_mlflow(published[1])
    assert exc.value.code == Code.OPTIONAL_DEPENDENCY_MISSING
    assert "lakeforge[mlflow]" in str(exc.value)


def test_cli_publish_with_mlflow(
    spark: SparkSession,
    lakehouse_root: Path,
    tracking: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(lakehouse_root)
    monkeypatch.delenv("LAKEFORGE_ENV", raising=False)
    inputs = make_inputs(spark)
    spec_file = tmp_path / "set.yml"
    spec_file.write_text(json.dumps(inputs.spec().model_dump(mode="json", exclude_defaults=True)))
    res = CliRunner().invoke(cli, ["publish", str(spec_file), "--mlflow"])
    assert res.exit_code == 0, res.output
    set_id = res.stdout.strip().splitlines()[-1]
    assert "mlflow: logged on run" in res.stdout
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`lakeforge.training_set.id` = '{set_id}'",
        output_format="list",
    )
    assert len(runs) == 1
