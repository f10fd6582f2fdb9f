"""Fail points: kill the process at a named point, to prove crash safety in tests.

``LAKEFORGE_FAIL_POINT=<point>`` makes :func:`fail_point` SIGKILL the process when the
run reaches ``<point>``. :func:`fail_during` marks a block: armed as ``<point>`` it kills
on entering it, armed as ``<point>@<seconds>`` that many seconds after entering (a kill
*inside* a long Spark action such as a MERGE or a Delta commit), or on leaving it if the
block ends sooner: an armed point always kills, however fast the machine. Points are
``<where>:<what>``, e.g. ``ingest.after_log:bronze.orders``, ``step.after:silver.orders``,
``conform.write:silver.orders@0.5``, ``system.append:table_versions@0.2``,
``publish.after_write:<set>``; README "Crash safety, tested" lists them all. Unset, they
cost one environment lookup. The idea is the fail points of TiKV's fail-rs / FreeBSD's
fail(9).

``LAKEFORGE_PAUSE_POINT=<point>`` with ``LAKEFORGE_PAUSE_DIR=<dir>`` is fail-rs's
``pause`` action instead: on reaching ``<point>`` the process writes ``<dir>/paused`` and
waits until ``<dir>/resume`` exists, so a test can change the world at an exact point of
a run in another process (stop the object store just before a Delta write) and let it go on.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "LAKEFORGE_FAIL_POINT"
PAUSE_ENV = "LAKEFORGE_PAUSE_POINT"
PAUSE_DIR_ENV = "LAKEFORGE_PAUSE_DIR"
# A paused run whose test died goes on by itself after this long.
PAUSE_TIMEOUT_S = 300.0


def _pause(point: str) -> None:
    if not os.environ.get(PAUSE_ENV) or os.environ[PAUSE_ENV] != point:
        return
    folder = Path(os.environ[PAUSE_DIR_ENV])
    # Written aside and renamed: a watcher that sees ``paused`` exist reads the whole point
    # (write_text creates the file before it writes; a loaded machine showed it empty).
    (folder / "paused.tmp").write_text(point)
    (folder / "paused.tmp").replace(folder / "paused")
    deadline = time.monotonic() + PAUSE_TIMEOUT_S
    while not (folder / "resume").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _armed(point: str) -> tuple[bool, float | None]:
    spec = os.environ.get(ENV, "")
    if not spec:
        return False, None
    name, _, delay = spec.partition("@")
    if name != point:
        return False, None
    return True, float(delay) if delay else None


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def fail_point(point: str) -> None:
    """SIGKILL this process now if ``point`` is armed (without a delay); pause if asked."""
    _pause(point)
    armed, delay = _armed(point)
    if armed and delay is None:
        _kill()


@contextmanager
def fail_during(point: str) -> Iterator[None]:
    """SIGKILL the process on entering if ``point`` is armed, or ``seconds`` after
    entering if ``point@seconds`` is (on leaving, if the block ends first); pause on
    entering if asked."""
    _pause(point)
    armed, delay = _armed(point)
    if armed and delay is None:
        _kill()
    if not armed:
        yield
        return
    fired = threading.Event()

    def fire() -> None:
        fired.set()
        _kill()

    timer = threading.Timer(delay or 0.0, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        # A commit faster than the delay (a warm JVM, a fast disk) must not turn an
        # armed kill into a clean run: the test that armed it expects a dead process.
        if not fired.is_set():
            _kill()
