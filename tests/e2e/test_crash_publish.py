"""SIGKILL a training-set publish at two points, then prove that the publish that finishes
equals one clean publish (the pipeline kills are in test_crash_recovery.py; this is a
module of its own so that xdist can run it on the other worker).

The tiny pipeline (tests/data/tiny) runs once in a process over both its batches; then
two publishes of its training set are killed and a third finishes. Points, in order (N is
the killed publish's run id, crash-N):

8. ``publish.after_write:<set>``             a training table version, no manifest
9. ``publish.before_registry:<set>``         manifest file written, no registry row

The clean reference (one run over both batches and one publish) runs in-process through
the CLI's entry point on the shared test session, in its own project folder, under the
same per-test names. JVM starts: 1 run, 2 kills, 1 clean publish.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from tests.e2e.conftest import Project as InProcess
from tests.e2e.test_crash_recovery import PIPELINE, Jvms, Project
from tests.helpers import deliver_tiny, new_tiny_project

pytestmark = pytest.mark.e2e

SPEC = "jobs/tiny/training/tiny_set.yml"


def test_killed_publishes_then_one_equal_one_clean_publish(
    spark: SparkSession, tmp_path: Path
) -> None:
    sfx = f"_{uuid.uuid4().hex[:8]}"
    set_name = f"tiny_set{sfx}"
    crashed = Project(new_tiny_project(tmp_path / "crashed", sfx))
    warehouse = crashed.root / "lakehouse" / "warehouse"
    jvm = Jvms(crashed)
    for batch in (1, 2):
        deliver_tiny(crashed.root, batch)
    jvm("run", "run", PIPELINE)

    spec = ("publish", SPEC)
    jvm("kill 8", *spec, "--run-id", "crash-8", point=f"publish.after_write:{set_name}")
    jvm("kill 9", *spec, "--run-id", "crash-9", point=f"publish.before_registry:{set_name}")
    published = jvm("clean publish", *spec).stdout.strip().splitlines()[-1]

    # The reference: one clean run over the same deliveries and one publish, in-process.
    clean = InProcess(new_tiny_project(tmp_path / "clean", sfx), spark)
    t0 = time.monotonic()
    for batch in (1, 2):
        deliver_tiny(clean.root, batch)
    clean.lakeforge("run", PIPELINE)
    clean.lakeforge("publish", SPEC)
    jvm.runs.append(("clean reference (in-process)", round(time.monotonic() - t0, 1)))

    # Three table versions (two orphaned by the kills), one registry row, and the same
    # splits and checksums as one clean publish.
    versions = DeltaTable.forPath(spark, str(warehouse / "training.db" / set_name)).history()
    assert sorted(r["version"] for r in versions.select("version").collect()) == [0, 1, 2]
    registry = spark.read.format("delta").load(str(warehouse / "lakeforge.db" / "training_sets"))
    assert [r["id"] for r in registry.collect()] == [published] == [f"{set_name}-v2"]
    manifest = json.loads(
        (crashed.root / "training_sets" / set_name / f"{published}.json").read_text()
    )
    (reference,) = (clean.root / "training_sets" / set_name).iterdir()
    assert manifest["splits"] == json.loads(reference.read_text())["splits"]
    # Kill 9 left the manifest file of v1, which no registry row names.
    assert sorted(p.name for p in (crashed.root / "training_sets" / set_name).iterdir()) == [
        f"{set_name}-v1.json",
        f"{set_name}-v2.json",
    ]
    print("JVM starts:", len(jvm.runs) - 1, jvm.runs)
