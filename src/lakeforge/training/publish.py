"""Publish a training set: plan, build, measure, write one commit, record the manifest.

Where things go:

* the rows: Delta table ``training.<name>``, partitioned by ``split``, replaced by an
  overwrite in ONE commit per publish, so every publish is a new table version and
  older ones stay readable by time travel (until VACUUM);
* the manifest: ``<project>/training_sets/<name>/<id>.json``, next to the project's
  jobs, where it can be reviewed and committed to git; the warehouse is not used because
  it may be object storage and its folders belong to Delta;
* the registry: one row in system table ``lakeforge.training_sets``, with the whole
  manifest, so ``reproduce`` and ``export`` work from the metastore alone.

The id is ``<name>-v<table version>``: readable, unique as long as the table's history
is, and it says which version of ``training.<name>`` to read. A content hash would not
identify a publish (publishing the same inputs twice gives the same content).

Statistics are computed before the write, from the same (persisted) rows, so a failure
there leaves no table version without a manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeforge.errors import Code, PublishError
from lakeforge.faults import fail_point
from lakeforge.training.spec import TrainingSetSpec

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SCHEMA = "training"
MANIFEST_DIR = "training_sets"


@dataclass(frozen=True)
class Published:
    """What a publish produced."""

    id: str
    table: str
    table_version: int
    manifest: dict[str, Any]
    manifest_path: Path

    @property
    def rows(self) -> dict[str, int]:
        return {s: int(v["rows"]) for s, v in self.manifest["splits"].items()}


def set_id(name: str, table_version: int) -> str:
    return f"{name}-v{table_version}"


def manifest_path(project_root: Path, name: str, identifier: str) -> Path:
    return project_root / MANIFEST_DIR / name / f"{identifier}.json"


def publish(
    spark: SparkSession,
    spec: TrainingSetSpec,
    project_root: Path,
    run_id: str | None = None,
) -> Published:
    """Publish ``spec`` as a new version of ``training.<name>``.

    Args:
        spark: a Delta-enabled session.
        spec: the parsed spec (:func:`~lakeforge.training.spec.load_training_spec`).
        project_root: where ``training_sets/`` (the manifest files) lives.
        run_id: recorded in the commit and the registry (default: a new run id).

    Returns:
        The id, table version, manifest and manifest path.

    Raises:
        RunError, TimeTravelError: an input table or pinned version does not exist.
        PublishError: ``LF-TRN-001`` a pinned input's files are gone, ``LF-TRN-004`` the
            table was dropped and its version numbers would repeat registered ids.
    """
    from pyspark import StorageLevel

    from lakeforge.io.delta import latest_version, write_table
    from lakeforge.lineage.system_tables import code_version
    from lakeforge.results import new_run_id
    from lakeforge.runtime.session import ensure_schemas
    from lakeforge.training.build import SPLIT, build
    from lakeforge.training.manifest import assemble, compute_stats, library_versions
    from lakeforge.training.plan import resolve_plan
    from lakeforge.training.registry import id_taken, record
    from lakeforge.training.reproduce import guard_inputs

    run_id = run_id or new_run_id()
    plan = resolve_plan(spark, spec)
    table = plan.table
    ensure_schemas(spark, (SCHEMA,))

    # A dropped and recreated table restarts at version 0: its ids would repeat.
    latest = latest_version(spark, table)
    next_id = set_id(plan.name, 0 if latest is None else latest + 1)
    if id_taken(spark, next_id):
        raise PublishError(
            Code.TRAINING_ID_CONFLICT,
            f"{table} would be published as '{next_id}', which is already registered",
            f"{table} was dropped and recreated: publish under another name",
        )

    built = build(spark, plan)
    # Persisted: the statistics job and the write read the same joined rows once.
    frame = built.frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        built = replace(built, frame=frame)
        stats = guard_inputs(spark, plan, lambda: compute_stats(built))
        commit = write_table(
            built.output,
            table,
            "overwrite",
            run_id,
            step=table,
            overwrite_schema=True,
            partition_by=(SPLIT,),
            metadata={
                "training_set": plan.name,
                "config_hash": plan.config_hash,
                "inputs": {i.role: f"{i.table}@{i.version}" for i in plan.inputs},
            },
        )
    finally:
        frame.unpersist()
    fail_point(f"publish.after_write:{plan.name}")  # a table version with no manifest yet

    from lakeforge.lineage.query import lineage, raw_objects, raw_objects_record

    # Which raw object versions fed the inputs, walked upstream once from each pinned one.
    objects = raw_objects([lineage(spark, i.table, i.version) for i in plan.inputs])
    identifier = set_id(plan.name, commit.version)
    created_at = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    manifest = assemble(
        plan=plan,
        built=built,
        stats=stats,
        set_id=identifier,
        table_version=commit.version,
        created_at=created_at,
        run_id=run_id,
        code_version=code_version(),
        versions=library_versions(spark),
        raw_objects=raw_objects_record(objects),
    )
    path = manifest_path(project_root, plan.name, identifier)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A manifest is an output: a resolved ${env:} value never reaches it (nor the registry).
    from lakeforge.redaction import redact_obj

    listed = manifest["raw_objects"]
    manifest = redact_obj(manifest)
    # Raw object paths are identifiers (the key to fetch the exact bytes again), stored as
    # they are, like the ingestion log's: a bucket named by ${env:} is masked in outputs
    # only. Their hash was taken before masking too.
    manifest["raw_objects"] = listed
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    fail_point(f"publish.before_registry:{plan.name}")  # manifest file, no registry row
    record(spark, manifest, str(path))
    return Published(identifier, table, commit.version, manifest, path)
