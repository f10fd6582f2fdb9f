"""A writer lease on object storage: one run of a pipeline at a time, across machines.

Delta Lake on S3 without a coordinating log store (DynamoDB, or a catalog that commits)
is safe for one writer per table at a time: S3 has no put-if-absent in the Hadoop path
Delta's S3 log store uses, so two drivers committing the same version at once can both
"succeed" and one commit is lost (Delta's docs: "S3SingleDriverLogStore ... concurrent
writes from multiple Spark drivers ... can lead to data loss"). The per-project run lock
(:mod:`lakeforge.runtime.lock`) stops a second run on the same machine and folder, not a
second machine or another clone.

So a run whose warehouse is on ``s3a://`` also holds a lease object in that warehouse,
``<warehouse>/_lakeforge/leases/<pipeline>.json``, taken with S3's conditional write
(``PutObject`` with ``If-None-Match: *``: exactly one writer creates it; AWS S3, MinIO and
SeaweedFS honour it). It names the holder (run id, host, pid) and an expiry, which a
thread renews with ``If-Match`` on the lease's ETag while the run lasts; the run deletes
it at the end. A second run finds it and fails at once with ``LF-RUN-011`` naming the
holder. A lease whose holder died (SIGKILL, a lost machine) expires after
:data:`TTL_SECONDS`; the next run takes it over with ``If-Match`` on the expired lease's
ETag, so two runs cannot both take over the same dead lease.

A run that ends while the store is unreachable (an outage) cannot delete its lease. The
rerun after the store is back need not wait out the TTL when the holder is provably gone:
it ran on this machine (same host name and kernel boot id) and its process no longer
exists, or it is this very process and its run is over. Anything else (another machine,
a live process) is waited for.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lakeforge.config.models import S3Settings
from lakeforge.errors import Code, RunError
from lakeforge.io.s3 import client, split_uri, storage_error

TTL_SECONDS = 120.0
LEASE_DIR = "_lakeforge/leases"
# Run ids whose lease this process holds now (in-process runs: notebooks, tests).
_HELD: set[str] = set()


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class Lease:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def lease_for(warehouse: str, pipeline: str) -> Lease:
    """The lease object of ``pipeline`` in an ``s3a://`` warehouse."""
    bucket, prefix = split_uri(warehouse)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in pipeline) or "_"
    key = "/".join(p for p in (prefix.strip("/"), LEASE_DIR, f"{safe}.json") if p)
    return Lease(bucket, key)


def _body(run_id: str, ttl: float) -> bytes:
    now = datetime.now(UTC)
    return json.dumps(
        {
            "run_id": run_id,
            "host": socket.gethostname(),
            "boot": _boot_id(),
            "pid": os.getpid(),
            "since": now.isoformat(timespec="milliseconds"),
            "expires_at": (now + timedelta(seconds=ttl)).isoformat(timespec="milliseconds"),
        }
    ).encode()


def _precondition_failed(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    # 412: someone else wrote first; 409: a conflicting conditional write in flight.
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (412, 409)


def _holder_is_gone(holder: dict[str, Any]) -> bool:
    """True only when the holder provably cannot be running (see the module's notes)."""
    boot = _boot_id()
    if not boot or holder.get("host") != socket.gethostname() or holder.get("boot") != boot:
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return holder.get("run_id") not in _HELD
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _take(s3: Any, lease: Lease, run_id: str, pipeline: str, ttl: float) -> str:
    """Create the lease (or take over an expired one); its ETag. Raises if it is held."""
    try:
        put = s3.put_object(
            Bucket=lease.bucket, Key=lease.key, Body=_body(run_id, ttl), IfNoneMatch="*"
        )
        return str(put["ETag"])
    except Exception as exc:
        if not _precondition_failed(exc):
            raise
    got = s3.get_object(Bucket=lease.bucket, Key=lease.key)
    etag = str(got["ETag"])
    holder = json.loads(got["Body"].read() or b"{}")
    expires = datetime.fromisoformat(str(holder.get("expires_at", "1970-01-01T00:00:00+00:00")))
    if expires > datetime.now(UTC) and not _holder_is_gone(holder):
        raise RunError(
            Code.PIPELINE_LOCKED,
            f"pipeline '{pipeline}' is being run by run {holder.get('run_id')} on "
            f"{holder.get('host')} (pid {holder.get('pid')}, since {holder.get('since')}): it "
            f"holds the warehouse's writer lease {lease.uri} until {holder.get('expires_at')}",
            "Delta on S3 is safe for one writer per table at a time; wait for that run, "
            f"or, if it is gone, for its lease to expire ({int(ttl)} s after its last renewal)",
        )
    try:  # expired or its holder gone: take it over, unless another run just did
        put = s3.put_object(
            Bucket=lease.bucket, Key=lease.key, Body=_body(run_id, ttl), IfMatch=etag
        )
    except Exception as exc:
        if _precondition_failed(exc):
            raise RunError(
                Code.PIPELINE_LOCKED,
                f"pipeline '{pipeline}': another run took over the stale lease {lease.uri}",
            ) from None
        raise
    return str(put["ETag"])


@contextmanager
def writer_lease(
    settings: S3Settings, warehouse: str, pipeline: str, run_id: str, ttl: float = TTL_SECONDS
) -> Iterator[Lease]:
    """Hold ``pipeline``'s writer lease in the ``s3a://`` ``warehouse`` for the block.

    Raises:
        RunError: ``LF-RUN-011`` another run holds an unexpired lease.
        StorageError: the store is unreachable, refuses us, or the bucket is missing.
    """
    s3 = client(settings)
    lease = lease_for(warehouse, pipeline)
    try:
        etag = _take(s3, lease, run_id, pipeline, ttl)
    except RunError:
        raise
    except Exception as exc:
        raise storage_error(exc, settings, f"writer lease {lease.uri}") from exc
    stop = threading.Event()
    current = {"etag": etag}

    def renew() -> None:
        while not stop.wait(ttl / 4):
            try:
                put = s3.put_object(
                    Bucket=lease.bucket,
                    Key=lease.key,
                    Body=_body(run_id, ttl),
                    IfMatch=current["etag"],
                )
                current["etag"] = str(put["ETag"])
            except Exception:  # a store hiccup: the next renewal tries again
                continue

    thread = threading.Thread(target=renew, name=f"lakeforge-lease-{pipeline}", daemon=True)
    thread.start()
    _HELD.add(run_id)
    try:
        yield lease
    finally:
        _HELD.discard(run_id)
        stop.set()
        thread.join(timeout=5)
        try:
            # Only our own lease: a run that outlived its lease must not delete the next.
            head = s3.head_object(Bucket=lease.bucket, Key=lease.key)
            if str(head["ETag"]) == current["etag"]:
                s3.delete_object(Bucket=lease.bucket, Key=lease.key)
        except Exception:  # unreachable now: the lease expires on its own
            pass
