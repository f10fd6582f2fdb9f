"""A real PostgreSQL server on loopback for tests and people: a shared Hive metastore.

The server is Debian's (``apt-get install postgresql``, which ``./dev test`` and
``./dev pg`` run when it is missing). :func:`start` makes a throw-away cluster with
``initdb`` in a folder of its own, starts ``postgres`` on a free port of 127.0.0.1 (no
Unix socket in a shared folder), with password authentication (scram) for one role, and
creates the metastore database. The password is written only to a pgpass file (mode
0600) that PostgreSQL's JDBC driver and ``psql`` read through ``PGPASSFILE``: it never
appears in a profile, a Spark setting or a command line. If it cannot start,
:func:`start` raises with the server's log tail: tests fail, they never skip.

PostgreSQL refuses to run as root; as root, the cluster belongs to the ``postgres``
system user the Debian package creates, and the server runs as that user.

``python -m tests.pgserver`` (``./dev pg``) runs one in the foreground and prints the
environment to export for ``--env shared``.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.s3server import _die_with_parent, free_ports

START_TIMEOUT_S = 60.0
ROLE = "lakeforge"
DATABASE = "metastore"


def pg_bin() -> Path:
    """The newest installed PostgreSQL's bin folder (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed: apt-get install -y postgresql (./dev test does)"
        )
    return found[-1].parent


@dataclass
class PgServer:
    host: str
    port: int
    database: str
    user: str
    workdir: Path
    pgpass: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.database}"

    @property
    def log(self) -> Path:
        return self.workdir / "postgres.log"

    def env(self) -> dict[str, str]:
        """What a process needs for ``--env shared`` (conf/shared.yml)."""
        return {"LAKEFORGE_PG_PORT": str(self.port), "PGPASSFILE": str(self.pgpass)}

    def psql(self, sql: str, database: str | None = None) -> str:
        """Run ``sql`` with psql as the metastore's role (password from the pgpass file),
        in ``database`` (default: the metastore's)."""
        out = subprocess.run(
            [
                str(pg_bin() / "psql"),
                "-X",
                "-w",
                "-At",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database or self.database,
                "-c",
                sql,
            ],
            env={**os.environ, "PGPASSFILE": str(self.pgpass)},
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"psql failed: {out.stderr.strip()}")
        return out.stdout

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # SIGINT: PostgreSQL's "fast" shutdown (roll back sessions, checkpoint, exit).
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return "(no log)"


def _as_owner(owner: pwd.struct_passwd | None) -> dict[str, object]:
    """Popen arguments that run a program as the cluster's owner (when we are root)."""
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


def start(pgpass_dir: Path) -> PgServer:
    """Start a fresh PostgreSQL cluster on a free loopback port with the metastore's role
    and database; the role's password goes to ``pgpass_dir/pgpass`` (mode 0600).

    Raises:
        RuntimeError: PostgreSQL missing, ``initdb`` failed, or no answer in time.
    """
    binaries = pg_bin()
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    # Outside pytest's tmp folders: those are mode 0700 and root's, and the server may
    # run as another user. The cluster is removed by stop().
    workdir = Path(tempfile.mkdtemp(prefix="lakeforge-pg-"))
    password = secrets.token_urlsafe(18)
    pwfile = workdir / "pwfile"
    pwfile.write_text(password + "\n")
    if owner is not None:
        for path in (workdir, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    data = workdir / "data"
    init = subprocess.run(
        [
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            ROLE,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=workdir,
        **_as_owner(owner),  # type: ignore[arg-type]
    )
    pwfile.unlink()
    if init.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stderr[-2000:]}")

    pgpass_dir.mkdir(parents=True, exist_ok=True)
    pgpass = pgpass_dir / "pgpass"
    host, port = "127.0.0.1", free_ports(1)[0]
    fd = os.open(pgpass, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{host}:{port}:*:{ROLE}:{password}\n")
    server = PgServer(host, port, DATABASE, ROLE, workdir, pgpass)
    log = server.log.open("ab")
    if owner is not None:
        os.chown(server.log, owner.pw_uid, owner.pw_gid)
    server.proc = subprocess.Popen(
        [
            str(binaries / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            f"listen_addresses={host}",
            "-c",
            f"unix_socket_directories={workdir}",
            "-c",
            "fsync=off",  # a throw-away cluster: durability is not what is tested here
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        preexec_fn=_die_with_parent,
        **_as_owner(owner),  # type: ignore[arg-type]
    )
    log.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        if (code := server.proc.poll()) is not None:
            tail = server._tail()
            server.stop()
            raise RuntimeError(f"postgres exited with {code}:\n{tail}")
        try:
            # Connect to the role's own maintenance database, then make the metastore's.
            server.psql(f"CREATE DATABASE {DATABASE}", database="postgres")
            return server
        except RuntimeError as exc:
            last = str(exc)
            time.sleep(0.3)
    tail = server._tail()
    server.stop()
    raise RuntimeError(f"PostgreSQL did not answer in {START_TIMEOUT_S} s ({last}):\n{tail}")


def main() -> None:
    """Run a server in the foreground until Ctrl-C; print what to export."""
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".lakeforge/pg")
    server = start(folder.resolve())
    for key, value in server.env().items():
        print(f"export {key}={value}")
    print(f"# PostgreSQL {server.jdbc_url} (role {server.user}); Ctrl-C stops it and removes it")
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    try:
        signal.sigwait(stop)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
