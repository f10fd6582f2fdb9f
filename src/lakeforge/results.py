"""What a run returns: plain data, usable from Python, the CLI and orchestrators."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class StepResult:
    """Accounting for one step: rows in = rows landed + rows quarantined."""

    table: str
    kind: str
    mode: str
    status: str = "pending"  # pending | ok | failed | skipped
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    version: int | None = None
    quarantine_version: int | None = None
    inputs: dict[str, int] = field(default_factory=dict)  # table -> version read
    seconds: float = 0.0
    error: str | None = None

    @property
    def accounted(self) -> bool:
        """Row-preserving steps (ingest, conform) must balance; aggregates need not."""
        return self.kind in ("ingest", "conform")

    @property
    def balanced(self) -> bool:
        return not self.accounted or self.rows_read == self.rows_written + self.rows_quarantined


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
