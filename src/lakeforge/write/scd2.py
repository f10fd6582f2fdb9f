"""Mode ``scd2``: slowly changing dimension, type 2: every change of a key's tracked
columns becomes a new row.

Columns the strategy adds to the declared ones: ``valid_from`` (the ``sequence_by``
value), ``valid_to`` (the next version's ``valid_from``, null while current),
``is_current`` and ``_lf_row_hash`` (sha256 of the tracked columns, computed when the
rows are ranked: see ``steps.rows.rank_history``). One MERGE closes the current rows and
inserts the new ones in a single commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.config.models import WriteMode
from lakeforge.io.delta import Commit, merge_into, write_table
from lakeforge.write.base import Target, WriteStrategy

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

VALID_FROM = "valid_from"
VALID_TO = "valid_to"
IS_CURRENT = "is_current"
ROW_HASH = "_lf_row_hash"
SCD2_COLUMNS = (VALID_FROM, VALID_TO, IS_CURRENT, ROW_HASH)


class Scd2(WriteStrategy):
    mode: ClassVar[WriteMode] = WriteMode.SCD2
    keeps_history: ClassVar[bool] = True
    managed_columns: ClassVar[tuple[str, ...]] = SCD2_COLUMNS

    def rows_landed(self, commit: Commit) -> int:
        metrics = commit.metrics or {}
        if "numTargetRowsInserted" in metrics:  # the MERGE's source also holds closing rows
            return int(metrics["numTargetRowsInserted"])
        return commit.rows_written

    def write(self, rows: DataFrame, target: Target, observed: bool = False) -> Commit:
        """Close changed current rows and insert the new versions, in one commit.

        Args:
            rows: the versions that land (declared columns, lineage, run id and
                ``_lf_row_hash``).
        """
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        keys, seq = list(target.keys), target.sequence_by
        assert seq is not None
        order = Window.partitionBy(*[F.col(k) for k in keys]).orderBy(F.col(seq))
        versions = rows.select(
            *[F.col(c) for c in rows.columns if c != ROW_HASH],
            F.col(seq).alias(VALID_FROM),
            F.lead(F.col(seq)).over(order).alias(VALID_TO),
            F.lead(F.col(seq)).over(order).isNull().alias(IS_CURRENT),
            F.col(ROW_HASH),
        )
        if not target.exists:
            return write_table(
                versions,
                target.table,
                "append",
                target.run_id,
                target.step,
                txn=target.txn,
                metadata=target.meta,
            )
        # Staged MERGE source: inserts carry null merge keys (never match); one closing row
        # per key carries the key and the earliest new valid_from.
        mk = [f"_lf_mk_{k}" for k in keys]
        inserts = versions.select(
            "*",
            *[
                F.lit(None).cast(versions.schema[k].dataType).alias(m)
                for k, m in zip(keys, mk, strict=True)
            ],
        )
        closers = (
            versions.groupBy(*keys)
            .agg(F.min(VALID_FROM).alias("_lf_close_at"))
            .select(*[F.col(k).alias(m) for k, m in zip(keys, mk, strict=True)], "_lf_close_at")
        )
        staged = inserts.unionByName(closers, allowMissingColumns=True)
        on = (
            " AND ".join(f"t.`{k}` = s.`{m}`" for k, m in zip(keys, mk, strict=True))
            + f" AND t.`{IS_CURRENT}`"
        )
        values = {f"`{c}`": f"s.`{c}`" for c in versions.columns}

        def build(m: Any) -> Any:
            return m.whenMatchedUpdate(
                set={f"`{VALID_TO}`": "s._lf_close_at", f"`{IS_CURRENT}`": "false"}
            ).whenNotMatchedInsert(condition=f"s.`{mk[0]}` IS NULL", values=values)

        return merge_into(
            rows.sparkSession,
            staged,
            target.table,
            on,
            target.run_id,
            target.step,
            build,
            txn=target.txn,
            metadata=target.meta,
            auto_merge_schema=target.add_columns,
        )
