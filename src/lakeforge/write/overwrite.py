"""Mode ``overwrite``: every run rebuilds the table from its input's version."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from lakeforge.config.models import WriteMode
from lakeforge.io.delta import Commit, write_table
from lakeforge.write.base import Target, WriteStrategy

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


class Overwrite(WriteStrategy):
    mode: ClassVar[WriteMode] = WriteMode.OVERWRITE
    incremental: ClassVar[bool] = False  # reads the whole input version: no txn id

    aside_mode: ClassVar[WriteMode] = WriteMode.OVERWRITE  # the quarantine is rebuilt too

    def observes(self, target: Target) -> bool:
        # A plain overwrite of an existing table by name reports its query's metrics;
        # CREATE / REPLACE TABLE AS SELECT (a new table, a new schema) does not.
        return (
            target.exists
            and not target.add_columns
            and not target.replace_schema
            and (target.txn is None)
        )

    def write(self, rows: DataFrame, target: Target, observed: bool = False) -> Commit:
        return write_table(
            rows,
            target.table,
            "overwrite",
            target.run_id,
            target.step,
            txn=target.txn,
            metadata=target.meta,
            merge_schema=target.add_columns,
            overwrite_schema=target.add_columns or target.replace_schema,
            observed=observed,
        )
