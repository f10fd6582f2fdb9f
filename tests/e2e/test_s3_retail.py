"""The flagship retail pipeline with every table on a real S3 server (``--env s3``).

A scratch copy of the project, the real ``conf/s3.yml``, SeaweedFS on loopback with two
fresh buckets (warehouse and versioned raw zone). One process of its own (a JVM started
from ``conf/s3.yml``, jar bundle ``s3`` on its class path) does what a user would: land
days 1-3 with ``lakeforge land``, run, land days 4-5, run again, then time travel, diff,
restore, the quality report, and publish + reproduce --verify a training set. The test
then checks from outside: every table's files are objects in the warehouse bucket, none
on local disk; bronze rows name the raw object versions; and the server's secret key is
in no output, no local file and no stored object (the secrets canary for object storage).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO
from tests.s3server import S3Server

pytestmark = pytest.mark.e2e

TRAINING = """\
name: order_status
description: Order status per customer with the customer's segment as of the order.
labels:
  table: silver.orders
  keys: [customer_id]
  event_time: order_ts
  columns: [status]
features:
  - table: silver.customers
    keys: [customer_id]
    event_time: updated_at
    features: [segment, country]
splits:
  salt: s3-2026
  fractions: {train: 0.8, test: 0.2}
"""

# Runs in a process of its own, from the scratch project; prints one JSON line last.
DRIVER = r"""
import json, subprocess, sys
from pathlib import Path

from click.testing import CliRunner
from pyspark.sql import SparkSession

import lakeforge
from lakeforge.cli.main import cli
from lakeforge.config.loader import load_profile
from lakeforge.io.landing import land
from lakeforge.io.s3 import client

raw_bucket = sys.argv[1]
profile, _ = load_profile("s3", Path.cwd())
s3 = client(profile.s3)
out = {}

def deliver(*args):
    folder = Path("outbox") / "-".join(args)
    subprocess.run([sys.executable, "jobs/retail/generate_data.py", "--out", str(folder), *args],
                   check=True, capture_output=True)
    return [x.version.version_id for x in land(s3, profile.s3, folder, f"s3://{raw_bucket}/retail/")]

def cli_run(*args):
    res = CliRunner().invoke(cli, [*args, "--env", "s3"], prog_name="lakeforge")
    print(res.output, file=sys.stderr)
    return res.exit_code

def cli_out(*args):
    res = CliRunner().invoke(cli, [*args, "--env", "s3"], prog_name="lakeforge")
    assert res.exit_code == 0, res.output
    return res.stdout

out["landed_1"] = deliver("--days", "3")
r1 = lakeforge.run("jobs/retail/pipeline.yml", env="s3")
out["run_1"] = [r1.ok, r1.error]
out["landed_2"] = deliver("--days", "5", "--only", "4,5")
r2 = lakeforge.run("jobs/retail/pipeline.yml", env="s3")
out["run_2"] = [r2.ok, r2.error, [s.files for s in r2.steps if s.kind == "ingest"]]
spark = SparkSession.getActiveSession()
q = lambda sql: [r.asDict() for r in spark.sql(sql).collect()]
out["revenue_v0"] = q("SELECT count(*) AS n FROM gold.daily_revenue VERSION AS OF 0")[0]["n"]
out["revenue_now"] = q("SELECT count(*) AS n FROM gold.daily_revenue")[0]["n"]
out["locations"] = {
    t: q(f"DESCRIBE DETAIL {t}")[0]["location"]
    for t in ("bronze.orders", "silver.orders", "silver.customers", "gold.daily_revenue",
              "lakeforge.run_events", "lakeforge.ingested_files", "lakeforge.table_versions")
}
out["bronze_versions"] = sorted(
    r["v"] for r in q("SELECT DISTINCT _lf_source_version_id AS v FROM bronze.orders"))
out["log_versions"] = q(
    "SELECT count(*) AS n, count(version_id) AS with_version FROM lakeforge.ingested_files "
    "WHERE status = 'committed'")[0]
out["quarantine_rows"] = q("SELECT count(*) AS n FROM silver.orders__quarantine")[0]["n"]
# The fast SQL engine (delta-rs, no JVM) reads the same tables on the store, by version
# and by time (commit objects' LastModified, as Delta on S3A sees them).
def fast_sql(query):
    res = CliRunner().invoke(
        cli, ["sql", query, "--env", "s3", "--engine", "fast", "--format", "json"],
        prog_name="lakeforge")
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.stdout.splitlines()]
v1_time = q("DESCRIBE HISTORY gold.daily_revenue")[0]["timestamp"].strftime("%Y-%m-%dT%H:%M:%S.%f")
out["fast_sql"] = [
    fast_sql("SELECT count(*) AS n FROM gold.daily_revenue@0"),
    fast_sql(f"SELECT count(*) AS n FROM gold.daily_revenue@{v1_time}"),
    fast_sql("SELECT status, count(*) AS n FROM silver.orders GROUP BY status ORDER BY status"),
]
out["spark_sql"] = q("SELECT status, count(*) AS n FROM silver.orders GROUP BY status ORDER BY status")
out["diff_exit"] = cli_run("diff", "gold.daily_revenue@0", "gold.daily_revenue", "--keys", "order_date")
out["restore_exit"] = cli_run("restore", "gold.daily_revenue", "--to-version", "0")
out["restored_n"] = q("SELECT count(*) AS n FROM gold.daily_revenue")[0]["n"]
out["quality_exit"] = cli_run("quality")
published = lakeforge.publish("jobs/retail/training/order_status.yml", env="s3")
out["published"] = published.id
out["raw_objects"] = published.manifest["raw_objects"]
out["manifest_file_raw"] = json.loads(Path(published.manifest_path).read_text())["raw_objects"]
out["lineage"] = json.loads(cli_out("lineage", "gold.daily_revenue@1", "--format", "json"))
out["training_location"] = q(f"DESCRIBE DETAIL training.order_status")[0]["location"]
reproduced = lakeforge.reproduce(published.id, verify=True, env="s3")
# What the Spark UI's environment tab shows: Spark's conf, Hadoop's, the JVM's properties.
import os
secret = os.environ["AWS_SECRET_ACCESS_KEY"]
jvm = spark.sparkContext._jvm
hadoop = spark.sparkContext._jsc.hadoopConfiguration()
entries = [f"{k}={v}" for k, v in spark.sparkContext.getConf().getAll()]
it = hadoop.iterator()
while it.hasNext():
    e = it.next()
    entries.append(f"{e.getKey()}={e.getValue()}")
props = jvm.java.lang.System.getProperties()
for name in props.stringPropertyNames().toArray():
    entries.append(f"{name}={props.getProperty(name)}")
out["environment_entries"] = len(entries)
out["environment_with_secret"] = [e.split("=", 1)[0] for e in entries if secret in e]
out["reproduced"] = bool(reproduced.verified)
print(json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def s3_retail(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> dict[str, object]:
    root = tmp_path_factory.mktemp("s3retail")
    shutil.copytree(REPO / "jobs", root / "jobs")
    shutil.copytree(REPO / "conf", root / "conf")
    (root / "jobs" / "retail" / "training").mkdir()
    (root / "jobs" / "retail" / "training" / "order_status.yml").write_text(TRAINING)
    s = uuid.uuid4().hex[:6]
    warehouse, raw = f"lake-{s}", f"raw-{s}"
    s3_server.create_bucket(warehouse)
    s3_server.create_bucket(raw)
    (root / "driver.py").write_text(textwrap.dedent(DRIVER))
    env = dict(os.environ)
    env.update(s3_server.env())
    env.update(
        {
            "LAKEFORGE_S3_BUCKET": warehouse,
            "LAKEFORGE_RAW_BUCKET": raw,
            "LAKEFORGE_JARS_DIR": str(REPO / ".lakeforge" / "jars"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
        }
    )
    env.pop("LAKEFORGE_ENV", None)
    proc = subprocess.run(
        [sys.executable, "driver.py", raw],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "root": root,
        "env": env,
        "out": result,
        "stdout": proc.stdout,
        "stderr": proc.stderr,
        "buckets": (warehouse, raw),
        "server": s3_server,
    }


def test_retail_runs_twice_with_every_table_on_the_server(s3_retail: dict[str, object]) -> None:
    out = s3_retail["out"]
    assert isinstance(out, dict)
    warehouse, _ = s3_retail["buckets"]  # type: ignore[misc]
    assert out["run_1"] == [True, None], out["run_1"]
    ok, error, files = out["run_2"]
    assert ok and error is None
    assert files == [2, 2, 2]  # only days 4 and 5 of each feed
    for table, location in out["locations"].items():
        assert location.startswith(f"s3a://{warehouse}/warehouse/"), (table, location)
    assert out["training_location"].startswith(f"s3a://{warehouse}/warehouse/")
    root = s3_retail["root"]
    assert isinstance(root, Path)
    # Nothing of the lakehouse on local disk but the metastore (names and locations).
    assert not (root / "lakehouse" / "warehouse").exists()
    assert (root / "lakehouse" / "metastore_s3").is_dir()
    server = s3_retail["server"]
    assert isinstance(server, S3Server)
    keys = _keys(server, warehouse)
    assert any(k.startswith("warehouse/silver.db/orders/_delta_log/") for k in keys)
    assert any(k.startswith("warehouse/lakeforge.db/run_events/_delta_log/") for k in keys)
    # Each run held the warehouse's writer lease and gave it back.
    assert not [k for k in keys if k.startswith("warehouse/_lakeforge/leases/")]


def test_bronze_and_the_log_name_the_raw_object_versions(s3_retail: dict[str, object]) -> None:
    out = s3_retail["out"]
    assert isinstance(out, dict)
    landed = set(out["landed_1"]) | set(out["landed_2"])
    assert len(landed) == 15  # 3 feeds x 5 days, each a version of its own
    # bronze.orders' rows came from the 5 order files' versions, and only from them.
    assert len(out["bronze_versions"]) == 5 and set(out["bronze_versions"]) <= landed
    assert out["log_versions"]["n"] == out["log_versions"]["with_version"] == 15


def test_time_travel_diff_restore_quality_and_training_sets_work_there(
    s3_retail: dict[str, object],
) -> None:
    out = s3_retail["out"]
    assert isinstance(out, dict)
    assert (out["revenue_v0"], out["revenue_now"]) == (3, 5)
    # The fast engine on the object store: the same counts by version and by time.
    at0, at1, by_status = out["fast_sql"]
    assert (at0, at1) == ([{"n": 3}], [{"n": 5}])
    assert by_status == out["spark_sql"] and len(by_status) >= 3
    assert out["diff_exit"] == 0 and out["restore_exit"] == 0
    assert out["restored_n"] == 3
    assert out["quality_exit"] == 0
    assert out["quarantine_rows"] > 0
    assert out["published"].startswith("order_status-v")
    assert out["reproduced"] is True


def test_the_secret_key_is_nowhere(s3_retail: dict[str, object]) -> None:
    server = s3_retail["server"]
    root = s3_retail["root"]
    assert isinstance(server, S3Server) and isinstance(root, Path)
    secret = server.secret_key.encode()
    for text in (s3_retail["stdout"], s3_retail["stderr"]):
        assert isinstance(text, str) and server.secret_key not in text
    out = s3_retail["out"]
    assert isinstance(out, dict)
    # Nothing the Spark UI's environment tab shows holds it (Spark, Hadoop, JVM settings).
    assert out["environment_entries"] > 500
    assert out["environment_with_secret"] == []
    written = [p for p in root.rglob("*") if p.is_file() and p.name != "driver.py"]
    assert len(written) > 20
    assert [p for p in written if secret in p.read_bytes()] == []
    s3 = server.client()
    for bucket in s3_retail["buckets"]:  # type: ignore[attr-defined]
        for key in _keys(server, bucket):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert secret not in body, (bucket, key)


def test_lineage_and_the_manifest_name_the_raw_versions_and_their_bytes_stay(
    s3_retail: dict[str, object],
) -> None:
    import hashlib

    out = s3_retail["out"]
    server = s3_retail["server"]
    root = s3_retail["root"]
    assert isinstance(out, dict) and isinstance(server, S3Server) and isinstance(root, Path)
    _, raw = s3_retail["buckets"]  # type: ignore[misc]
    landed = set(out["landed_1"]) | set(out["landed_2"])

    # gold.daily_revenue@1 (the second run's; @2 is the restore) <- silver.orders,
    # silver.order_lines <- bronze: 10 raw object versions.
    def objects(node: dict[str, Any]) -> list[dict[str, Any]]:
        return node["objects"] + [o for up in node["upstream"] for o in objects(up)]

    in_lineage = {o["version_id"] for o in objects(out["lineage"])}
    assert len(in_lineage) == 10 and in_lineage <= landed

    # The training set: silver.orders and silver.customers <- 5 + 5 raw object versions.
    record = out["raw_objects"]
    assert record == out["manifest_file_raw"]
    assert record["count"] == len(record["objects"]) == 10
    assert {o["version_id"] for o in record["objects"]} <= landed
    lines = "".join(
        f"{o['path']}\t{o['version_id'] or ''}\t{o['etag'] or ''}\n" for o in record["objects"]
    )
    assert record["sha256"] == hashlib.sha256(lines.encode()).hexdigest()

    # Overwrite and delete every raw object; each version that fed the set still gives
    # back the exact bytes that were landed (the local copy and the sha256 stored then).
    s3 = server.client()
    for o in record["objects"]:
        bucket, key = o["path"].removeprefix("s3a://").split("/", 1)
        assert bucket == raw
        s3.put_object(Bucket=raw, Key=key, Body=b"overwritten")
        s3.delete_object(Bucket=raw, Key=key)
    for o in record["objects"]:
        key = o["path"].split("/", 3)[3]
        got = s3.get_object(Bucket=raw, Key=key, VersionId=o["version_id"])
        body = got["Body"].read()
        local = next((root / "outbox").rglob(key.rsplit("/", 1)[1])).read_bytes()
        assert body == local
        assert got["Metadata"]["lakeforge-sha256"] == hashlib.sha256(body).hexdigest()


def test_wrong_keys_are_one_coded_line_from_spark(s3_retail: dict[str, object]) -> None:
    env = dict(s3_retail["env"])  # type: ignore[call-overload]
    env["AWS_SECRET_ACCESS_KEY"] = "wrong-" + uuid.uuid4().hex
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "lakeforge"),
            "sql",
            "--env",
            "s3",
            "SELECT count(*) FROM bronze.orders",
        ],
        cwd=s3_retail["root"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error ")]
    assert len(errors) == 1 and "LF-S3-002" in errors[0], proc.stderr[-3000:]
    assert "Exception" not in errors[0] and "\tat " not in proc.stderr


def _keys(server: S3Server, bucket: str) -> list[str]:
    s3 = server.client()
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys
