"""SIGKILL a pipeline run at five points, then prove that the tables equal one clean run's
and the killed runs are marked ``interrupted`` (the publish kills are in
test_crash_publish.py, a module of its own so that xdist can run it on the other worker).

The pipeline is the tiny one (tests/data/tiny: one CSV source of a few rows; bronze, a
silver MERGE with a quarantine, a silver SCD2 history, a gold query): each process is
then mostly its JVM start, and the kills and reruns are what is tested. The kills are
chained to start as few JVMs as possible: each killed run is the rerun of the one before
(kill at A, the rerun dies at B, ...), and ONE clean rerun finishes the pipeline. Points,
in order (N is the killed run's id, crash-N):

1. ``ingest.after_log:bronze.orders_S``      batch logged pending, bronze not written
3. ``ingest.after_write:bronze.orders_S``    bronze committed, the log not told
2. ``system.append:ingested_files@0.3``      inside the ingestion-log commit that follows
6. ``system.append:run_end``                 every table done, the run's end row not
   (batch 2 delivered)
7. ``conform.write:silver.orders_S@0.3``     inside a silver MERGE (checked: no commit)

The clean reference (one run per batch) runs in-process through the CLI's entry point on
the shared test session, in its own project folder; its tables carry the same per-test
suffix, so they are new names in the shared metastore, and the crashed project (its own
Derby metastore, in processes) uses the same names. Crashed and clean tables are compared
table by table (the crashed ones read from their Delta paths), ignoring only columns that
hold wall-clock times and run ids, and paths cut to file names. JVM starts: 5 kills and
1 clean rerun. The tiny profile (tests/data/tiny/conf/local.yml) gives each of these
short-lived driver JVMs the C1 compiler only and the serial GC.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from lakeforge.runtime.lock import lock_path, read_holder
from tests.e2e.conftest import Project as InProcess
from tests.helpers import REPO, deliver_tiny, new_tiny_project, tiny_tables

pytestmark = pytest.mark.e2e

VOLATILE = {"_lf_run_id", "_lf_ingested_at", "quarantined_at", "_lf_batch_id", "_lf_source_mtime"}
LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")
PIPELINE = "jobs/tiny/pipeline.yml"


@dataclass
class Project:
    """A scratch copy of the tiny pipeline, driven by real processes."""

    root: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        env["LAKEFORGE_JARS_DIR"] = str(REPO / ".lakeforge" / "jars")
        env.pop("LAKEFORGE_ENV", None)
        return subprocess.run(
            list(args), cwd=self.root, env=env, capture_output=True, text=True, timeout=900
        )


class Jvms:
    """Each ``lakeforge`` process that starts Spark, with its wall time."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.runs: list[tuple[str, float]] = []

    def __call__(self, label: str, *args: str, point: str | None = None) -> Any:
        env = ("env", f"LAKEFORGE_FAIL_POINT={point}") if point else ("env",)
        t0 = time.monotonic()
        proc = self.project.run(*env, LAKEFORGE, *args)
        self.runs.append((label, round(time.monotonic() - t0, 1)))
        if point is not None:
            assert proc.returncode == -9, (
                f"{point}: expected SIGKILL, got {proc.returncode}\n{proc.stderr[-2000:]}"
            )
        else:
            assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stderr[-3000:]}"
        return proc


def stable(df: DataFrame) -> DataFrame:
    # Paths differ between the two projects: compare file names only.
    cols = [c for c in df.columns if c not in VOLATILE]
    out = df.select(*cols)
    for c in ("_lf_source_file", "source_file"):
        if c in cols:
            out = out.withColumn(c, F.regexp_extract(F.col(c), r"([^/]+)$", 1))
    if "record" in cols:
        out = out.withColumn(
            "record", F.regexp_replace("record", r'"_lf_source_file":"[^"]*/', '"')
        )
    return out


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_chained_kills_then_one_rerun_equal_one_clean_run(
    spark: SparkSession, tmp_path: Path
) -> None:
    sfx = f"_{uuid.uuid4().hex[:8]}"
    orders = f"orders{sfx}"
    tables = tiny_tables(sfx)
    crashed = Project(new_tiny_project(tmp_path / "crashed", sfx))
    warehouse = crashed.root / "lakehouse" / "warehouse"
    jvm = Jvms(crashed)
    run = ("run", PIPELINE, "--run-id")

    deliver_tiny(crashed.root, 1)
    jvm("kill 1", *run, "crash-1", point=f"ingest.after_log:bronze.{orders}")
    # The dead run's lock file still names it; its flock died with it (the next run takes it).
    holder = read_holder(lock_path(crashed.root, f"tiny{sfx}"))
    assert holder is not None and holder.run_id == "crash-1" and not pid_alive(holder.pid)
    # One source: the rerun writes the pending batch (killed before the log knows), and
    # the rerun after it finds the batch in bronze's txn and commits it to the log.
    jvm("kill 3", *run, "crash-3", point=f"ingest.after_write:bronze.{orders}")
    jvm("kill 2", *run, "crash-2", point="system.append:ingested_files@0.3")
    jvm("kill 6", *run, "crash-6", point="system.append:run_end")

    deliver_tiny(crashed.root, 2)
    orders_path = str(warehouse / "silver.db" / orders)

    def orders_version() -> int:
        row = DeltaTable.forPath(spark, orders_path).history(1).first()
        assert row is not None
        return int(row["version"])

    before = orders_version()
    jvm("kill 7", *run, "crash-7", point=f"conform.write:silver.{orders}@0.3")
    assert orders_version() == before, "the kill came after the MERGE committed: not inside it"
    jvm("clean rerun", *run, "final")

    # The reference: one clean run per delivery, in-process.
    clean = InProcess(new_tiny_project(tmp_path / "clean", sfx), spark)
    t0 = time.monotonic()
    for batch in (1, 2):
        deliver_tiny(clean.root, batch)
        clean.lakeforge("run", PIPELINE)
    jvm.runs.append(("clean reference (in-process)", round(time.monotonic() - t0, 1)))

    for table in tables:
        schema, name = table.split(".")
        theirs = spark.read.format("delta").load(str(warehouse / f"{schema}.db" / name))
        assertDataFrameEqual(stable(theirs), stable(spark.table(table)), checkRowOrder=False)
    # No file was ingested twice or lost.
    files = spark.read.format("delta").load(str(warehouse / "lakeforge.db" / "ingested_files"))
    committed = files.where("status = 'committed'").groupBy("table_name", "path").count()
    assert committed.where("count > 1").count() == 0
    assert committed.count() == 2

    # Every killed run is marked interrupted by the run after it; none is left running.
    events = spark.read.format("delta").load(str(warehouse / "lakeforge.db" / "run_events"))
    latest = {
        r["run_id"]: r["status"]
        for r in events.orderBy("recorded_at").select("run_id", "status").collect()
        if r["run_id"].startswith(("crash-", "final"))
    }
    killed = {f"crash-{i}": "interrupted" for i in (1, 2, 3, 6, 7)}
    assert latest == {**killed, "final": "succeeded"}

    print("JVM starts:", len(jvm.runs) - 1, jvm.runs)
