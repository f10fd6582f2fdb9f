"""``lakeforge serve``: SQL over JDBC / ODBC for BI tools, through Spark's Thrift server.

Spark's Thrift server (``HiveThriftServer2``, in pyspark's own jars) speaks HiveServer2's
protocol: what Tableau, Power BI, DBeaver, Superset, beeline and every Hive / Spark SQL
JDBC or ODBC driver connect to. It runs as its own JVM, started through pyspark's
``spark-submit`` with the profile's settings and cached jars exactly as
``spark-submit.sh`` passes them (secrets in a 0600 properties file, never on the
command line), so the tables, Delta time travel (``VERSION AS OF``) and the metastore
are those of ``lakeforge run`` under the same profile.

With the embedded Derby metastore the server holds it while it runs: runs and
``lakeforge sql --engine spark`` under that profile get ``LF-RT-006`` until it stops. A profile
whose metastore is shared (``kind: postgres``, conf/shared.yml) lets them all work at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace

import click

from lakeforge.cli.context import env_option, project_root

THRIFT_SERVER = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
READY_TIMEOUT_S = 300.0


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


@click.command("serve")
@env_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=10000, show_default=True, type=int, help="Thrift (JDBC) port.")
def serve_command(env: str, host: str, port: int) -> None:
    """Serve the lakehouse's tables over JDBC/ODBC (Spark's Thrift server) until stopped.

    Connect with jdbc:hive2://HOST:PORT/default (beeline, DBeaver, Superset's
    hive:// or Tableau's Spark SQL connector); Ctrl-C stops it.
    """
    from lakeforge.config.loader import load_profile
    from lakeforge.errors import Code, RuntimeSetupError
    from lakeforge.runtime import jars as jarcache
    from lakeforge.runtime.metastore import prepare
    from lakeforge.runtime.session import (
        METASTORE_GRACE_S,
        jars_dir_for,
        project_path,
        session_settings,
    )
    from lakeforge.runtime.spark_errors import wait_metastore_free
    from lakeforge.runtime.submit import submit_options

    root = project_root()
    profile, _ = load_profile(env, root)
    settings = session_settings(profile, root, app_name=f"lakeforge-sql-server ({env})")
    if profile.metastore.kind == "postgres":
        prepare(profile.metastore, jarcache.bundle_jars(jars_dir_for(profile, root), "postgres"))
    elif profile.metastore.kind == "derby":
        wait_metastore_free(project_path(root, profile.metastore.path), METASTORE_GRACE_S)
        click.echo(
            f"lakeforge: note: profile '{env}' keeps table names in embedded Derby; while "
            "the server runs it holds them, and runs under this profile fail (LF-RT-006). "
            "A shared metastore (conf/shared.yml) lets both work at once.",
            err=True,
        )
    if settings.derby_home is not None:
        settings.derby_home.mkdir(parents=True, exist_ok=True)
    if _listening(host, port):
        raise RuntimeSetupError(
            Code.SPARK_START_FAILED,
            f"port {port} on {host} is already taken",
            "choose another with --port",
        )
    # Every jar on the server JVM's own class path as well: the sessions the Thrift server
    # opens per connection load the catalog (Delta's) through a class loader that does
    # not see spark.jars (ClassNotFoundException: DeltaCatalog at connect).
    classpath = [*settings.jars, *settings.driver_jars]
    settings = replace(
        settings,
        conf={
            **settings.conf,
            "spark.driver.extraClassPath": os.pathsep.join(str(j) for j in classpath),
        },
    )
    spark_home = jarcache.pyspark_jars_dir().parent
    command = [
        str(spark_home / "bin" / "spark-submit"),
        "--class",
        THRIFT_SERVER,
        "--name",
        settings.app_name,
        *submit_options(settings, root, env),
        "spark-internal",
        "--hiveconf",
        f"hive.server2.thrift.port={port}",
        "--hiveconf",
        f"hive.server2.thrift.bind.host={host}",
    ]
    child_env = {**os.environ, "SPARK_HOME": str(spark_home)}
    click.echo(f"lakeforge: starting Spark's Thrift server for profile '{env}'", err=True)
    # stderr is inherited: main() routes fd 2 through the redactor once a secret exists.
    proc = subprocess.Popen(command, cwd=root, env=child_env, stdin=subprocess.DEVNULL)

    def stop(signum: int, _frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while proc.poll() is None and not _listening(host, port):
            if time.monotonic() > deadline:
                proc.terminate()
                break
            time.sleep(0.3)
        if proc.poll() is None:
            click.echo(
                f"lakeforge: serving jdbc:hive2://{host}:{port}/default (Ctrl-C stops)",
                err=True,
            )
            sys.stderr.flush()
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # SIGTERM from us (or the user's Ctrl-C) is a clean stop.
    if code not in (0, -signal.SIGTERM, 143):
        raise RuntimeSetupError(
            Code.SPARK_START_FAILED,
            f"Spark's Thrift server exited with {code}",
            "its log is above",
        )


def register(group: click.Group) -> None:
    group.add_command(serve_command)
