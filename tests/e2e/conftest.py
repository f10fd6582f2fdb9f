"""E2E fixtures: a scratch copy of the project driven through the CLI's own entry point.

``lakeforge`` commands run in-process (click's ``CliRunner`` on ``lakeforge.cli.main.cli``,
from the scratch project's folder, with its ``conf/``): ``build_session``'s
``getOrCreate`` joins the test session's SparkSession instead of starting a JVM per
command (about 20 s each). What a joined session keeps from its own start: master, jars,
warehouse and the embedded Derby metastore (tests/conftest.py ``lakehouse_root``), so the
example's tables are registered there and live in that warehouse; project-relative files
(raw data, reports, training-set manifests, ``run.json``) stay in the scratch folder. The
runtime SQL settings a command's profile applies to the shared session are put back after
each command, so the next test sees the session it expects.

Only what must have a JVM of its own runs in a subprocess (:meth:`Project.run_jvm`:
``spark-submit.sh``, ``spark-sql``). Embedded Derby admits one JVM per database, and the
test session holds the shared one; so before the first such command the scratch project
gets a copy of that metastore where its profile looks for one
(``<project>/lakehouse/metastore_db``). The copy names the same table locations, so the
subprocess reads and writes the same Delta tables the in-process commands did.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers import REPO

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

BIN = Path(sys.executable).parent
JARS = REPO / ".lakeforge" / "jars"


@dataclass(frozen=True)
class Outcome:
    """What a command left behind: the parts of ``subprocess.CompletedProcess`` tests read."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Project:
    root: Path
    spark: SparkSession
    _metastore_copied: bool = field(default=False, repr=False)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
        env["LAKEFORGE_JARS_DIR"] = str(JARS)
        env.pop("LAKEFORGE_ENV", None)
        return env

    def run(
        self, *args: str, check: bool = True, timeout: int = 600
    ) -> subprocess.CompletedProcess[str]:
        """A command in a subprocess, from the project folder (no JVM: see :meth:`run_jvm`)."""
        proc = subprocess.run(
            list(args),
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def run_jvm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command that starts its own JVM (spark-submit, spark-sql) in a subprocess."""
        if not self._metastore_copied:
            copy_derby(shared_metastore(self.spark), self.root / "lakehouse" / "metastore_db")
            self._metastore_copied = True
        return self.run(*args, check=check)

    def lakeforge(self, *args: str, check: bool = True) -> Outcome:
        """``lakeforge ARGS`` in-process, on the shared session, from the project folder."""
        from click.testing import CliRunner

        from lakeforge.cli.main import cli

        runner = CliRunner(env={"LAKEFORGE_ENV": None, "LAKEFORGE_JARS_DIR": str(JARS)})
        with contextlib.chdir(self.root), runtime_conf_restored(self.spark):
            res = runner.invoke(cli, list(args), prog_name="lakeforge")
        stderr = res.stderr
        if res.exc_info is not None and not isinstance(res.exception, SystemExit):
            # What the interpreter would print for an uncaught exception, so tests that
            # say "no traceback" can still fail.
            stderr += "".join(traceback.format_exception(*res.exc_info))
        out = Outcome(tuple(args), res.exit_code, res.stdout, stderr)
        if check and out.returncode != 0:
            raise AssertionError(f"{args} exited {out.returncode}\n{out.stdout}\n{out.stderr}")
        return out

    def lakeforge_process(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``lakeforge ARGS`` through the console script, in a new process."""
        return self.run(str(BIN / "lakeforge"), *args, check=check)

    def sql_json(self, query: str) -> list[dict[str, Any]]:
        out = self.lakeforge("sql", query, "--format", "json").stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@contextlib.contextmanager
def runtime_conf_restored(spark: SparkSession) -> Iterator[None]:
    """Put back the runtime SQL settings a command changed on the shared session (a
    profile's ``spark.conf``, e.g. the example's ``spark.sql.shuffle.partitions: 8``)."""
    before = dict(spark.conf.getAll)
    try:
        yield
    finally:
        after = dict(spark.conf.getAll)
        for key in set(before) | set(after):
            if before.get(key) == after.get(key) or not spark.conf.isModifiable(key):
                continue
            if key in before:
                spark.conf.set(key, before[key])
            else:
                spark.conf.unset(key)


@contextlib.contextmanager
def environ_restored() -> Iterator[None]:
    """Put back ``os.environ`` as it was (scripts run in-process may set variables)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def shared_metastore(spark: SparkSession) -> Path:
    """The embedded Derby database of the running session."""
    url = spark.sparkContext.getConf().get("spark.hadoop.javax.jdo.option.ConnectionURL", "")
    match = re.search(r"databaseName=([^;]+)", url or "")
    assert match, f"the test session has no embedded Derby metastore: {url!r}"
    return Path(match.group(1))


def copy_derby(src: Path, dst: Path) -> None:
    """Copy a Derby database another JVM of this test run holds open (and idle).

    Its committed transactions are all in the write-ahead log (Derby forces the log at
    commit); data pages may be written later. Copying the data files first and the log
    last gives a copy Derby recovers like one after a crash: a page written while the
    data was copied has its log records in the log copied after it. The lock files are
    the holder's and stay behind.
    """
    assert src.is_dir(), f"no metastore at {src}"
    if dst.exists():
        shutil.rmtree(dst)
    lock_files = shutil.ignore_patterns("*.lck")
    shutil.copytree(src, dst, ignore=lambda d, names: {"log"} | lock_files(d, names))
    shutil.copytree(src / "log", dst / "log", ignore=lock_files)


def new_example_project(root: Path, spark: SparkSession) -> Project:
    """The repository's examples (jobs/ and conf/) copied into a scratch project."""
    shutil.copytree(REPO / "jobs", root / "jobs")
    shutil.copytree(REPO / "conf", root / "conf")
    return Project(root, spark)


def assert_tables_new(spark: SparkSession, tables: list[str]) -> None:
    """The example's tables must not exist yet in the shared metastore: its tests assert
    first versions (0) and would otherwise depend on what ran before them."""
    existing = [t for t in tables if spark.catalog.tableExists(t)]
    assert not existing, f"tables already in the shared test metastore: {existing}"


def pipeline_tables(pipeline: Path) -> list[str]:
    from lakeforge.plan.builder import build_plan
    from lakeforge.plan.load import load_pipeline

    with contextlib.chdir(pipeline.parents[2]):
        return [step.table for step in build_plan(load_pipeline(pipeline, "local")).steps]


@pytest.fixture(scope="module")
def retail_project(tmp_path_factory: pytest.TempPathFactory, spark: SparkSession) -> Project:
    """The flagship example in a scratch project, with days 1-3 of its feeds delivered."""
    project = new_example_project(tmp_path_factory.mktemp("retail-project"), spark)
    assert_tables_new(spark, pipeline_tables(project.root / "jobs" / "retail" / "pipeline.yml"))
    project.run(
        sys.executable, "jobs/retail/generate_data.py", "--days", "3", "--out", "data/raw/retail"
    )
    return project
