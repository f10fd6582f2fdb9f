"""The ingest step's decisions without a JVM: accounting from the files, the log checked
against Delta's last batch, the forms of a path an operator types."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lakeforge.errors import Code, RunError
from lakeforge.io.delta import Commit
from lakeforge.io.files import BatchRead, RejectedFile
from lakeforge.io.listing import FileInfo
from lakeforge.plan.steps import SourceLocation
from lakeforge.steps import ingest
from lakeforge.steps.ingest import LogEntry, Status

A = FileInfo("file:/raw/a.csv", 10, 1_000)
B = FileInfo("file:/raw/b.csv", 0, 2_000)


def _step() -> Any:
    spec = SimpleNamespace(source=SimpleNamespace(), schema_evolution="fail")
    return SimpleNamespace(table="bronze.t", spec=spec, location=SourceLocation("p.yml", 3))


def _ctx() -> Any:
    return SimpleNamespace(spark=object(), run_id="r1")


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[tuple[Any, ...]]]]:
    seen: list[tuple[str, list[tuple[Any, ...]]]] = []
    monkeypatch.setattr(
        ingest, "append_ingestion_events", lambda spark, rows: seen.append(("log", rows))
    )
    monkeypatch.setattr(
        ingest, "append_rejected_files", lambda spark, rows: seen.append(("rejected", rows))
    )
    monkeypatch.setattr(ingest, "check_schema", lambda step, spark, df: False)
    return seen


def _written(rows: int) -> Any:
    def write(df: Any, table: str, *args: Any, **kwargs: Any) -> Commit:
        return Commit(table, 4, "WRITE", rows, committed_now=True, meta={"files": 1})

    return write


def test_rows_counted_from_files_must_equal_rows_landed(
    monkeypatch: pytest.MonkeyPatch, events: list[Any]
) -> None:
    read = BatchRead(df=object(), rejected=[], source_rows=5, files=[A])  # type: ignore[arg-type]
    monkeypatch.setattr(ingest, "read_batch", lambda *a: read)
    monkeypatch.setattr(ingest, "write_table", _written(4))
    with pytest.raises(RunError) as exc:
        ingest._commit_batch(_ctx(), _step(), [A], 3, log_pending=True)
    assert exc.value.code == Code.ROW_ACCOUNTING
    assert "bronze.t" in exc.value.message and " 5 " in exc.value.message
    assert " 4" in exc.value.message
    # The files are in bronze: the log says so before the run fails.
    assert [r[6] for kind, rows in events if kind == "log" for r in rows] == [
        "pending",
        "committed",
    ]


def test_rejected_files_recorded_before_the_write(
    monkeypatch: pytest.MonkeyPatch, events: list[Any]
) -> None:
    read = BatchRead(
        df=object(),  # type: ignore[arg-type]
        rejected=[RejectedFile(B, "empty_file")],
        source_rows=2,
        files=[A],
    )
    monkeypatch.setattr(ingest, "read_batch", lambda *a: read)
    order: list[str] = []

    def write(*args: Any, **kwargs: Any) -> Commit:
        order.append("write")
        return Commit("bronze.t", 0, "WRITE", 2, committed_now=True)

    monkeypatch.setattr(ingest, "write_table", write)
    landed = ingest._commit_batch(_ctx(), _step(), [A, B], 1, log_pending=False)
    assert (landed.rows_in, landed.files) == (2, 1)
    kinds = [kind for kind, _ in events]
    assert kinds == ["rejected", "log", "log"]  # rejected_files, log 'rejected', 'committed'
    assert events[0][1][0][4] == "empty_file"
    assert [r[6] for r in events[1][1]] == ["rejected"]
    assert [r[1] for r in events[2][1]] == [A.path]


def _reconcile(
    monkeypatch: pytest.MonkeyPatch, log: list[LogEntry], delta: int | None
) -> ingest.Reconciled:
    rebuilt: list[str] = []
    monkeypatch.setattr(ingest, "load_log", lambda spark, table: {e.path: e for e in log})
    monkeypatch.setattr(ingest, "delta_txn", lambda spark, table: delta)

    def rebuild(*args: Any) -> int:
        rebuilt.append("scan")
        return 1

    monkeypatch.setattr(ingest, "_rebuild_from_bronze", rebuild)
    state = ingest.reconcile(object(), "bronze.t", "r1")  # type: ignore[arg-type]
    state.rebuilt = len(rebuilt)
    return state


def _entry(path: str, batch: int, status: str) -> LogEntry:
    return LogEntry(path, 1, 1, batch, status, None)


def test_log_agreeing_with_delta_is_not_scanned(monkeypatch: pytest.MonkeyPatch) -> None:
    agree = [_entry("a", 1, Status.COMMITTED), _entry("b", 2, Status.COMMITTED)]
    assert _reconcile(monkeypatch, agree, 2).rebuilt == 0
    # A crash after the bronze commit: the log's pending batch is Delta's last: agreed.
    crashed = [_entry("a", 1, Status.COMMITTED), _entry("b", 2, Status.PENDING)]
    assert _reconcile(monkeypatch, crashed, 2).rebuilt == 0
    # A batch whose files were all rejected made no commit: still agreed.
    rejected = [_entry("a", 1, Status.COMMITTED), _entry("b", 2, Status.REJECTED)]
    assert _reconcile(monkeypatch, rejected, 1).rebuilt == 0
    assert _reconcile(monkeypatch, [], None).rebuilt == 0


def test_log_behind_delta_is_rebuilt(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _reconcile(monkeypatch, [], 3).rebuilt == 1
    assert _reconcile(monkeypatch, [_entry("a", 1, Status.COMMITTED)], 2).rebuilt == 1


def test_log_ahead_of_delta_is_ingest_log_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RunError) as exc:
        _reconcile(monkeypatch, [_entry("file:/raw/x.csv", 4, Status.COMMITTED)], 2)
    assert exc.value.code == Code.INGEST_LOG_MISMATCH and "x.csv" in exc.value.message
    with pytest.raises(RunError) as gone:
        _reconcile(monkeypatch, [_entry("file:/raw/x.csv", 1, Status.COMMITTED)], None)
    assert gone.value.code == Code.INGEST_LOG_MISMATCH


def test_path_forms_an_operator_may_type(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    forms = ingest._candidates("raw/x.csv")
    assert f"file:{tmp_path / 'raw' / 'x.csv'}" in forms
    assert ingest._candidates("file:///data/a%20b.csv") == {"file:/data/a b.csv"}
