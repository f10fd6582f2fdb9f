"""The per-pipeline run lock: one run of a pipeline at a time in a project.

A run holds ``<project>/.lakeforge/locks/<pipeline>.lock`` with ``flock(LOCK_EX)`` from
before its SparkSession starts until it ends; the file holds the holder's pid and run id
as JSON, so a second run can say who it is waiting for. The kernel drops an flock when
its process dies (SIGKILL included), so a lock is never stale: the file a killed run
leaves behind is simply taken by the next run.

The lock is reentrant within a process (the CLI takes it before Spark starts, and
:func:`~lakeforge.pipeline.executor.execute` takes it again for in-process callers): a
second ``flock`` on a new descriptor would block on our own lock.

Holding the lock also proves that no other process of this project is running the
pipeline, which is what lets a run mark leftover ``running`` rows as ``interrupted``.
A run whose end is recorded says so in the file (``ended``) before it lets go: the next
holder then knows that the run before it left nothing ``running`` and skips that search
(a query over ``lakeforge.run_events``). A file without ``ended`` (a killed run, an older
lakeforge) or no file at all (a new project folder) means: search.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lakeforge.errors import Code, RunError

LOCK_DIR = Path(".lakeforge") / "locks"
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a pipeline's lock, as its lock file says."""

    pid: int
    run_id: str
    since: str

    def describe(self) -> str:
        return f"run {self.run_id} (pid {self.pid}, since {self.since})"


@dataclass
class _Held:
    fd: int
    run_id: str
    since: str
    # The file as we found it named a holder whose end was recorded (see ``mark_ended``).
    previous_ended: bool
    depth: int = 1


_HELD: dict[Path, _Held] = {}


def lock_path(project_root: Path, pipeline: str) -> Path:
    """``<project>/.lakeforge/locks/<pipeline>.lock`` (the name made file-safe)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", pipeline) or "_"
    return (project_root / LOCK_DIR / f"{safe}.lock").resolve()


def read_holder(path: Path) -> Holder | None:
    """The holder a lock file names; None if it is missing, empty or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Holder(int(data["pid"]), str(data["run_id"]), str(data.get("since", "?")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def holds(project_root: Path, pipeline: str) -> bool:
    """True if this process holds the pipeline's lock."""
    return lock_path(project_root, pipeline) in _HELD


def _ended(path: Path) -> bool:
    """True if the lock file names a holder that recorded its run's end."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and bool(data.get("ended"))


def previous_run_ended(project_root: Path, pipeline: str) -> bool:
    """True if the run that held this pipeline's lock before us recorded its end, so no
    run of this project's pipeline can be left ``running``. False when unknown (no file,
    a killed holder, an older lakeforge's file) or when we do not hold the lock."""
    held = _HELD.get(lock_path(project_root, pipeline))
    return held is not None and held.previous_ended


def mark_ended(project_root: Path, pipeline: str) -> None:
    """Say in the lock file that our run's end is recorded (call after recording it, while
    holding the lock): the next holder may then skip the search for interrupted runs."""
    held = _HELD.get(lock_path(project_root, pipeline))
    if held is None:
        return
    ended = datetime.now(UTC).isoformat(timespec="seconds")
    _write(
        held.fd, {"pid": os.getpid(), "run_id": held.run_id, "since": held.since, "ended": ended}
    )


def _write(fd: int, data: dict[str, object]) -> None:
    body = json.dumps(data).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, body, 0)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _locked_error(pipeline: str, path: Path, waited: float) -> RunError:
    holder = read_holder(path)
    who = holder.describe() if holder else "another process"
    after = f" after waiting {waited:g}s" if waited else ""
    return RunError(
        Code.PIPELINE_LOCKED,
        f"pipeline '{pipeline}' is already being run by {who}{after} (lock {path})",
        "let it finish, or rerun with --wait SECONDS to queue behind it",
    )


@contextmanager
def pipeline_lock(
    project_root: Path,
    pipeline: str,
    run_id: str,
    wait: float = 0.0,
    on_wait: Callable[[Holder | None], None] | None = None,
) -> Iterator[Path]:
    """Hold the pipeline's lock for the duration of the block.

    Args:
        project_root: the project whose ``.lakeforge/locks/`` holds the lock file.
        pipeline: the pipeline's name.
        run_id: written into the lock file with this pid, for whoever waits.
        wait: seconds to wait for a holder to finish (0: fail at once).
        on_wait: called once, with the holder, when the lock is busy and we wait.

    Yields:
        The lock file's path.

    Raises:
        RunError: ``LF-RUN-011`` another process holds the lock (after ``wait`` seconds),
            naming its run id and pid.
    """
    path = lock_path(project_root, pipeline)
    held = _HELD.get(path)
    if held is not None:  # reentrant: the outer block releases it
        held.depth += 1
        try:
            yield path
        finally:
            held.depth -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        started = time.monotonic()
        told = False
        while not _try_lock(fd):
            waited = time.monotonic() - started
            if waited >= wait:
                raise _locked_error(pipeline, path, round(wait, 3))
            if not told and on_wait is not None:
                on_wait(read_holder(path))
            told = True
            time.sleep(min(POLL_SECONDS, max(wait - waited, 0.0)))
        # Ours now: read how the last holder left it, then say who holds it (a reader may
        # see the file empty for an instant).
        previous_ended = _ended(path)
        since = datetime.now(UTC).isoformat(timespec="seconds")
        _write(fd, {"pid": os.getpid(), "run_id": run_id, "since": since})
        _HELD[path] = _Held(fd, run_id, since, previous_ended)
        try:
            yield path
        finally:
            del _HELD[path]
            # The file stays (unlinking would race a waiter holding the old inode).
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
