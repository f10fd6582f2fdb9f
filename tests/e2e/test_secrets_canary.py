"""Canary: a random secret in the environment, used by profiles and a pipeline, never printed.

The local profile sets an S3 secret key from ``${env:LF_CANARY_SECRET}``, the gold SQL uses
the same value as a literal in a WHERE clause (so it is never data), and a training set is
published from that gold table under that profile. Every command the ``lakeforge`` group
has (:data:`COMMANDS`; ``test_every_command_is_in_the_canary`` fails when a new one is
missing) runs in-process on the shared session, its stdout, stderr and the process's file
descriptors captured; a ``--debug`` traceback of a real ``lakeforge`` process is read too.

Then two processes with a JVM of their own, at once, both on an in-memory metastore
profile (``conf/mem.yml``) and both made to print the secret from inside the JVM (a task
failing with ``raise_error`` on the secret, read by Spark SQL from the session conf, so
it is on no command line): ``lakeforge sql`` (the JVM pyspark starts writes to the
process's fd 2, which :mod:`lakeforge.runtime.stderr_redact` routes through a redacting
pipe) and ``./spark-submit.sh sql`` (its JVM's stderr goes through ``lakeforge
redact-stream``), whose whole process tree's command lines are read from ``/proc`` while
it runs. Their outputs must show the mask where the JVM printed the secret.

Afterwards every file under the project and the shared lakehouse (Delta logs, parquet
files, reports, manifests, exports, the system tables' files) is searched for the canary;
the only file allowed to hold it is the 0600 properties file spark-submit reads.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from pyspark.sql import SparkSession

from lakeforge import redaction as secrets
from lakeforge.cli.main import cli
from lakeforge.redaction import RedactingStream
from tests.e2e.conftest import JARS, runtime_conf_restored
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

# The JVM subprocesses: no metastore to create or share, the secret in a conf Spark SQL
# can read (`${spark.lakeforge.canary}`: Spark's variable substitution). Their JVMs live
# for one query: C1-only JIT and the serial GC cost a third less CPU than the defaults.
MEM_PROFILE = """\
spark:
  master: local[1]
  conf:
    spark.driver.extraJavaOptions: -XX:TieredStopAtLevel=1 -XX:+UseSerialGC
    spark.hadoop.fs.s3a.secret.key: ${env:LF_CANARY_SECRET}
    spark.lakeforge.canary: ${env:LF_CANARY_SECRET}
    spark.ui.enabled: "false"
metastore: {kind: in-memory}
jar_bundles: [delta]
"""
JVM_FAILS_WITH_SECRET = "SELECT raise_error(concat('${spark.lakeforge.canary}', id)) FROM range(1)"


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
    columns: {{id: bigint, ts: timestamp, amount: "decimal(10,2)"}}
    expectations:
      - expect_column_values_to_be_between: {{column: amount, min_value: 0}}
gold:
  canary_{s}:
    sql: >-
      SELECT id, ts, amount * 2 AS doubled FROM silver.canary_{s}
      WHERE 'x' <> '${{env:LF_CANARY_SECRET}}'
"""


def training(s: str) -> str:
    return f"""\
name: canary_set_{s}
labels: {{table: silver.canary_{s}, keys: [id], event_time: ts, columns: [amount]}}
features:
  - {{table: gold.canary_{s}, keys: [id], event_time: ts, features: [doubled]}}
splits: {{salt: canary, fractions: {{train: 0.5, test: 0.5}}}}
"""


# keys must be a list: the error echoes the value it got.
def bad_pipeline(s: str) -> str:
    return pipeline(s).replace("keys: [id]", "keys: ${env:LF_CANARY_SECRET}")


# Every command, in the order the canary runs it in-process ({...}: filled in as it goes),
# with its expected exit status. redact-stream gets the canary on stdin.
COMMANDS: list[tuple[tuple[str, ...], int]] = [
    (("validate", "jobs/canary/pipeline.yml", "jobs/canary/training.yml"), 0),
    (("plan", "jobs/canary/pipeline.yml"), 0),
    (("plan", "--format", "text", "jobs/canary/pipeline.yml"), 0),
    (("plan", "--format", "json", "jobs/canary/pipeline.yml"), 0),
    (("validate", "jobs/canary/bad.yml"), 1),
    (("--debug", "plan", "jobs/canary/bad.yml"), 1),
    (("expectations",), 0),
    (("submit-args",), 0),
    (("redact-stream", "--", "run", "jobs/canary/pipeline.yml"), 0),
    (("jars", "resolve"), 0),
    (("jars", "warm"), 0),  # the archive ./dev setup made: says where it is
    (("run", "jobs/canary/pipeline.yml"), 0),
    (("sql", "SELECT count(*) AS n FROM gold.canary_{s}", "--format", "csv"), 0),
    (("sql", "SELECT error, status FROM lakeforge.runs", "--format", "json"), 0),
    (("--debug", "sql", "SELECT * FROM gold.nope_{s} WHERE 'y' = '{canary}'"), 1),
    (("history", "gold.canary_{s}"), 0),
    (("lineage", "gold.canary_{s}"), 0),
    (("lineage", "gold.canary_{s}", "--format", "json"), 0),
    (("quality",), 0),
    (("quality", "--format", "json"), 0),
    (("suggest", "silver.canary_{s}", "--out", "quality/suggested.json"), 0),
    (("publish", "jobs/canary/training.yml"), 0),
    (("training-sets", "--format", "json"), 0),
    (("reproduce", "{set_id}"), 0),
    # Absolute: in-process, Spark's JVM does not share the test's cwd.
    (("export", "{set_id}", "--split", "train", "--out", "{root}/exported"), 0),
    (("restore", "gold.canary_{s}", "--to-version", "0"), 0),
    (("diff", "gold.canary_{s}@0", "gold.canary_{s}", "--keys", "id"), 0),
    (("ingest", "skip", "raw/items/b.csv"), 0),
    (("ingest", "retry", "raw/items/b.csv"), 0),
    (("runs", "repair"), 0),  # after the retry nothing is left to decide
    # The canary's profile has no object store: land refuses in one coded line. Landing
    # for real, with the S3 server's secret key as the canary: tests/e2e/test_s3_retail.py.
    (("land", "raw/items", "s3://canary-bucket/raw/"), 1),
    # The JDBC server against a port the test holds: refused before a JVM starts, after
    # the profile (and its secret) resolved. Served for real: tests/e2e/test_shared_metastore.py.
    (("serve", "--port", "{taken}"), 1),
]


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every runnable command of ``group``, hidden ones included, as its words."""
    paths: set[tuple[str, ...]] = set()
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            paths |= command_paths(command, (*prefix, name))
        else:
            paths.add((*prefix, name))
    return paths


def words(args: tuple[str, ...]) -> tuple[str, ...]:
    """The command words of an argument list (options before them skipped)."""
    rest = [a for a in args if a != "--debug"]
    group_names = {"jars", "ingest", "runs"}
    return tuple(rest[:2]) if rest[0] in group_names else (rest[0],)


def test_every_command_is_in_the_canary() -> None:
    covered = {words(args) for args, _ in COMMANDS}
    missing = command_paths(cli) - covered
    assert not missing, f"commands the secrets canary does not run: {sorted(missing)}"
    assert covered <= command_paths(cli), covered - command_paths(cli)


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


def start(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        cwd=cwd,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so a timeout can end all of it
    )


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
    (root / "conf" / "mem.yml").write_text(MEM_PROFILE)
    jobs = root / "jobs" / "canary"
    jobs.mkdir(parents=True)
    (jobs / "pipeline.yml").write_text(pipeline(s))
    (jobs / "bad.yml").write_text(bad_pipeline(s))
    (jobs / "training.yml").write_text(training(s))
    (root / "raw" / "items").mkdir(parents=True)
    (root / "raw" / "items" / "a.csv").write_text(
        "id,ts,amount\n"
        "1,2026-01-01 10:00:00,2.50\n2,2026-01-01 11:00:00,3.00\n"
        "3,2026-01-02 09:00:00,4.00\n4,2026-01-02 10:00:00,5.00\n"
        "5,2026-01-02 11:00:00,oops\n"
    )
    (root / "raw" / "items" / "b.csv").write_bytes(b"")  # rejected: for ingest skip/retry
    # Delta stats and truncated renderings keep a prefix: search for one.
    needle = canary[:24]
    texts: dict[str, str] = {}
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    values = {
        "s": s,
        "canary": canary,
        "set_id": "",
        "root": str(root),
        "taken": str(taken.getsockname()[1]),
    }
    last_stdout = [""]

    def lf(args: tuple[str, ...], code: int) -> str:
        argv = [a.format(**values) for a in args]
        runner = CliRunner(env={"LAKEFORGE_ENV": None, "LAKEFORGE_JARS_DIR": str(JARS)})
        old = Path.cwd()
        os.chdir(root)
        try:
            with runtime_conf_restored(spark):
                res = runner.invoke(cli, argv, input=f"a JVM line: {canary}\n")
        finally:
            os.chdir(old)
        out = res.stdout + res.stderr
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            # What the real process prints for an uncaught exception (--debug): Python's
            # traceback, written to the stderr that main() wrapped in the redactor.
            buf = io.StringIO()
            stream = RedactingStream(buf)
            stream.write("".join(traceback.format_exception(res.exception)))
            stream.flush()
            out += buf.getvalue()
        assert res.exit_code == code, f"{argv}: {out}"
        texts[" ".join(argv)] = out
        last_stdout[:] = [res.stdout]
        return out

    for args, code in COMMANDS:
        out = lf(args, code)
        if args[0] == "plan" and "text" in args:
            assert secrets.MASK in out
        elif args[0] == "redact-stream":
            assert f"a JVM line: {secrets.MASK}\n" in out
        elif args[0] == "run":
            assert "ok" in out
        elif args[:2] == ("sql", "SELECT count(*) AS n FROM gold.canary_{s}"):
            assert "\n4\n" in out  # 5 rows, one quarantined
        elif args[0] == "publish":
            values["set_id"] = last_stdout[0].split()[-1]
        elif "bad.yml" in args:
            assert "LF-CFG-004" in out
        elif args[0] == "serve":
            assert "already taken" in out
    taken.close()
    assert (root / "exported").is_dir() and (root / "quality" / "suggested.json").is_file()
    texts["fds during in-process commands"] = "".join(capfd.readouterr())

    # A real process: --debug traceback (no JVM).
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

    # Two JVMs at once, each printing the secret from inside the JVM: pyspark's
    # (lakeforge sql) and spark-submit's, whose process tree's command lines are read.
    gateway = start(
        [str(REPO / ".venv" / "bin" / "lakeforge"), "sql", "--env", "mem", JVM_FAILS_WITH_SECRET],
        root,
    )
    submit = start(
        [str(REPO / "spark-submit.sh"), "--env", "mem", "sql", JVM_FAILS_WITH_SECRET], root
    )
    seen: dict[int, bytes] = {}
    deadline = time.monotonic() + 600
    while submit.poll() is None and time.monotonic() < deadline:
        for pid in descendants(submit.pid):
            line = cmdline(pid)
            if line:
                seen[pid] = line
        time.sleep(0.05)
    outputs = {}
    for name, proc in (("lakeforge sql", gateway), ("spark-submit.sh sql", submit)):
        try:
            out_b, err_b = proc.communicate(timeout=max(deadline - time.monotonic(), 60))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out_b, err_b = proc.communicate(timeout=60)
        stdout, stderr = out_b.decode(errors="replace"), err_b.decode(errors="replace")
        # Spark's task failure: the error class on stdout (translated), the JVM's log on
        # stderr, the secret masked in both.
        assert proc.returncode == 1, f"{name}: {stdout}{stderr}"
        assert "USER_RAISED_EXCEPTION" in stdout + stderr, f"{name}: {stdout}{stderr}"
        jvm_lines = [
            line for line in stderr.splitlines() if "Exception" in line and "USER_RAISED" in line
        ]
        assert jvm_lines, f"{name}: the JVM printed no task failure: {stderr}"
        assert all(secrets.MASK in line for line in jvm_lines), jvm_lines
        texts[name] = outputs[name] = stdout + stderr
    java = [c for c in seen.values() if b"org.apache.spark.deploy.SparkSubmit" in c]
    assert java, "never saw the spark-submit JVM"
    assert any(b"--properties-file" in c for c in java)
    assert any(b"redact-stream" in c for c in seen.values())
    assert len(seen) >= 4  # the script, its JVM(s), the Python driver, the redactor
    for pid, line in seen.items():
        assert needle.encode() not in line, f"canary on the command line of {pid}"

    for name, text in texts.items():
        assert needle not in text, f"canary printed by: {name}"

    # The conf did travel, only through these files (submit-args in-process, spark-submit).
    props = [root / ".lakeforge" / "secrets" / f"submit-{e}.properties" for e in ("local", "mem")]
    for path in props:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert canary in path.read_text()
    files = [p for base in (root, lakehouse_root) for p in base.rglob("*") if p.is_file()]
    mine = [p for p in files if root in p.parents]
    assert any(p.suffix == ".html" for p in mine)  # a quality report
    assert any(p.suffix == ".json" and "training_sets" in p.parts for p in mine)  # a manifest
    assert any(p.suffix == ".parquet" and "exported" in p.parts for p in mine)
    assert any("_delta_log" in p.parts for p in files)
    leaks = [p for p in files if p not in props and needle.encode() in p.read_bytes()]
    assert not leaks, f"canary written to {leaks}"
