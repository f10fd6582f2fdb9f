"""Fail points without a process to kill: the pause action's rendezvous (lakeforge/faults.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from lakeforge import faults


def test_pause_waits_at_its_point_until_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(faults.PAUSE_ENV, "conform.write:silver.orders")
    monkeypatch.setenv(faults.PAUSE_DIR_ENV, str(tmp_path))
    faults.fail_point("step.after:silver.orders")  # another point: no pause
    assert not (tmp_path / "paused").exists()

    passed = threading.Event()

    def run() -> None:
        with faults.fail_during("conform.write:silver.orders"):
            passed.set()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while not (tmp_path / "paused").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert (tmp_path / "paused").read_text() == "conform.write:silver.orders"
    time.sleep(0.2)
    assert not passed.is_set(), "went on before it was resumed"
    (tmp_path / "resume").touch()
    worker.join(timeout=10)
    assert passed.is_set()


def test_a_delayed_kill_fires_inside_a_slow_block_and_on_leaving_a_fast_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kills: list[str] = []
    monkeypatch.setattr(faults, "_kill", lambda: kills.append("kill"))

    monkeypatch.setenv(faults.ENV, "system.append:ingested_files@0.05")
    with faults.fail_during("system.append:ingested_files"):
        time.sleep(0.5)
        inside = list(kills)
    assert inside == ["kill"] and kills == ["kill"]  # the timer's, none again on leaving

    kills.clear()
    monkeypatch.setenv(faults.ENV, "system.append:ingested_files@60")
    with faults.fail_during("system.append:ingested_files"):
        assert kills == []
    assert kills == ["kill"]  # faster than its delay: killed on leaving, not spared

    kills.clear()
    with faults.fail_during("system.append:run_end"):  # not armed
        pass
    assert kills == []
