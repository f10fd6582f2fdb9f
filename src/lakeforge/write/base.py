"""What every write strategy shares: the target of a write, the strategy interface, the
schema-evolution check and the hash that tells a changed step definition.

A strategy owns everything that differs by write mode: whether the step reads only its
input's changes, its Delta txn ids, its schema-evolution policy, whether its write reports
a Spark ``Observation``, how it commits, and which commit metric counts the rows landed.
Callers pick one with :func:`lakeforge.write.strategy_for` and never compare modes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.config.models import WriteMode
from lakeforge.errors import Code, RunError
from lakeforge.io.delta import Commit, Txn

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class Target:
    """One table a step writes, as decided before any job runs."""

    table: str
    step: str  # the step's table, recorded in userMetadata (a quarantine's is its table's)
    run_id: str
    exists: bool
    meta: Mapping[str, Any] = field(default_factory=dict)
    txn: Txn | None = None
    keys: tuple[str, ...] = ()
    keys_nullable: bool = False  # gold: keys match null to null (``<=>``)
    sequence_by: str | None = None  # an older row (by it) never replaces a newer one
    delete: str | None = None  # merge: the column flagging rows that delete their key
    add_columns: bool = False  # schema evolution: the rows add declared columns
    replace_schema: bool = False  # a rebuild whose query decides the schema (gold)


def spec_hash(*parts: str) -> str:
    """Identifies a step's definition: a changed definition must rebuild, not skip."""
    return hashlib.sha256("".join(parts).encode()).hexdigest()[:16]


class WriteStrategy:
    """How one write mode commits. Subclasses set :attr:`mode` and override what differs."""

    mode: ClassVar[WriteMode]
    incremental: ClassVar[bool] = True  # silver reads only its input's changes
    keeps_history: ClassVar[bool] = False  # scd2: rows are versions, ranked against it
    managed_columns: ClassVar[tuple[str, ...]] = ()  # columns the strategy adds itself

    # How the step's quarantine is written: rebuilt with a rebuild, else appended (see
    # :func:`lakeforge.write.aside_for`; a mode, not a strategy, so base imports no subclass).
    aside_mode: ClassVar[WriteMode] = WriteMode.APPEND

    def silver_txn(self, table: str, source: str, version: int) -> Txn | None:
        """Txn id of a silver write (or its quarantine's) consuming ``source`` at
        ``version``: an incremental write must never commit the same batch twice."""
        if not self.incremental:
            return None
        return Txn(f"lakeforge:{table}<-{source}", version + 1)  # source version 0 is valid

    def gold_txn(self, table: str, versions: Mapping[str, int]) -> Txn | None:
        """Txn id of a gold write from inputs at ``versions`` (none by default)."""
        return None

    def observes(self, target: Target) -> bool:
        """Whether :meth:`write` of rows carrying a Spark ``Observation`` reports it."""
        return False

    def write(self, rows: DataFrame, target: Target, observed: bool = False) -> Commit:
        raise NotImplementedError

    def rows_landed(self, commit: Commit) -> int:
        """The rows the commit added to the table."""
        return commit.rows_written

    def unseen_deletes(self, target: Target) -> bool:
        """Whether rows flagged for deletion vanish before any commit counts them."""
        return False

    def check_schema(
        self,
        spark: SparkSession,
        target: Target,
        rows: DataFrame,
        evolution: str,
        where: str,
    ) -> bool:
        """Declared columns vs the existing table; returns whether to add columns.

        Raises:
            RunError: ``LF-RUN-005`` naming new, missing or retyped columns.
        """
        if not target.exists:
            return False
        managed = set(self.managed_columns)
        existing = {c: t for c, t in spark.table(target.table).dtypes if c not in managed}
        wanted = {c: t for c, t in rows.dtypes if c != target.delete and c not in managed}
        new = [c for c in wanted if c not in existing]
        gone = [c for c in existing if c not in wanted]
        retyped = [
            f"{c} ({existing[c]} -> {t})"
            for c, t in wanted.items()
            if c in existing and existing[c] != t
        ]
        problems = []
        if retyped:
            problems.append(f"retyped columns {retyped}")
        if evolution == "fail":
            if new:
                problems.append(f"new columns {new}")
            if gone:
                problems.append(f"missing columns {gone}")
        if problems:
            hint = "" if retyped else "; set schema_evolution: add_columns to accept new columns"
            raise RunError(
                Code.SCHEMA_CHANGED,
                f"{where}: {target.table}: declared schema differs from the table: "
                f"{'; '.join(problems)}{hint}",
            )
        return bool(new)
