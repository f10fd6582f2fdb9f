"""Canary: a random secret in the environment, used by a profile and a pipeline, never printed.

The profile sets an S3 secret key from ``${env:LF_CANARY_SECRET}`` and the gold SQL uses the
same value as a literal in a WHERE clause (so it is never data). Every command runs:
validate, plan (table, text, json), a config error and a SQL error (with ``--debug``), run,
sql and history in-process on the shared session (their stdout, stderr and the JVM's file
descriptors captured), the ``--debug`` traceback of a real ``lakeforge`` process, and one
``./spark-submit.sh run`` whose whole process tree's command lines are read from
``/proc`` while it runs. Afterwards every file under the project and the shared lakehouse
is searched for the canary; the only file allowed to hold it is the 0600 properties file
spark-submit reads.
"""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pyspark.sql import SparkSession

from lakeforge import redaction as secrets
from lakeforge.cli.main import cli
from lakeforge.redaction import RedactingStream
from tests.helpers import REPO

pytestmark = pytest.mark.spark

PROFILE = """\
spark:
  master: local[1]
  conf:
    spark.hadoop.fs.s3a.secret.key: ${env:LF_CANARY_SECRET}
warehouse: lakehouse/warehouse
metastore: {kind: derby, path: lakehouse/metastore_db}
jar_bundles: [delta]
"""


def pipeline(s: str) -> str:
    return f"""\
name: canary_{s}
bronze:
  canary_{s}:
    source: {{format: csv, path: raw/items/*.csv}}
silver:
  canary_{s}:
    from: bronze.canary_{s}
    keys: [id]
    columns: {{id: bigint, amount: "decimal(10,2)"}}
    expectations:
      - expect_column_values_to_be_between: {{column: amount, min_value: 0}}
gold:
  canary_{s}:
    sql: SELECT id, amount FROM silver.canary_{s} WHERE 'x' <> '${{env:LF_CANARY_SECRET}}'
"""


# keys must be a list: the error echoes the value it got.
def bad_pipeline(s: str) -> str:
    return pipeline(s).replace("keys: [id]", "keys: ${env:LF_CANARY_SECRET}")


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)  # holds LF_CANARY_SECRET
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["LAKEFORGE_JARS_DIR"] = str(REPO / ".lakeforge" / "jars")
    env.pop("LAKEFORGE_ENV", None)
    return env


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


@pytest.fixture
def canary(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    value = f"LFcanary{uuid.uuid4().hex}"
    monkeypatch.setenv("LF_CANARY_SECRET", value)
    yield value
    secrets.clear()


def test_canary_never_leaves_the_process(
    spark: SparkSession,
    lakehouse_root: Path,
    tmp_path: Path,
    canary: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    s = uuid.uuid4().hex[:8]
    root = tmp_path / "project"
    (root / "conf").mkdir(parents=True)
    (root / "conf" / "local.yml").write_text(PROFILE)
    jobs = root / "jobs" / "canary"
    jobs.mkdir(parents=True)
    (jobs / "pipeline.yml").write_text(pipeline(s))
    (jobs / "bad.yml").write_text(bad_pipeline(s))
    (root / "raw" / "items").mkdir(parents=True)
    (root / "raw" / "items" / "a.csv").write_text("id,amount\n1,2.50\n2,3.00\n3,oops\n")
    # Delta stats and truncated renderings keep a prefix: search for one.
    needle = canary[:24]
    texts: dict[str, str] = {}

    def lf(*args: str, code: int = 0) -> str:
        old = Path.cwd()
        os.chdir(root)
        try:
            res = CliRunner().invoke(cli, list(args))
        finally:
            os.chdir(old)
        out = res.output
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            # What the real process prints for an uncaught exception (--debug): Python's
            # traceback, written to the stderr that main() wrapped in the redactor.
            buf = io.StringIO()
            stream = RedactingStream(buf)
            stream.write("".join(traceback.format_exception(res.exception)))
            stream.flush()
            out += buf.getvalue()
        assert res.exit_code == code, f"{args}: {out}"
        texts[" ".join(args)] = out
        return out

    # No JVM: validate, plan, a config error.
    lf("validate", "jobs/canary/pipeline.yml")
    lf("plan", "jobs/canary/pipeline.yml")
    assert "***" in lf("plan", "--format", "text", "jobs/canary/pipeline.yml")
    lf("plan", "--format", "json", "jobs/canary/pipeline.yml")
    assert "LF-CFG-004" in lf("validate", "jobs/canary/bad.yml", code=1)
    assert "LF-CFG-004" in lf("--debug", "plan", "jobs/canary/bad.yml", code=1)
    debug = subprocess.run(
        [sys.executable, "-m", "lakeforge", "--debug", "plan", "jobs/canary/bad.yml"],
        cwd=root,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    texts["debug traceback"] = debug.stdout + debug.stderr

    # On the shared session (tables named canary_<s>): run, sql, history, a SQL error.
    out = lf("run", "jobs/canary/pipeline.yml")
    assert "ok" in out
    counted = lf("sql", f"SELECT count(*) AS n FROM gold.canary_{s}", "--format", "csv")
    assert counted.split()[-1] == "2"  # 3 rows, one quarantined
    lf("sql", "SELECT error, status FROM lakeforge.runs", "--format", "json")
    lf("history", f"gold.canary_{s}")
    lf("--debug", "sql", f"SELECT * FROM gold.nope_{s} WHERE 'y' = '{canary}'", code=1)
    spark.conf.unset("spark.hadoop.fs.s3a.secret.key")  # the profile set it on the shared session
    texts["fds during in-process commands"] = "".join(capfd.readouterr())

    # One real spark-submit: the command lines of its whole process tree, while it runs.
    proc = subprocess.Popen(
        [str(REPO / "spark-submit.sh"), "run", "jobs/canary/pipeline.yml"],
        cwd=root,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so a timeout can end all of it
    )
    seen: dict[int, bytes] = {}
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        for pid in descendants(proc.pid):
            line = cmdline(pid)
            if line:
                seen[pid] = line
        time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    out_b, err_b = proc.communicate(timeout=60)
    stdout, stderr = out_b.decode(errors="replace"), err_b.decode(errors="replace")
    assert proc.returncode == 0, stdout + stderr
    texts["spark-submit stdout+stderr"] = stdout + stderr
    java = [c for c in seen.values() if b"org.apache.spark.deploy.SparkSubmit" in c]
    assert java, "never saw the spark-submit JVM"
    assert any(b"--properties-file" in c for c in java)
    assert len(seen) >= 3  # the script, its JVM(s) and the Python driver
    for pid, line in seen.items():
        assert needle.encode() not in line, f"canary on the command line of {pid}"

    for name, text in texts.items():
        assert needle not in text, f"canary printed by: {name}"

    props = root / ".lakeforge" / "secrets" / "submit-local.properties"
    assert stat.S_IMODE(props.stat().st_mode) == 0o600
    assert canary in props.read_text()  # the conf did travel, only through this file
    files = [p for base in (root, lakehouse_root) for p in base.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files if root in p.parents)
    assert any("_delta_log" in p.parts for p in files if root in p.parents)
    assert any(p.suffix == ".html" for p in files if root in p.parents)  # a quality report
    leaks = [p for p in files if p != props and needle.encode() in p.read_bytes()]
    assert not leaks, f"canary written to {leaks}"
