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
