"""Object storage against a real S3 server (SeaweedFS on loopback, tests/s3server.py).

Raw files are landed with ``lakeforge land`` (boto3, versioned bucket), ingested from
``s3a://`` by the shared session through S3A, and traced: bronze rows and the ingestion
log carry each object's version id and ETag, a new version of a key is a changed file,
and the exact bytes of an overwritten or deleted version can still be fetched by id.
"""

from __future__ import annotations

import json
import os
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pyspark.sql import SparkSession

from lakeforge.cli.main import cli
from lakeforge.errors import Code
from lakeforge.lineage.system_tables import INGESTED_FILES
from lakeforge.pipeline.executor import execute
from lakeforge.plan.builder import build_plan
from lakeforge.plan.load import load_pipeline
from lakeforge.results import RunResult
from tests.helpers import make_project
from tests.s3server import S3Server

pytestmark = pytest.mark.spark

DAY1 = "order_id,amount\n1,10.00\n2,20.00\n"
DAY2 = "order_id,amount\n3,30.00\n"
DAY1_FIXED = "order_id,amount\n1,10.50\n2,20.00\n4,40.00\n"


class Zone:
    """A scratch project whose raw zone is a fresh versioned bucket on the server."""

    def __init__(
        self,
        root: Path,
        server: S3Server,
        monkeypatch: pytest.MonkeyPatch,
        on_changed: str = "fail",
    ) -> None:
        self.s = uuid.uuid4().hex[:6]
        self.root = root
        self.server = server
        self.bucket = f"raw-{self.s}"
        server.create_bucket(self.bucket)
        # The bucket comes from the environment, as in conf/s3.yml: every ${env:} value is
        # a secret to lakeforge's outputs, and must still not change the ingestion log.
        monkeypatch.setenv(f"LF_RAW_BUCKET_{self.s}", self.bucket)
        self.bronze = f"bronze.orders_{self.s}"
        pipeline = f"""\
            name: s3shop_{self.s}
            bronze:
              orders_{self.s}:
                source: {{format: csv, path: "${{var:raw_root}}/orders"}}
                on_changed_file: {on_changed}
            silver:
              orders_{self.s}:
                from: bronze.orders_{self.s}
                keys: [order_id]
                mode: merge
                columns:
                  order_id: bigint
                  amount: decimal(10,2)
            """
        profile = f"""\
            s3:
              endpoint: {server.endpoint}
              path_style: true
              multipart_threshold_mb: 5
            vars:
              raw_root: s3a://${{env:LF_RAW_BUCKET_{self.s}}}/shop
            allowed_roots: ["s3a://${{env:LF_RAW_BUCKET_{self.s}}}/"]
            """
        self.path = make_project(root, textwrap.dedent(pipeline), {"local": profile})
        self.local = root / "outbox"
        self.local.mkdir()

    def land(self, monkeypatch: pytest.MonkeyPatch, name: str, text: str) -> dict[str, Any]:
        """``lakeforge land`` one file into orders/, through the CLI; its printed row."""
        path = self.local / name
        path.write_text(text)
        monkeypatch.chdir(self.root)
        out = CliRunner().invoke(
            cli, ["land", str(path), f"s3://{self.bucket}/shop/orders/", "--format", "json"]
        )
        assert out.exit_code == 0, out.output
        rows = [json.loads(line) for line in out.output.splitlines() if line.startswith("{")]
        assert len(rows) == 1
        row = rows[0]
        # The bucket is an ${env:} value of the profile: the CLI's output masks it.
        assert row["object"] == f"s3a://***/shop/orders/{name}"
        row["object"] = f"s3a://{self.bucket}/shop/orders/{name}"
        return row

    def run(self, spark: SparkSession) -> RunResult:
        loaded = load_pipeline(self.path)
        return execute(build_plan(loaded), spark, loaded.project_root)


def _bronze_versions(spark: SparkSession, table: str) -> dict[str, set[str]]:
    rows = spark.sql(
        f"SELECT _lf_source_file AS f, _lf_source_version_id AS v FROM {table}"
    ).collect()
    out: dict[str, set[str]] = {}
    for r in rows:
        out.setdefault(r["f"], set()).add(r["v"])
    return out


def test_land_then_ingest_records_object_versions(
    spark_s3: SparkSession,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    zone = Zone(tmp_path, s3_server, monkeypatch)
    d1 = zone.land(monkeypatch, "d1.csv", DAY1)
    d2 = zone.land(monkeypatch, "d2.csv", DAY2)
    assert d1["object"] == f"s3a://{zone.bucket}/shop/orders/d1.csv"
    assert d1["version_id"] and d2["version_id"] and d1["version_id"] != d2["version_id"]

    result = zone.run(spark_s3)
    assert result.ok, result.error
    assert (result.steps[0].rows_written, result.steps[0].files) == (3, 2)
    # Every bronze row names the object version it came from: the one land printed.
    assert _bronze_versions(spark_s3, zone.bronze) == {
        d1["object"]: {d1["version_id"]},
        d2["object"]: {d2["version_id"]},
    }
    log = spark_s3.sql(
        f"SELECT path, etag, version_id FROM {INGESTED_FILES} "
        f"WHERE table_name = '{zone.bronze}' AND status = 'committed'"
    ).collect()
    assert {(r["path"], r["etag"], r["version_id"]) for r in log} == {
        (d1["object"], d1["etag"], d1["version_id"]),
        (d2["object"], d2["etag"], d2["version_id"]),
    }
    # A rerun with nothing new reads nothing: the log holds the paths as listed (the
    # bucket is an ${env:} value, masked in outputs, never in the log's keys).
    again = zone.run(spark_s3)
    assert again.ok and again.steps[0].files == 0
    assert {r["path"] for r in log} == {d1["object"], d2["object"]}


def test_a_new_object_version_is_a_changed_file_and_the_old_bytes_stay_fetchable(
    spark_s3: SparkSession,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fails = Zone(tmp_path / "fails", s3_server, monkeypatch, on_changed="fail")
    reingests = Zone(tmp_path / "reingests", s3_server, monkeypatch, on_changed="reingest")
    first = {z.bucket: z.land(monkeypatch, "d1.csv", DAY1) for z in (fails, reingests)}
    assert all(z.run(spark_s3).ok for z in (fails, reingests))

    second = {z.bucket: z.land(monkeypatch, "d1.csv", DAY1_FIXED) for z in (fails, reingests)}
    failed = fails.run(spark_s3)
    assert not failed.ok
    assert failed.error_code == Code.FILE_CHANGED

    result = reingests.run(spark_s3)
    assert result.ok, result.error
    versions = _bronze_versions(spark_s3, reingests.bronze)
    key = second[reingests.bucket]["object"]
    assert versions == {
        key: {first[reingests.bucket]["version_id"], second[reingests.bucket]["version_id"]}
    }
    silver = {
        int(r["order_id"]): str(r["amount"])
        for r in spark_s3.table(reingests.bronze.replace("bronze.", "silver.")).collect()
    }
    assert silver == {1: "10.50", 2: "20.00", 4: "40.00"}

    # Overwritten, then deleted: the first version's bytes still come back by its id.
    s3 = s3_server.client()
    s3.delete_object(Bucket=reingests.bucket, Key="shop/orders/d1.csv")
    old = s3.get_object(
        Bucket=reingests.bucket,
        Key="shop/orders/d1.csv",
        VersionId=first[reingests.bucket]["version_id"],
    )["Body"].read()
    assert old.decode() == DAY1


def test_an_empty_prefix_and_a_missing_bucket_fail_with_codes(
    spark_s3: SparkSession,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    empty = Zone(tmp_path / "empty", s3_server, monkeypatch)
    result = empty.run(spark_s3)
    assert not result.ok
    assert result.error_code == Code.SOURCE_EMPTY

    missing = Zone(tmp_path / "missing", s3_server, monkeypatch)
    s3_server.client().delete_bucket(Bucket=missing.bucket)
    result = missing.run(spark_s3)
    assert not result.ok and result.error is not None
    assert result.error_code == Code.BUCKET_MISSING, result.error
    assert missing.bucket in result.error
    assert "Exception" not in result.error and "\n" not in result.error


def test_land_refuses_wrong_keys_an_unversioned_bucket_and_a_dead_endpoint(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakeforge.config.models import S3Settings
    from lakeforge.errors import StorageError
    from lakeforge.io.landing import land
    from lakeforge.io.s3 import client

    file = tmp_path / "f.csv"
    file.write_text(DAY1)
    bucket = f"plain-{uuid.uuid4().hex[:6]}"
    s3_server.create_bucket(bucket, versioned=False)
    settings = S3Settings(endpoint=s3_server.endpoint, path_style=True)
    with pytest.raises(StorageError) as unversioned:
        land(client(settings), settings, file, f"s3://{bucket}/x/")
    assert unversioned.value.code == Code.VERSIONING_OFF

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(StorageError) as denied:
        land(client(settings), settings, file, f"s3://{bucket}/x/")
    assert denied.value.code == Code.STORAGE_DENIED
    assert "not-the-secret" not in str(denied.value)

    from tests.s3server import free_ports

    dead = S3Settings(endpoint=f"http://127.0.0.1:{free_ports(1)[0]}", path_style=True)
    with pytest.raises(StorageError) as unreachable:
        land(client(dead), dead, file, f"s3://{bucket}/x/")
    assert unreachable.value.code == Code.STORAGE_UNREACHABLE
    assert dead.endpoint is not None and dead.endpoint in unreachable.value.message


def test_the_store_going_down_mid_run_fails_cleanly_and_a_rerun_completes(
    spark_s3: SparkSession,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import lakeforge.steps.ingest as ingest
    from lakeforge.io.delta import latest_version
    from lakeforge.lineage.system_tables import REJECTED_FILES

    zone = Zone(tmp_path / "outage", s3_server, monkeypatch)
    clean = Zone(tmp_path / "clean", s3_server, monkeypatch)
    zone.land(monkeypatch, "d1.csv", DAY1)
    assert zone.run(spark_s3).ok
    zone.land(monkeypatch, "d2.csv", DAY2)
    silver = zone.bronze.replace("bronze.", "silver.")
    before = {t: latest_version(spark_s3, t) for t in (zone.bronze, silver)}

    # The server stops once the ingest has logged its batch pending, before it reads.
    real = ingest.fail_point

    def outage(point: str) -> None:
        if point == f"ingest.after_log:{zone.bronze}":
            s3_server.stop()
        real(point)

    monkeypatch.setattr(ingest, "fail_point", outage)
    try:
        failed = zone.run(spark_s3)
    finally:
        monkeypatch.setattr(ingest, "fail_point", real)
        s3_server.restart()
    assert not failed.ok and failed.error is not None
    assert failed.error_code == Code.STORAGE_UNREACHABLE, failed.error
    assert s3_server.endpoint.removeprefix("http://") in failed.error
    assert {t: latest_version(spark_s3, t) for t in (zone.bronze, silver)} == before
    # An outage rejects no file: the batch waits, pending, for the next run.
    assert spark_s3.table(REJECTED_FILES).where(f"table_name = '{zone.bronze}'").count() == 0

    again = zone.run(spark_s3)
    assert again.ok, again.error
    assert again.steps[0].files == 1

    # The same tables as one clean run over both files.
    clean.land(monkeypatch, "d1.csv", DAY1)
    clean.land(monkeypatch, "d2.csv", DAY2)
    assert clean.run(spark_s3).ok

    def rows(table: str) -> list[tuple[object, ...]]:
        return sorted(
            tuple(r) for r in spark_s3.table(table).select("order_id", "amount").collect()
        )

    assert rows(zone.bronze) == rows(clean.bronze)
    assert rows(silver) == rows(clean.bronze.replace("bronze.", "silver."))


def test_a_second_writer_is_refused_by_the_warehouse_lease_until_it_ends_or_expires(
    s3_server: S3Server,
) -> None:
    import time

    from lakeforge.config.models import S3Settings
    from lakeforge.errors import RunError
    from lakeforge.io.lease import lease_for, writer_lease

    bucket = f"lake-{uuid.uuid4().hex[:6]}"
    s3_server.create_bucket(bucket)
    settings = S3Settings(endpoint=s3_server.endpoint, path_style=True)
    warehouse = f"s3a://{bucket}/warehouse"
    lease = lease_for(warehouse, "shop")
    s3 = s3_server.client()
    assert lease.key == "warehouse/_lakeforge/leases/shop.json"

    with writer_lease(settings, warehouse, "shop", "run-a", ttl=6.0):
        held = json.loads(s3.get_object(Bucket=bucket, Key=lease.key)["Body"].read())
        assert held["run_id"] == "run-a"
        with pytest.raises(RunError) as second, writer_lease(settings, warehouse, "shop", "run-b"):
            pass
        assert second.value.code == Code.PIPELINE_LOCKED
        assert "run-a" in second.value.message
        # Another pipeline has a lease of its own.
        with writer_lease(settings, warehouse, "other", "run-c"):
            pass
        # Renewed while held (every ttl/4): the expiry moves on.
        time.sleep(2.0)
        renewed = json.loads(s3.get_object(Bucket=bucket, Key=lease.key)["Body"].read())
        assert renewed["expires_at"] > held["expires_at"]
    # Released at the end: the next run takes it at once.
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=lease.key)
    with writer_lease(settings, warehouse, "shop", "run-b"):
        pass

    # A holder that died leaves its lease: it blocks until it expires, then is taken over.
    dead = {"run_id": "run-dead", "host": "gone", "pid": 1, "since": "2026-01-01T00:00:00+00:00"}
    s3.put_object(
        Bucket=bucket,
        Key=lease.key,
        Body=json.dumps({**dead, "expires_at": "2099-01-01T00:00:00+00:00"}).encode(),
    )
    with (
        pytest.raises(RunError, match="run-dead"),
        writer_lease(settings, warehouse, "shop", "run-d"),
    ):
        pass
    s3.put_object(
        Bucket=bucket,
        Key=lease.key,
        Body=json.dumps({**dead, "expires_at": "2026-01-01T00:02:00+00:00"}).encode(),
    )
    with writer_lease(settings, warehouse, "shop", "run-d"):
        taken = json.loads(s3.get_object(Bucket=bucket, Key=lease.key)["Body"].read())
        assert taken["run_id"] == "run-d"

    # A run that ended in an outage could not delete its lease. On this machine (same host
    # and boot), a holder whose process is gone, or this process with its run over, is
    # provably not running: the rerun takes over at once; a live process is waited for.
    import os
    import subprocess

    here = {"host": taken["host"], "boot": taken["boot"], "since": taken["since"]}
    assert here["boot"], "the lease names the kernel's boot id"
    exited = subprocess.Popen(["true"])
    exited.wait()
    unexpired = "2099-01-01T00:00:00+00:00"
    holders = {
        "dead-pid": {**here, "pid": exited.pid},
        "this-process-run-over": {**here, "pid": os.getpid()},
    }
    for run_id, holder in holders.items():
        body = {**holder, "run_id": run_id, "expires_at": unexpired}
        s3.put_object(Bucket=bucket, Key=lease.key, Body=json.dumps(body).encode())
        with writer_lease(settings, warehouse, "shop", f"after-{run_id}"):
            now = json.loads(s3.get_object(Bucket=bucket, Key=lease.key)["Body"].read())
            assert now["run_id"] == f"after-{run_id}"
    for run_id, holder in {
        "live-parent": {**here, "pid": os.getppid()},
        "other-boot": {**here, "boot": "another-boot", "pid": exited.pid},
    }.items():
        body = {**holder, "run_id": run_id, "expires_at": unexpired}
        s3.put_object(Bucket=bucket, Key=lease.key, Body=json.dumps(body).encode())
        with pytest.raises(RunError, match=run_id), writer_lease(settings, warehouse, "shop", "x"):
            pass
    # This process's own lease, while its run holds it, is never taken over.
    with (
        writer_lease(settings, warehouse, "other2", "inner"),
        pytest.raises(RunError, match="inner"),
        writer_lease(settings, warehouse, "other2", "second"),
    ):
        pass


def test_a_run_on_an_s3a_warehouse_takes_the_lease_and_is_refused_while_another_holds_it(
    spark_s3: SparkSession,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lakeforge.errors import RunError
    from lakeforge.io.lease import writer_lease

    zone = Zone(tmp_path, s3_server, monkeypatch)
    bucket = f"lake-{zone.s}"
    s3_server.create_bucket(bucket)
    profile = zone.path.parents[2] / "conf" / "local.yml"
    # The plan carries the profile's warehouse; the shared session keeps its own.
    profile.write_text(profile.read_text() + f"warehouse: s3a://{bucket}/warehouse\n")
    loaded = load_pipeline(zone.path)
    assert loaded.profile.s3 is not None
    lease = writer_lease(loaded.profile.s3, f"s3a://{bucket}/warehouse", f"s3shop_{zone.s}", "x")
    with lease, pytest.raises(RunError) as refused:
        execute(build_plan(loaded), spark_s3, loaded.project_root)
    assert refused.value.code == Code.PIPELINE_LOCKED


def test_an_object_deleted_between_listing_and_reading_is_rejected_and_the_rest_lands(
    spark_s3: SparkSession,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import lakeforge.steps.ingest as ingest
    from lakeforge.lineage.system_tables import REJECTED_FILES

    zone = Zone(tmp_path, s3_server, monkeypatch)
    d1 = zone.land(monkeypatch, "d1.csv", DAY1)
    d2 = zone.land(monkeypatch, "d2.csv", DAY2)
    real = ingest.with_versions

    def delete_then_ask(spark: SparkSession, files: Any) -> Any:
        # Listed already; gone (every version) before its version is asked and it is read.
        s3 = s3_server.client()
        s3.delete_object(Bucket=zone.bucket, Key="shop/orders/d2.csv", VersionId=d2["version_id"])
        return real(spark, files)

    monkeypatch.setattr(ingest, "with_versions", delete_then_ask)
    result = zone.run(spark_s3)
    assert result.ok, result.error
    assert (result.steps[0].files, result.steps[0].rows_written) == (1, 2)
    assert _bronze_versions(spark_s3, zone.bronze) == {d1["object"]: {d1["version_id"]}}
    rejected = spark_s3.table(REJECTED_FILES).where(f"table_name = '{zone.bronze}'").collect()
    # The report masks the ${env:} bucket; the ingestion log keeps the key exact.
    assert [r["path"] for r in rejected] == ["s3a://***/shop/orders/d2.csv"]
    assert rejected[0]["reason"].startswith("unreadable:")
    log = spark_s3.sql(
        f"SELECT path, status FROM {INGESTED_FILES} WHERE table_name = '{zone.bronze}' "
        "AND status = 'rejected'"
    ).collect()
    assert [(r["path"], r["status"]) for r in log] == [(d2["object"], "rejected")]


def test_land_streams_a_large_file_without_holding_it_in_memory(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """200 MB landed in parts by a process whose peak memory stays far below the file."""
    import subprocess
    import sys

    bucket = f"big-{uuid.uuid4().hex[:6]}"
    s3_server.create_bucket(bucket)
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        for _ in range(200):
            f.write(os.urandom(1024 * 1024))
    script = textwrap.dedent(
        f"""
        import json, resource, sys
        from pathlib import Path
        from lakeforge.config.models import S3Settings
        from lakeforge.io.landing import land
        from lakeforge.io.s3 import client
        settings = S3Settings(endpoint={s3_server.endpoint!r}, path_style=True,
                              multipart_threshold_mb=16)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        [x] = land(client(settings), settings, Path({str(big)!r}), "s3://{bucket}/in/")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"parts": x.parts, "size": x.version.size, "before_kb": before,
                          "peak_kb": peak}}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["size"] == 200 * 1024 * 1024 and out["parts"] == 13
    # At most 4 parts in flight (landing.UPLOAD_THREADS) of 16 MB, plus one being hashed;
    # the file itself is never read whole: the peak stays well under its 200 MB.
    assert out["peak_kb"] - out["before_kb"] < 120 * 1024, out
    head = s3_server.client().head_object(Bucket=bucket, Key="in/big.bin")
    assert head["ContentLength"] == 200 * 1024 * 1024


def test_an_ingest_pinned_to_an_older_object_version_reads_exactly_that_version(
    spark_s3: SparkSession,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    zone = Zone(tmp_path, s3_server, monkeypatch)
    v1 = zone.land(monkeypatch, "d1.csv", DAY1)
    v2 = zone.land(monkeypatch, "d1.csv", DAY1_FIXED)  # the latest version of the key
    d2 = zone.land(monkeypatch, "d2.csv", DAY2)
    assert v1["version_id"] != v2["version_id"]

    def pin(versions: dict[str, str]) -> None:
        lines = zone.path.read_text().splitlines(keepends=True)
        at = next(i for i, line in enumerate(lines) if line.startswith("    source:"))
        lines[at] = (
            '    source: {format: csv, path: "${var:raw_root}/orders", versions: '
            + json.dumps(versions)
            + "}\n"
        )
        zone.path.write_text("".join(lines))

    pin({v1["object"]: v1["version_id"]})
    result = zone.run(spark_s3)
    assert result.ok, result.error
    assert _bronze_versions(spark_s3, zone.bronze) == {
        v1["object"]: {v1["version_id"]},
        d2["object"]: {d2["version_id"]},
    }
    amounts = {
        int(r["order_id"]): str(r["amount"])
        for r in spark_s3.table(zone.bronze.replace("bronze.", "silver.")).collect()
    }
    assert amounts == {1: "10.00", 2: "20.00", 3: "30.00"}  # v1's rows, not v2's
    s3 = s3_server.client()
    staged = s3.list_objects_v2(Bucket=zone.bucket, Prefix="_lakeforge/pinned/")
    assert "Contents" not in staged  # the staged copy is gone once committed

    # The key deleted since: the pinned version is still what the source is; nothing new.
    s3.delete_object(Bucket=zone.bucket, Key="shop/orders/d1.csv")
    again = zone.run(spark_s3)
    assert again.ok and again.steps[0].files == 0

    pin({v1["object"]: "not-a-version"})
    wrong = zone.run(spark_s3)
    assert not wrong.ok and wrong.error_code == Code.OBJECT_MISSING, wrong.error
    assert "not-a-version" in (wrong.error or "")
