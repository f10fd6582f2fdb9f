"""Fail points: kill the process at a named point, to prove crash safety in tests.

``LAKEFORGE_FAIL_POINT=<point>`` makes :func:`fail_point` SIGKILL the process when the
run reaches ``<point>``. :func:`fail_during` marks a block: armed as ``<point>`` it kills
on entering it, armed as ``<point>@<seconds>`` that many seconds after entering (a kill
*inside* a long Spark action such as a MERGE or a Delta commit). Points are
``<where>:<what>``, e.g. ``ingest.after_log:bronze.orders``, ``step.after:silver.orders``,
``conform.write:silver.orders@0.5``, ``system.append:table_versions@0.2``,
``publish.after_write:<set>``; README "Crash safety, tested" lists them all. Unset, they
cost one environment lookup. The idea is the fail points of TiKV's fail-rs / FreeBSD's
fail(9).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "LAKEFORGE_FAIL_POINT"


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
    """SIGKILL this process now if ``point`` is armed (without a delay)."""
    armed, delay = _armed(point)
    if armed and delay is None:
        _kill()


@contextmanager
def fail_during(point: str) -> Iterator[None]:
    """SIGKILL the process on entering if ``point`` is armed, or ``seconds`` after
    entering if ``point@seconds`` is."""
    armed, delay = _armed(point)
    timer = None
    if armed and delay is None:
        _kill()
    if armed:
        timer = threading.Timer(delay or 0.0, _kill)
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
