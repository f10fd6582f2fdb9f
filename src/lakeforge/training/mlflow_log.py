"""Log a published training set to MLflow (optional extra ``lakeforge[mlflow]``).

What one call records on a run:

* the manifest, whole, as the artifact ``training_sets/<id>.json``;
* one dataset input per split: name ``<id>:<split>``, digest = the split's content
  checksum from the manifest (:mod:`lakeforge.training.checksum`), source = the Delta
  table ``training.<name>`` at the published version (source type ``delta_table``),
  profile = its row count, context = the split name (``train`` / ``validation`` /
  ``test``, as the spec names them);
* tags ``lakeforge.training_set.*`` (id, name, table@version, config hash, manifest
  created_at) and ``lakeforge.input.<role>`` = ``table@version`` for every pinned input,
  so ``tags.lakeforge.training_set.id = 'iris_species-v0'`` finds the runs trained on a
  set. Tags, not params: params are immutable, and logging a second set (or re-logging
  after a retry) into one run must not fail.

mlflow is imported only inside these functions: the rest of lakeforge never needs it,
and a missing extra is ``LF-RT-005`` with the install command. ``mlflow-skinny`` is
enough. Its local file store (``file:`` tracking URIs) refuses to start since MLflow 3.x
unless ``MLFLOW_ALLOW_FILE_STORE=true`` is set; a database store needs the full
``mlflow`` package.

MLflow's own ``DeltaDatasetSource`` is not used as is: given a table name it asks a
Databricks workspace for the table id (a network call, and a warning without
credentials), and it leaves out version 0. The source logged here has the same type and
JSON keys, without either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeforge.errors import Code, RuntimeSetupError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ARTIFACT_DIR = "training_sets"
TAG_PREFIX = "lakeforge."
INSTALL_HINT = 'pip install "lakeforge[mlflow]" (or mlflow-skinny)'


@dataclass(frozen=True)
class MlflowLogged:
    """What :func:`log_training_set` wrote, and where."""

    run_id: str
    set_id: str
    artifact_path: str
    datasets: dict[str, str]  # split -> dataset name
    tags: dict[str, str]


def import_mlflow() -> Any:
    """The ``mlflow`` module, or ``LF-RT-005`` naming the extra to install."""
    try:
        import mlflow
    except ImportError as exc:
        raise RuntimeSetupError(
            Code.OPTIONAL_DEPENDENCY_MISSING,
            f"MLflow logging needs the mlflow extra, which is not installed ({exc})",
            INSTALL_HINT,
        ) from exc
    return mlflow


def tag_key(role: str) -> str:
    """A pinned input's tag key: ``features[0]`` -> ``lakeforge.input.features.0``
    (MLflow keys allow letters, digits, ``_ - . / :`` and spaces only)."""
    return f"{TAG_PREFIX}input." + role.replace("[", ".").replace("]", "")


def manifest_tags(manifest: dict[str, Any]) -> dict[str, str]:
    """The run tags for a manifest (pure)."""
    tags = {
        f"{TAG_PREFIX}training_set.id": str(manifest["id"]),
        f"{TAG_PREFIX}training_set.name": str(manifest["name"]),
        f"{TAG_PREFIX}training_set.table": f"{manifest['table']}@{manifest['table_version']}",
        f"{TAG_PREFIX}training_set.config_hash": str(manifest["config_hash"]),
        f"{TAG_PREFIX}training_set.created_at": str(manifest["created_at"]),
    }
    for i in manifest["inputs"]:
        tags[tag_key(str(i["role"]))] = f"{i['table']}@{i['version']}"
    raw = manifest.get("raw_objects") or {}
    if raw.get("count"):
        # The whole list is in the logged manifest artifact; the tags identify it.
        tags[f"{TAG_PREFIX}raw_objects.count"] = str(raw["count"])
        tags[f"{TAG_PREFIX}raw_objects.sha256"] = str(raw["sha256"])
    return tags


def _resolve_manifest(manifest_or_id: Any, spark: SparkSession | None) -> dict[str, Any]:
    """A manifest dict from a dict, a :class:`~lakeforge.training.publish.Published`, a
    manifest JSON path, or a registered id (which needs ``spark``)."""
    from lakeforge.training.publish import Published
    from lakeforge.training.registry import load_manifest

    if isinstance(manifest_or_id, dict):
        return manifest_or_id
    if isinstance(manifest_or_id, Published):
        return manifest_or_id.manifest
    return load_manifest(spark, str(manifest_or_id))


def _datasets(manifest: dict[str, Any]) -> list[tuple[str, Any]]:
    """(split, mlflow.entities.DatasetInput) per split, in the manifest's split order."""
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    class PinnedDeltaSource(DeltaDatasetSource):
        """A Delta table at one version, without a Databricks lookup (see module doc)."""

        def __init__(self, table: str, version: int) -> None:
            self._path = None
            self._delta_table_name = table
            self._delta_table_version = version
            self._delta_table_id = None

        def to_dict(self) -> dict[Any, Any]:
            return {
                "delta_table_name": self._delta_table_name,
                "delta_table_version": self._delta_table_version,
            }

    class SplitDataset(MetaDataset):
        """Metadata only (the rows stay in Delta), with the split's row count as profile."""

        def __init__(self, source: Any, name: str, digest: str, rows: int) -> None:
            self._rows = rows
            super().__init__(source=source, name=name, digest=digest)

        @property
        def profile(self) -> dict[str, int]:
            return {"num_rows": self._rows}

        def to_dict(self) -> dict[str, str]:
            config: dict[str, str] = super().to_dict()
            config["profile"] = json.dumps(self.profile)
            return config

    out = []
    source = PinnedDeltaSource(str(manifest["table"]), int(manifest["table_version"]))
    for split, stats in manifest["splits"].items():
        dataset = SplitDataset(
            source, f"{manifest['id']}:{split}", str(stats["checksum"]), int(stats["rows"])
        )
        tags = [
            InputTag(key=MLFLOW_DATASET_CONTEXT, value=split),
            InputTag(key=f"{TAG_PREFIX}training_set.id", value=str(manifest["id"])),
        ]
        out.append((split, DatasetInput(dataset=dataset._to_mlflow_entity(), tags=tags)))
    return out


def log_training_set(
    manifest_or_id: Any,
    run: Any = None,
    spark: SparkSession | None = None,
) -> MlflowLogged:
    """Log a published training set on an MLflow run.

    Args:
        manifest_or_id: a manifest dict, a ``Published`` (what ``publish`` returns), the
            path of a manifest JSON file, or a registered id (then ``spark`` is needed to
            read ``lakeforge.training_sets``).
        run: the run to log on: an ``mlflow.ActiveRun`` / ``Run``, or a run id. None: the
            active run, or else a new run (named after the set) that is ended again.
        spark: a session, only to look up an id.

    Returns:
        The run id, the artifact path, the dataset names per split and the tags.

    Raises:
        RuntimeSetupError: ``LF-RT-005`` mlflow is not installed.
        PublishError: ``LF-TRN-003`` no such id or manifest file.
    """
    mlflow = import_mlflow()
    manifest = _resolve_manifest(manifest_or_id, spark)
    set_id = str(manifest["id"])
    if run is None and mlflow.active_run() is None:
        # start_run ends the run again, FAILED if logging raises.
        with mlflow.start_run(run_name=f"training-set {set_id}") as new_run:
            return _log(mlflow, new_run.info.run_id, manifest)
    if run is None:
        run_id = mlflow.active_run().info.run_id
    elif isinstance(run, str):
        run_id = run
    else:
        run_id = run.info.run_id
    return _log(mlflow, run_id, manifest)


def _log(mlflow: Any, run_id: str, manifest: dict[str, Any]) -> MlflowLogged:
    from mlflow.entities import RunTag

    client = mlflow.MlflowClient()
    set_id = str(manifest["id"])
    artifact = f"{ARTIFACT_DIR}/{set_id}.json"
    client.log_dict(run_id, manifest, artifact)
    datasets = _datasets(manifest)
    client.log_inputs(run_id, datasets=[d for _, d in datasets])
    tags = manifest_tags(manifest)
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    return MlflowLogged(
        run_id=run_id,
        set_id=set_id,
        artifact_path=artifact,
        datasets={split: d.dataset.name for split, d in datasets},
        tags=tags,
    )
