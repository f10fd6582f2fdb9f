"""Which engine answers a ``lakeforge sql`` query: chosen once, carried as :class:`Engine`.

``fast`` (delta-rs + DataFusion, no JVM: about a second end to end instead of a Spark
start) answers a read-only query over lakeforge's Delta tables when every construct in
it means the same on both engines (:mod:`lakeforge.sql.statement`). ``spark`` is the
full engine: DDL, writes, every function, any catalog table. ``auto`` (the default)
tries the fast engine and hands anything it does not take to Spark, with the reason;
so ``auto`` answers whatever Spark answers, and the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from lakeforge.config.models import Profile
from lakeforge.errors import Code, SqlError
from lakeforge.sql.fast import FastFailed, Rows, run
from lakeforge.sql.statement import NotFast, prepare
from lakeforge.sql.tables import Warehouse


class Engine(StrEnum):
    AUTO = "auto"
    SPARK = "spark"
    FAST = "fast"


@dataclass(frozen=True)
class Answer:
    rows: Rows
    engine: Engine  # SPARK or FAST: the one that answered
    seconds: float
    why_not_fast: str | None = None  # when Spark answered under AUTO

    def summary(self) -> str:
        who = "fast engine (delta-rs)" if self.engine is Engine.FAST else "Spark"
        line = f"answered by the {who} in {self.seconds:.2f} s"
        return line + (f"; not fast: {self.why_not_fast}" if self.why_not_fast else "")


# The Spark path, as a callable so this module never imports pyspark: (query, limit) -> rows.
SparkPath = Callable[[str, int], Rows]


def answer(
    query: str,
    engine: Engine,
    profile: Profile,
    root: Path,
    limit: int,
    spark_path: SparkPath,
) -> Answer:
    """Answer ``query`` with ``engine``.

    Raises:
        SqlError: ``LF-SQL-005`` (``fast`` only) the fast engine does not take the query,
            ``LF-SQL-003`` it writes, ``LF-SQL-004`` it does not parse, ``LF-SQL-002`` an
            unknown table (the known ones listed), ``LF-SQL-001`` DataFusion failed it;
            ``LF-TT-001`` / ``LF-TT-002`` a bad ``@`` reference, on either engine.
    """
    t0 = time.monotonic()
    why: str | None = None
    if engine is not Engine.SPARK:
        try:
            if profile.metastore.kind == "hive":
                # Tables there may live anywhere the metastore says; the warehouse layout
                # is only lakeforge's own metastores' (lakeforge.sql.tables).
                raise NotFast("the profile's metastore is an external Hive metastore")
            rows = run(prepare(query), Warehouse.of(profile, root), limit)
            return Answer(rows, Engine.FAST, time.monotonic() - t0)
        except NotFast as exc:
            if engine is Engine.FAST:
                raise _refusal(exc, profile, root) from None
            why = exc.reason
        except FastFailed as exc:
            if engine is Engine.FAST:
                raise SqlError(Code.SQL_FAILED, f"the fast engine failed: {exc}") from None
            why = f"DataFusion: {exc}"
        except SqlError as exc:
            # sqlglot does not know every corner of Spark's grammar: Spark decides.
            if engine is Engine.FAST or exc.code != Code.SQL_SYNTAX:
                raise
            why = exc.message
    rows = spark_path(query, limit)
    return Answer(rows, Engine.SPARK, time.monotonic() - t0, why)


def _refusal(exc: NotFast, profile: Profile, root: Path) -> SqlError:
    if exc.code == Code.TABLE_NOT_FOUND:
        known = Warehouse.of(profile, root).known()
        listed = ", ".join(known[:30]) + (" ..." if len(known) > 30 else "") or "none"
        return SqlError(Code.TABLE_NOT_FOUND, f"{exc.reason}; tables there: {listed}")
    hint = "--engine auto or spark runs it on Spark"
    return SqlError(exc.code, f"the fast engine does not answer this query: {exc.reason}", hint)
