"""What a run returns: plain data, usable from Python, the CLI and orchestrators."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def new_run_id() -> str:
    """Sortable and unique: ``20261122T031500Z-3f9a1c2b``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


@dataclass
class StepResult:
    """Accounting for one step: rows in = rows landed + rows quarantined."""

    table: str
    kind: str
    mode: str
    status: str = "pending"  # pending | ok | failed | skipped
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0  # quarantine rows of this step, but the dropped ones
    rows_deduplicated: int = 0
    rows_dropped: int = 0  # kept out by drop expectations (set aside in the quarantine)
    expectations: int = 0  # expectations evaluated by this step
    expectations_failed: int = 0  # of which did not hold (any action)
    quality_report: str | None = None  # the step's HTML report, when it has expectations
    version: int | None = None  # the table's version after the step (new or unchanged)
    committed: bool = False  # True when this step made a new Delta version
    quarantine_version: int | None = None
    quarantine_committed: bool = False
    files: int = 0  # ingest: files ingested by this run
    inputs: dict[str, int] = field(default_factory=dict)  # table -> version read
    seconds: float = 0.0
    error: str | None = None

    @property
    def accounted(self) -> bool:
        """Row-preserving steps (ingest, conform) must balance; aggregates need not."""
        return self.kind in ("ingest", "conform")

    @property
    def balanced(self) -> bool:
        """rows in = landed + quarantined + dropped + deduplicated (ingest and conform)."""
        if not self.accounted:
            return True
        return self.rows_read == (
            self.rows_written + self.rows_quarantined + self.rows_dropped + self.rows_deduplicated
        )


@dataclass
class RunResult:
    """The outcome of ``lakeforge run`` / :func:`lakeforge.run`."""

    run_id: str
    pipeline: str
    env: str
    config_hash: str
    status: str = "running"  # running | succeeded | failed
    started_at: str = ""
    ended_at: str = ""
    seconds: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None
    error_code: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def step(self, table: str) -> StepResult:
        for s in self.steps:
            if s.table == table:
                return s
        raise KeyError(table)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
