"""Mode ``merge``: upsert by keys in one Delta MERGE (the first write creates the table).

The one MERGE builder for silver and gold: a row older than the table's (by
``sequence_by``) never wins, and a row flagged by ``delete_when`` deletes its key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.config.models import WriteMode
from lakeforge.io.delta import Commit, merge_into
from lakeforge.write.append import append
from lakeforge.write.base import Target, WriteStrategy

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def upsert(rows: DataFrame, target: Target) -> Commit:
    """Upsert ``rows`` into the existing ``target`` by its keys, as one commit."""
    eq = "<=>" if target.keys_nullable else "="
    on = " AND ".join(f"t.`{k}` {eq} s.`{k}`" for k in target.keys)
    delete = target.delete
    values = {f"`{c}`": f"s.`{c}`" for c in rows.columns if c != delete}
    newer = "true"
    if target.sequence_by:
        seq = target.sequence_by
        newer = f"(t.`{seq}` IS NULL OR s.`{seq}` >= t.`{seq}`)"

    def build(m: Any) -> Any:
        if delete is not None:
            m = m.whenMatchedDelete(condition=f"s.`{delete}` AND {newer}")
            m = m.whenMatchedUpdate(condition=f"NOT s.`{delete}` AND {newer}", set=values)
            return m.whenNotMatchedInsert(condition=f"NOT s.`{delete}`", values=values)
        if target.sequence_by:
            m = m.whenMatchedUpdate(condition=newer, set=values)
        else:
            m = m.whenMatchedUpdate(set=values)
        return m.whenNotMatchedInsert(values=values)

    return merge_into(
        rows.sparkSession,
        rows,
        target.table,
        on,
        target.run_id,
        target.step,
        build,
        txn=target.txn,
        metadata=target.meta,
        auto_merge_schema=target.add_columns,
    )


class Merge(WriteStrategy):
    mode: ClassVar[WriteMode] = WriteMode.MERGE

    def write(self, rows: DataFrame, target: Target, observed: bool = False) -> Commit:
        if target.exists:
            return upsert(rows, target)
        # The first write creates the table: rows flagged for deletion are not inserted.
        if target.delete is not None:
            rows = rows.where(~rows[target.delete]).drop(target.delete)
        return append(rows, target)

    def unseen_deletes(self, target: Target) -> bool:
        return target.delete is not None and not target.exists
