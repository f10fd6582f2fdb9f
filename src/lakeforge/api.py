"""The programmatic entry points: what ``import lakeforge`` offers orchestrators.

Pipelines: :func:`plan`, :func:`run`. Training sets: :func:`publish`, :func:`reproduce`,
:func:`training_set`, :func:`training_manifest`, :func:`log_to_mlflow`. Functions that need Spark take ``spark`` (an existing session) or
start the session of profile ``env`` of the project around the working directory.
A lakeforge error they raise has secrets (resolved ``${env:}`` values) redacted.
A Spark, Delta or py4j failure leaves them as a coded lakeforge error
(:func:`lakeforge.runtime.spark_errors.translate`), never a raw py4j exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeforge.config.loader import DEFAULT_ENV
from lakeforge.plan.load import load_pipeline
from lakeforge.redaction import redacts_errors
from lakeforge.results import RunResult
from lakeforge.runtime.spark_errors import translating

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakeforge.plan.steps import Plan
    from lakeforge.training.mlflow_log import MlflowLogged
    from lakeforge.training.publish import Published
    from lakeforge.training.reproduce import Reproduction


@redacts_errors
def plan(path: str | Path, env: str = DEFAULT_ENV) -> Plan:
    """Load and plan a pipeline without Spark.

    Raises:
        ConfigError: invalid config (every problem, located).
        PlanError: e.g. a dependency cycle.
    """
    from lakeforge.plan.builder import build_plan

    return build_plan(load_pipeline(path, env))


@redacts_errors
@translating
def run(
    path: str | Path,
    env: str = DEFAULT_ENV,
    spark: SparkSession | None = None,
    data_env: str | None = None,
    wait: float = 0.0,
    select: Sequence[str] = (),
) -> RunResult:
    """Run a pipeline end to end and return its result (check ``result.ok``).

    Args:
        path: the pipeline YAML.
        env: the profile in ``conf/``.
        spark: an existing Delta-enabled session to use (default: start the profile's).
        data_env: data environment (``training`` / ``serving``) for environment-bound
            expectations; others are skipped.
        wait: seconds to wait for another run of the pipeline (same project) to finish.
        select: only the steps these selectors name (``silver.orders+``, ``+gold.x``,
            ``silver``; see ``lakeforge.plan.select``); empty: every step.

    Raises:
        ConfigError, PlanError, RuntimeSetupError: before any step runs. Step failures do
        not raise; they are in the result.
        RunError: ``LF-RUN-011`` another run of the pipeline still holds its lock after
            ``wait`` seconds.
    """
    from lakeforge.pipeline.executor import run_pipeline

    return run_pipeline(
        load_pipeline(path, env), spark=spark, data_env=data_env, wait=wait, select=select
    )


def _session(env: str, spark: SparkSession | None, app: str) -> SparkSession:
    """``spark``, or the session of profile ``env`` in the project around the cwd."""
    if spark is not None:
        return spark
    from lakeforge.config.loader import find_project_root, load_profile
    from lakeforge.runtime.session import build_session

    root = find_project_root(Path.cwd()) or Path.cwd()
    profile, _ = load_profile(env, root)
    return build_session(profile, root, app)


@redacts_errors
@translating
def publish(
    spec_path: str | Path,
    env: str = DEFAULT_ENV,
    spark: SparkSession | None = None,
    run_id: str | None = None,
) -> Published:
    """Publish the training set of a spec file as a new version of ``training.<name>``.

    Returns:
        The id (``<name>-v<table version>``), the table version, the manifest and the
        manifest file (``<project>/training_sets/<name>/<id>.json``).

    Raises:
        ConfigError: an invalid spec (before Spark starts).
        PublishError, RunError, TimeTravelError: an input or a pinned version is missing.
    """
    from lakeforge.config.loader import find_project_root
    from lakeforge.training.publish import publish as publish_set
    from lakeforge.training.spec import load_training_spec

    file = Path(spec_path).resolve()
    spec = load_training_spec(file)
    root = find_project_root(file.parent) or find_project_root(Path.cwd()) or Path.cwd()
    session = _session(env, spark, f"lakeforge:publish:{spec.name}")
    return publish_set(session, spec, root, run_id=run_id)


@redacts_errors
@translating
def reproduce(
    id: str,
    verify: bool = True,
    env: str = DEFAULT_ENV,
    spark: SparkSession | None = None,
) -> Reproduction:
    """Rebuild a published training set from its pinned input versions.

    Args:
        id: the set's id, or the path of its manifest JSON.
        verify: compare per-split row counts and checksums with the manifest.

    Raises:
        PublishError: ``LF-TRN-001`` a pinned input was vacuumed (names table and
            version), ``LF-TRN-002`` a split differs, ``LF-TRN-003`` unknown id.
    """
    from lakeforge.training.reproduce import reproduce as reproduce_set

    return reproduce_set(_session(env, spark, "lakeforge:reproduce"), id, verify=verify)


@redacts_errors
@translating
def training_set(
    name: str,
    version: int | None = None,
    split: str | None = None,
    pandas: bool = False,
    env: str = DEFAULT_ENV,
    spark: SparkSession | None = None,
) -> dict[str, Any]:
    """The rows of a published training set, one frame per split.

    Args:
        name: the set's name (table ``training.<name>``).
        version: the table version (the ``N`` of id ``<name>-vN``); None: the newest
            publish.
        split: only this split (the result then has one entry).
        pandas: pandas DataFrames (collected to the driver) instead of Spark ones.

    Returns:
        ``{split: frame}`` in the spec's split order, without the ``split`` column.

    Raises:
        PublishError: ``LF-TRN-003`` no such set, version or split.
    """
    from pyspark.sql import functions as F

    from lakeforge.errors import Code, PublishError
    from lakeforge.io.delta import read_version
    from lakeforge.training.build import SPLIT
    from lakeforge.training.registry import manifest_for_version

    session = _session(env, spark, f"lakeforge:training_set:{name}")
    manifest = manifest_for_version(session, name, version)
    splits = list(manifest["splits"])
    if split is not None:
        if split not in splits:
            raise PublishError(
                Code.TRAINING_SET_NOT_FOUND,
                f"{manifest['id']} has no split '{split}' (splits: {', '.join(splits)})",
            )
        splits = [split]
    table = read_version(session, manifest["table"], int(manifest["table_version"]))
    frames: dict[str, Any] = {}
    for s in splits:
        frame = table.where(F.col(SPLIT) == s).drop(SPLIT)
        frames[s] = frame.toPandas() if pandas else frame
    return frames


@redacts_errors
@translating
def training_manifest(
    name: str,
    version: int | None = None,
    env: str = DEFAULT_ENV,
    spark: SparkSession | None = None,
) -> dict[str, Any]:
    """The manifest of a published training set (as ``lakeforge.training_sets`` holds it).

    Args:
        name: the set's name, or its id (``<name>-vN``; then ``version`` must be None).
        version: the table version; None: the newest publish (or the id's).

    Raises:
        PublishError: ``LF-TRN-003`` no such set or version.
    """
    import re

    from lakeforge.training.registry import manifest_for_version

    m = re.fullmatch(r"(.+)-v(\d+)", name)
    if m and version is None:
        name, version = m.group(1), int(m.group(2))
    session = _session(env, spark, f"lakeforge:training_manifest:{name}")
    return manifest_for_version(session, name, version)


@redacts_errors
@translating
def log_to_mlflow(
    manifest_or_id: Any,
    run: Any = None,
    env: str = DEFAULT_ENV,
    spark: SparkSession | None = None,
) -> MlflowLogged:
    """Log a published training set on an MLflow run (needs the ``[mlflow]`` extra).

    The manifest becomes an artifact, each split a dataset input (digest = its checksum,
    source = the Delta table and version, context = the split name), and the set's id and
    pinned input versions run tags. See :mod:`lakeforge.training.mlflow_log`.

    Args:
        manifest_or_id: a manifest dict, a ``Published``, a manifest JSON path or an id
            (an id starts the profile's Spark session unless ``spark`` is given).
        run: an MLflow run, or a run id; None: the active run, or else a new one.

    Raises:
        RuntimeSetupError: ``LF-RT-005`` mlflow is not installed.
        PublishError: ``LF-TRN-003`` no such set.
    """
    from lakeforge.training.mlflow_log import log_training_set
    from lakeforge.training.publish import Published

    needs_spark = not isinstance(manifest_or_id, dict | Published) and not str(
        manifest_or_id
    ).endswith(".json")
    session = _session(env, spark, "lakeforge:log_to_mlflow") if needs_spark else None
    return log_training_set(manifest_or_id, run=run, spark=session)
