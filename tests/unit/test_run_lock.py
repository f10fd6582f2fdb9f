"""The per-pipeline run lock (no JVM): held across processes, named in the error, waited
for, reentrant in one process, and never stale after a SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lakeforge.errors import Code, RunError
from lakeforge.runtime.lock import (
    Holder,
    holds,
    lock_path,
    mark_ended,
    pipeline_lock,
    previous_run_ended,
    read_holder,
)

HOLDER = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from lakeforge.runtime.lock import pipeline_lock
    root, how = Path(sys.argv[1]), sys.argv[2]
    with pipeline_lock(root, "shop", "run-child"):
        print("held", flush=True)
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(float(how))
    """
)


def hold(root: Path, how: str) -> subprocess.Popen[str]:
    """A child process holding pipeline 'shop''s lock (``how``: seconds, or ``kill``)."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root), how], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "held"
    return child


def test_second_holder_fails_fast_naming_the_first(tmp_path: Path) -> None:
    child = hold(tmp_path, "30")
    try:
        t0 = time.monotonic()
        with pytest.raises(RunError) as err, pipeline_lock(tmp_path, "shop", "run-me"):
            pass
        assert time.monotonic() - t0 < 5
        assert err.value.code == Code.PIPELINE_LOCKED
        assert "run-child" in err.value.message
        assert f"pid {child.pid}" in err.value.message
        assert read_holder(lock_path(tmp_path, "shop")) == Holder(
            child.pid,
            "run-child",
            read_holder(lock_path(tmp_path, "shop")).since,  # type: ignore[union-attr]
        )
    finally:
        child.kill()
        child.wait()


def test_waiter_is_told_who_it_waits_for_then_runs(tmp_path: Path) -> None:
    child = hold(tmp_path, "1.5")
    told: list[Holder | None] = []
    t0 = time.monotonic()
    with pipeline_lock(tmp_path, "shop", "run-me", wait=60, on_wait=told.append):
        waited = time.monotonic() - t0
        assert read_holder(lock_path(tmp_path, "shop")).run_id == "run-me"  # type: ignore[union-attr]
    child.wait()
    assert len(told) == 1 and told[0] is not None and told[0].pid == child.pid
    assert 1.0 < waited < 30, "the child held it for 1.5 s after saying so"


def test_wait_times_out_with_the_code(tmp_path: Path) -> None:
    child = hold(tmp_path, "30")
    try:
        with pytest.raises(RunError) as err, pipeline_lock(tmp_path, "shop", "me", wait=0.6):
            pass
        assert err.value.code == Code.PIPELINE_LOCKED
        assert "after waiting 0.6s" in err.value.message
    finally:
        child.kill()
        child.wait()


def test_a_sigkilled_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    child = hold(tmp_path, "kill")
    assert child.wait() == -signal.SIGKILL
    # The file still names the dead holder, but its flock died with it.
    assert read_holder(lock_path(tmp_path, "shop")).pid == child.pid  # type: ignore[union-attr]
    with pipeline_lock(tmp_path, "shop", "run-next"):
        assert holds(tmp_path, "shop")


def test_reentrant_in_one_process_and_released_after(tmp_path: Path) -> None:
    with pipeline_lock(tmp_path, "shop", "outer"):
        with pipeline_lock(tmp_path, "shop", "inner"):
            assert holds(tmp_path, "shop")
        assert holds(tmp_path, "shop"), "the inner block released the outer's lock"
    assert not holds(tmp_path, "shop")
    child = hold(tmp_path, "0")  # another process can take it now
    assert child.wait() == 0


def test_lock_file_name_is_file_safe(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "../evil name")
    assert path.parent == (tmp_path / ".lakeforge" / "locks").resolve()
    assert path.name == ".._evil_name.lock"


def test_the_next_holder_knows_whether_the_last_run_recorded_its_end(tmp_path: Path) -> None:
    # No lock file yet (a new project folder): unknown, so the run must search.
    with pipeline_lock(tmp_path, "shop", "first"):
        assert not previous_run_ended(tmp_path, "shop")
    # Released without recording its end (e.g. the run raised before its end row).
    with pipeline_lock(tmp_path, "shop", "second"):
        assert not previous_run_ended(tmp_path, "shop")
        mark_ended(tmp_path, "shop")
        assert read_holder(lock_path(tmp_path, "shop")).run_id == "second"  # type: ignore[union-attr]
    with pipeline_lock(tmp_path, "shop", "third"):
        assert previous_run_ended(tmp_path, "shop")
        # The new holder's own line carries no end until it records one.
        assert '"ended"' not in lock_path(tmp_path, "shop").read_text()
    # A holder killed after the clean one: the next run searches again.
    child = hold(tmp_path, "kill")
    assert child.wait() == -signal.SIGKILL
    with pipeline_lock(tmp_path, "shop", "fourth"):
        assert not previous_run_ended(tmp_path, "shop")
    assert not previous_run_ended(tmp_path, "shop"), "only a holder knows"
