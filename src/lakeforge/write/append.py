"""Mode ``append``: each run adds its rows; a retry is skipped by its txn id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from lakeforge.config.models import WriteMode
from lakeforge.io.delta import Commit, Txn, write_table
from lakeforge.write.base import Target, WriteStrategy

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def append(rows: DataFrame, target: Target, observed: bool = False) -> Commit:
    """One appending commit (creating the table on its first write)."""
    return write_table(
        rows,
        target.table,
        "append",
        target.run_id,
        target.step,
        txn=target.txn,
        metadata=target.meta,
        merge_schema=target.add_columns,
        observed=observed,
    )


class Append(WriteStrategy):
    mode: ClassVar[WriteMode] = WriteMode.APPEND

    def gold_txn(self, table: str, versions: Mapping[str, int]) -> Txn | None:
        # Derived from the input versions: a retry with unchanged inputs is skipped.
        return Txn(f"lakeforge:{table}", 1 + sum(versions.values()))

    def observes(self, target: Target) -> bool:
        return target.exists  # creating the table (CTAS) reports no observation

    def write(self, rows: DataFrame, target: Target, observed: bool = False) -> Commit:
        return append(rows, target, observed)
