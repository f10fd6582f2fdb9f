"""Roll a Delta table back to an earlier version, as one new, audited commit.

``RESTORE`` never rewrites history: the table gets a new version whose content equals
the old one, so the restore itself can be inspected (``lakeforge history``), diffed and
undone. Its ``userMetadata`` records who asked for it (the run id) and the target version.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from lakeforge.errors import Code, TimeTravelError
from lakeforge.io.delta import Commit, commit_context, commit_metadata, last_commit
from lakeforge.timetravel.versions import require_table, translate, version_range

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def restore_table(spark: SparkSession, table: str, version: int, run_id: str) -> Commit:
    """Run ``RESTORE TABLE table TO VERSION AS OF version`` as one Delta commit.

    Args:
        spark: the session.
        table: ``schema.table``.
        version: the version whose content the table gets back.
        run_id: recorded in the commit's ``userMetadata`` with ``step`` (the table),
            ``operation: "restore"`` and ``restored_to``.

    Returns:
        The new commit (operation ``RESTORE``). ``rows_written`` is 0: a restore re-adds
        the old version's files and writes no rows; ``metrics`` has Delta's file counts.
        Restoring the latest version is a no-op (Delta commits nothing): the latest
        commit comes back with ``committed_now`` False.

    Raises:
        TimeTravelError: ``LF-SQL-002`` no such table, ``LF-TT-001`` no such version,
            ``LF-TT-002`` a malformed table name, ``LF-SQL-001`` Delta refused the restore.
    """
    name = require_table(spark, table)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise TimeTravelError(
            Code.VERSION_NOT_FOUND, f"{name}: version must be an integer >= 0, got {version!r}"
        )
    lo, hi = version_range(spark, name)
    if not lo <= version <= hi:
        raise TimeTravelError(
            Code.VERSION_NOT_FOUND, f"{name} has no version {version} (available: {lo}..{hi})"
        )
    if version == hi:
        # Delta makes no commit for a restore to the current version; say so rather than
        # report the missing commit as a failure.
        latest = last_commit(spark, name)
        if latest is not None and latest.version == hi:
            return replace(latest, committed_now=False)
    meta = commit_metadata(run_id, name, operation="restore", restored_to=version)
    try:
        # RESTORE takes no writer options; the session conf is the only way to tag its
        # commit, and commit_context puts the previous value back afterwards.
        with commit_context(spark, meta):
            spark.sql(f"RESTORE TABLE {name} TO VERSION AS OF {int(version)}")
    except Exception as exc:
        raise translate(exc, name) from exc
    commit = last_commit(spark, name)
    # Read back, as write_table does: the newest commit must be this restore, not a
    # concurrent writer's.
    if (
        commit is None
        or commit.version <= hi
        or commit.operation != "RESTORE"
        or (commit.meta or {}).get("lakeforge_run_id") != run_id
    ):
        raise TimeTravelError(
            Code.SQL_FAILED, f"{name}: the newest Delta commit is not this restore ({run_id})"
        )
    return commit
