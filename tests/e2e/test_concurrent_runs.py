"""Two ``lakeforge run`` of one pipeline at once, as real processes on one scratch project.

They serialize on the pipeline's lock (``.lakeforge/locks/<pipeline>.lock``), taken
before Spark starts: a second run fails at once with ``LF-RUN-011`` naming the holder's
run id and pid, without starting a JVM; with ``--wait`` it says whom it waits for and
runs when the first has finished. Afterwards the tables hold each delivered row once.
The project is the tiny pipeline (tests/data/tiny), so each run is mostly its JVM start.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakeforge.runtime.lock import lock_path, read_holder
from tests.helpers import REPO, deliver_tiny, new_tiny_project

pytestmark = pytest.mark.e2e

LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")
RUN = (LAKEFORGE, "run", "jobs/tiny/pipeline.yml")


def scratch_project(root: Path, suffix: str) -> dict[str, str]:
    """The tiny pipeline (tests/data/tiny) with its two batches delivered; the runs'
    environment."""
    new_tiny_project(root, suffix)
    deliver_tiny(root, 1)
    deliver_tiny(root, 2)
    env = dict(os.environ)
    env["LAKEFORGE_JARS_DIR"] = str(REPO / ".lakeforge" / "jars")
    env.pop("LAKEFORGE_ENV", None)
    return env


def csv_rows(folder: Path) -> int:
    """Data rows of a feed, counted without Spark."""
    total = 0
    for file in sorted(folder.glob("*.csv")):
        with file.open(newline="", encoding="utf-8") as f:
            total += sum(1 for _ in csv.reader(f)) - 1
    return total


def test_second_run_fails_fast_then_a_waiting_run_follows(
    spark: SparkSession, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    sfx = f"_{uuid.uuid4().hex[:8]}"
    env = scratch_project(root, sfx)

    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*RUN, *args], cwd=root, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    first = start("--run-id", "first", "--json-result", "first.json")
    lock = lock_path(root, f"tiny{sfx}")
    deadline = time.monotonic() + 120
    while (h := read_holder(lock)) is None or h.run_id != "first":
        assert first.poll() is None, f"the first run ended early: {first.communicate()}"
        assert time.monotonic() < deadline, "the first run never took the lock"
        time.sleep(0.2)

    # A second run while the first holds the lock: a coded line naming the holder, no JVM.
    t0 = time.monotonic()
    second = subprocess.run(
        [*RUN, "--run-id", "second"], cwd=root, env=env, text=True, capture_output=True
    )
    assert second.returncode == 1
    assert "LF-RUN-011" in second.stderr and "run first" in second.stderr
    assert f"pid {first.pid}" in second.stderr
    assert "starting Spark" not in second.stderr and "Traceback" not in second.stderr
    assert first.poll() is None, "the first run finished before the second was refused"
    fail_fast_seconds = time.monotonic() - t0

    # A third one waits for the first, says so, then runs.
    third = start("--run-id", "third", "--wait", "900", "--json-result", "third.json")
    _first_out, first_err = first.communicate(timeout=900)
    assert first.returncode == 0, first_err[-3000:]
    _third_out, third_err = third.communicate(timeout=900)
    assert third.returncode == 0, third_err[-3000:]
    assert "waiting for run first (pid" in third_err

    runs = {
        r["run_id"]: r
        for r in (json.loads((root / f"{n}.json").read_text()) for n in ("first", "third"))
    }
    assert runs["first"]["status"] == runs["third"]["status"] == "succeeded"
    # One after the other: the third started once the first had ended.
    assert runs["third"]["started_at"] >= runs["first"]["ended_at"]
    first_steps = {s["table"]: s for s in runs["first"]["steps"]}
    third_steps = {s["table"]: s for s in runs["third"]["steps"]}

    # Each delivered row landed once (counted outside Spark); the third run found nothing new.
    raw = root / "data" / "raw"
    warehouse = root / "lakehouse" / "warehouse"
    table = f"bronze.orders{sfx}"
    rows = spark.read.format("delta").load(str(warehouse / "bronze.db" / f"orders{sfx}")).count()
    assert rows == csv_rows(raw / "orders") == first_steps[table]["rows_written"] == 8
    assert third_steps[table]["rows_written"] == 0
    files = spark.read.format("delta").load(str(warehouse / "lakeforge.db" / "ingested_files"))
    committed = files.where("status = 'committed'").groupBy("table_name", "path").count()
    assert committed.count() == len(list(raw.glob("*/*.csv")))
    assert committed.where("count > 1").count() == 0
    assert fail_fast_seconds < 60, f"the refused run took {fail_fast_seconds:.0f}s"
