"""SIGKILL the retail run and a training-set publish at seven points, then prove that the
tables equal one clean run's, the publish equals one clean publish, and the killed runs
are marked ``interrupted``.

The kills are chained to start as few JVMs as possible: each killed run is the rerun of
the one before (kill at A, the rerun dies at B, ...), and ONE clean rerun finishes the
pipeline; then two publishes are killed and one finishes. Points, in order (N is the
killed run's id, crash-N):

1. ``ingest.after_log:bronze.orders``        batch logged pending, bronze not written
2. ``system.append:ingested_files@0.3``      inside an ingestion-log commit
3. ``ingest.after_write:bronze.order_lines`` bronze committed, the log not told
6. ``system.append:run_end``                 every table done, the run's end row not
   (day 3 delivered)
7. ``conform.write:silver.orders@0.3``       inside a silver MERGE (checked: no commit)
8. ``publish.after_write:<set>``             a training table version, no manifest
9. ``publish.before_registry:<set>``         manifest file written, no registry row

The clean reference (two runs and a publish) is one more process, in its own project
and metastore, so the shared test metastore gets no retail tables. Crashed and clean
tables are compared table by table (Delta paths read on the shared session), ignoring
only columns that hold wall-clock times and run ids. Both projects use the repo's local
profile made small (2 cores, 2 shuffle partitions, no UI): the kills and reruns are what
is tested. JVM starts: 7 kills, 1 clean rerun, 1 clean publish, 1 reference process.
(``system.append:table_versions`` and ``step.after:<table>`` are fail points too; each
kill costs a JVM start, about a minute here, so the harness keeps the seven that cover
bronze, a system-table commit, a silver MERGE, a run's end and both halves of a publish.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from lakeforge.runtime.lock import lock_path, read_holder
from tests.helpers import REPO

pytestmark = pytest.mark.e2e

TABLES = [
    "bronze.customers",
    "bronze.orders",
    "bronze.order_lines",
    "silver.customers",
    "silver.orders",
    "silver.order_lines",
    "silver.orders__quarantine",
    "silver.customers__quarantine",
    "silver.order_lines__quarantine",
    "gold.daily_revenue",
    "gold.revenue_by_segment",
    "gold.customer_value",
]
VOLATILE = {"_lf_run_id", "_lf_ingested_at", "quarantined_at", "_lf_batch_id", "_lf_source_mtime"}
SET = "crash_orders"
SPEC = f"""
name: {SET}
labels:
  table: silver.orders
  keys: [customer_id]
  event_time: order_ts
  columns: [status]
features:
  - table: gold.customer_value
    keys: [customer_id]
    event_time: last_order_ts
    features: [orders, spend]
    defaults: {{orders: 0}}
splits:
  salt: crash
  fractions: {{train: 0.6, validation: 0.2, test: 0.2}}
"""
LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")
# The clean reference, in one process: day 1-2 run, day 3 run, one publish.
REFERENCE = textwrap.dedent(
    f"""
    import subprocess, sys
    import lakeforge
    from lakeforge.config.loader import load_pipeline
    from lakeforge.runtime.session import build_session

    loaded = load_pipeline("jobs/retail/pipeline.yml")
    spark = build_session(loaded.profile, loaded.project_root, "crash-reference")
    for days in ("1,2", "3"):
        subprocess.run([sys.executable, "jobs/retail/generate_data.py", "--days", "3",
                        "--only", days, "--out", "data/raw/retail"], check=True)
        assert lakeforge.run("jobs/retail/pipeline.yml", spark=spark).ok
    lakeforge.publish("jobs/retail/training/{SET}.yml", spark=spark)
    """
)


@dataclass
class Project:
    """A scratch copy of the repo's jobs/ and conf/, driven by real processes."""

    root: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        env["LAKEFORGE_JARS_DIR"] = str(REPO / ".lakeforge" / "jars")
        env.pop("LAKEFORGE_ENV", None)
        proc = subprocess.run(
            list(args), cwd=self.root, env=env, capture_output=True, text=True, timeout=900
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} exited {proc.returncode}\n{proc.stderr[-3000:]}")
        return proc


def new_project(root: Path) -> Project:
    shutil.copytree(REPO / "jobs", root / "jobs")
    shutil.copytree(REPO / "conf", root / "conf")
    project = Project(root)
    small_profile(project)
    (root / "jobs/retail/training").mkdir(exist_ok=True)
    (root / "jobs/retail/training" / f"{SET}.yml").write_text(SPEC)
    return project


def deliver(project: Project, days: str) -> None:
    project.run(
        sys.executable,
        "jobs/retail/generate_data.py",
        "--days",
        "3",
        "--only",
        days,
        "--out",
        "data/raw/retail",
    )


def small_profile(project: Project) -> None:
    """The repo's local profile, sized for a test (the same settings otherwise)."""
    path = project.root / "conf" / "local.yml"
    profile = yaml.safe_load(path.read_text())
    profile["spark"]["master"] = "local[2]"
    profile["spark"]["conf"].update(
        {
            "spark.sql.shuffle.partitions": 2,
            "spark.default.parallelism": 2,
            "spark.databricks.delta.snapshotPartitions": 2,
            "spark.ui.enabled": "false",
        }
    )
    path.write_text(yaml.safe_dump(profile))


class Jvms:
    """Each ``lakeforge`` process that starts Spark, with its wall time."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.runs: list[tuple[str, float]] = []

    def __call__(self, label: str, *args: str, point: str | None = None) -> Any:
        env = ("env", f"LAKEFORGE_FAIL_POINT={point}") if point else ("env",)
        t0 = time.monotonic()
        proc = self.project.run(*env, LAKEFORGE, *args, check=False)
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
    crashed = new_project(tmp_path / "crashed")
    warehouse = crashed.root / "lakehouse" / "warehouse"
    jvm = Jvms(crashed)
    run = ("run", "jobs/retail/pipeline.yml", "--run-id")

    deliver(crashed, "1,2")
    jvm("kill 1", *run, "crash-1", point="ingest.after_log:bronze.orders")
    # The dead run's lock file still names it; its flock died with it (the next run takes it).
    holder = read_holder(lock_path(crashed.root, "retail"))
    assert holder is not None and holder.run_id == "crash-1" and not pid_alive(holder.pid)
    jvm("kill 2", *run, "crash-2", point="system.append:ingested_files@0.3")
    jvm("kill 3", *run, "crash-3", point="ingest.after_write:bronze.order_lines")
    jvm("kill 6", *run, "crash-6", point="system.append:run_end")

    deliver(crashed, "3")
    orders_path = str(warehouse / "silver.db" / "orders")

    def orders_version() -> int:
        row = DeltaTable.forPath(spark, orders_path).history(1).first()
        assert row is not None
        return int(row["version"])

    before = orders_version()
    jvm("kill 7", *run, "crash-7", point="conform.write:silver.orders@0.3")
    assert orders_version() == before, "the kill came after the MERGE committed: not inside it"
    jvm("clean rerun", *run, "final")

    spec = ("publish", f"jobs/retail/training/{SET}.yml")
    jvm("kill 8", *spec, "--run-id", "crash-8", point=f"publish.after_write:{SET}")
    jvm("kill 9", *spec, "--run-id", "crash-9", point=f"publish.before_registry:{SET}")
    published = jvm("clean publish", *spec).stdout.strip().splitlines()[-1]

    # The reference: one clean run per delivery and one publish, in one process.
    clean = new_project(tmp_path / "clean")
    t0 = time.monotonic()
    clean.run(sys.executable, "-c", REFERENCE)
    jvm.runs.append(("clean reference", round(time.monotonic() - t0, 1)))
    reference_wh = clean.root / "lakehouse" / "warehouse"

    for table in TABLES:
        schema, name = table.split(".")
        theirs = spark.read.format("delta").load(str(warehouse / f"{schema}.db" / name))
        ours = spark.read.format("delta").load(str(reference_wh / f"{schema}.db" / name))
        assertDataFrameEqual(stable(theirs), stable(ours), checkRowOrder=False)
    # No file was ingested twice or lost.
    files = spark.read.format("delta").load(str(warehouse / "lakeforge.db" / "ingested_files"))
    committed = files.where("status = 'committed'").groupBy("table_name", "path").count()
    assert committed.where("count > 1").count() == 0
    assert committed.count() == 9

    # Every killed run is marked interrupted by the run after it; none is left running.
    events = spark.read.format("delta").load(str(warehouse / "lakeforge.db" / "run_events"))
    latest = {
        r["run_id"]: r["status"]
        for r in events.orderBy("recorded_at").select("run_id", "status").collect()
        if r["run_id"].startswith(("crash-", "final"))
    }
    killed = {f"crash-{i}": "interrupted" for i in (1, 2, 3, 6, 7)}
    assert latest == {**killed, "final": "succeeded"}

    # The publish: three table versions (two orphaned by the kills), one registry row, and
    # the same splits and checksums as one clean publish.
    registry = spark.read.format("delta").load(str(warehouse / "lakeforge.db" / "training_sets"))
    assert [r["id"] for r in registry.collect()] == [published] == [f"{SET}-v2"]
    manifest = json.loads((crashed.root / "training_sets" / SET / f"{published}.json").read_text())
    (reference,) = (reference_wh.parent.parent / "training_sets" / SET).iterdir()
    assert manifest["splits"] == json.loads(reference.read_text())["splits"]
    # Kill 9 left the manifest file of v1, which no registry row names.
    assert sorted(p.name for p in (crashed.root / "training_sets" / SET).iterdir()) == [
        f"{SET}-v1.json",
        f"{SET}-v2.json",
    ]
    print("JVM starts:", len(jvm.runs), jvm.runs)
