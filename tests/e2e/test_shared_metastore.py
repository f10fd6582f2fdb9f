"""Several processes on one metastore at once: PostgreSQL behind Spark's Hive client
(``conf/shared.yml``), with the JDBC server, pipeline runs and ``lakeforge sql`` running
side by side, and a real JDBC client (pyspark's beeline) reading gold over the wire.

A scratch copy of the tiny pipeline gets the repository's ``conf/shared.yml`` (its
``spark:`` section swapped for the tiny profile's short-lived-JVM settings), a fresh
PostgreSQL cluster (tests/pgserver.py), and these processes, each a JVM of its own:

1. ``lakeforge serve`` starts first: it finds an empty database and makes the Hive
   client's schema (runtime/metastore.py), then serves JDBC.
2. While it serves, ``lakeforge run`` and ``lakeforge sql --engine spark`` start
   together: three JVMs on one metastore (with Derby the second would get LF-RT-006).
3. A second batch, a second run: gold gets version 1. Beside it, ``lakeforge sql
   --engine fast`` (no JVM) answers from a committed version.
4. beeline asks the server for gold now and ``VERSION AS OF 0``: tables another process
   created after the server started, with Delta time travel, equal to what the Delta
   log holds. The table names are rows of PostgreSQL's ``TBLS``.

The role's password lives only in the pgpass file: no output may show it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyspark.sql import SparkSession

from tests.e2e.conftest import BIN, JARS
from tests.helpers import REPO, deliver_tiny, new_tiny_project
from tests.pgserver import PgServer
from tests.s3server import free_ports

pytestmark = pytest.mark.e2e

PIPELINE = "jobs/tiny/pipeline.yml"
LAKEFORGE = str(BIN / "lakeforge")


def shared_profile(root: Path) -> None:
    """The repository's conf/shared.yml with the tiny profile's Spark settings."""
    shared: dict[str, Any] = yaml.safe_load((REPO / "conf" / "shared.yml").read_text())
    tiny: dict[str, Any] = yaml.safe_load((root / "conf" / "local.yml").read_text())
    shared["spark"] = tiny["spark"]
    shared["jar_bundles"] = ["delta", "postgres"]
    (root / "conf" / "shared.yml").write_text(yaml.safe_dump(shared, sort_keys=False))


def beeline(port: int, sql: str) -> list[str]:
    """Rows (CSV lines, header first) beeline prints for ``sql`` against the server."""
    spark_home = Path(__import__("pyspark").__file__).parent
    proc = subprocess.run(
        [
            str(spark_home / "bin" / "beeline"),
            "-u",
            f"jdbc:hive2://127.0.0.1:{port}/default",
            "-n",
            "analyst",
            "--silent=true",
            "--showHeader=true",
            "--outputformat=csv2",
            "-e",
            sql,
        ],
        env={**os.environ, "SPARK_HOME": str(spark_home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"beeline: {proc.stdout}\n{proc.stderr}"
    # Its prompt ("0: jdbc:hive2://...> ") comes before each statement's first line.
    lines = [re.sub(r"^\d+: jdbc:hive2://\S+> ", "", line) for line in proc.stdout.splitlines()]
    return [line for line in lines if line.strip()]


def test_a_server_runs_and_sql_share_one_postgres_metastore(
    spark: SparkSession, pg_server: PgServer, tmp_path: Path
) -> None:
    sfx = f"_{uuid.uuid4().hex[:8]}"
    gold = f"gold.customer_value{sfx}"
    root = new_tiny_project(tmp_path / "project", sfx)
    shared_profile(root)
    env = {
        **os.environ,
        **pg_server.env(),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "LAKEFORGE_JARS_DIR": str(JARS),
    }
    env.pop("PGPASSWORD", None)
    password = pg_server.pgpass.read_text().strip().rsplit(":", 1)[1]
    outputs: dict[str, str] = {}

    def run(name: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [LAKEFORGE, *args, "--env", "shared"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(name: str, proc: subprocess.Popen[str]) -> str:
        out, err = proc.communicate(timeout=600)
        outputs[name] = out + err
        assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{out}\n{err}"
        return out

    port = free_ports(1)[0]
    server = subprocess.Popen(
        [LAKEFORGE, "serve", "--env", "shared", "--port", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not _listening(port):
            assert server.poll() is None, f"serve exited: {server.communicate()}"
            assert time.monotonic() < deadline, "the Thrift server never listened"
            time.sleep(0.5)
        # The server made the metastore's schema in PostgreSQL.
        assert pg_server.psql('SELECT count(*) FROM "DBS"').strip() != ""

        # Three JVMs on one metastore: the server, a run and a Spark SQL query.
        deliver_tiny(root, 1)
        first = run("run 1", "run", PIPELINE)
        query = run("sql", "sql", "--engine", "spark", "SHOW DATABASES", "--format", "csv")
        assert "default" in finish("sql", query)
        finish("run 1", first)
        deliver_tiny(root, 2)
        second = run("run 2", "run", PIPELINE)
        # The fast engine beside a writing run: no JVM, no metastore, a committed version.
        fast = run(
            "fast sql",
            "sql",
            "--engine",
            "fast",
            f"SELECT count(*) AS n FROM {gold}",
            "--format",
            "csv",
        )
        fast_out = finish("fast sql", fast)
        finish("run 2", second)

        # Over JDBC, from the server that started before these tables existed.
        lines = beeline(
            port,
            f"SELECT count(*) AS n FROM {gold}; "
            f"SELECT count(*) AS n FROM {gold} VERSION AS OF 0; "
            f"SELECT customer_id FROM {gold} ORDER BY customer_id",
        )
        outputs["beeline"] = "\n".join(lines)
        location = root / "lakehouse" / "shared" / "warehouse" / "gold.db" / f"customer_value{sfx}"
        now = spark.read.format("delta").load(str(location))
        at0 = spark.read.format("delta").option("versionAsOf", 0).load(str(location))
        assert now.count() != at0.count() or now.exceptAll(at0).count() > 0, "no change to see"
        assert re.search(rf"^({now.count()}|{at0.count()})$", fast_out, re.MULTILINE), fast_out
        assert "fast engine" in outputs["fast sql"]
        ids = sorted(str(r["customer_id"]) for r in now.select("customer_id").collect())
        assert lines == ["n", str(now.count()), "n", str(at0.count()), "customer_id", *ids]
        names = pg_server.psql('SELECT "TBL_NAME" FROM "TBLS"').split()
        assert f"customer_value{sfx}" in names and f"orders{sfx}" in names
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=120)
        outputs["serve"] = out + err
    assert server.returncode == 0, outputs["serve"]
    assert f"serving jdbc:hive2://127.0.0.1:{port}/default" in outputs["serve"]
    for name, text in outputs.items():
        assert password not in text, f"the metastore password in {name}'s output"


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
