"""The one place that writes Delta tables.

Every commit carries the run id in ``userMetadata`` so ``DESCRIBE HISTORY`` (and later
lineage tables) can say which run wrote which version. After each write we read the
commit back from the Delta log for its version and row metrics rather than counting
the data again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakeforge.errors import Code, RunError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class Commit:
    """A Delta commit lakeforge made."""

    table: str
    version: int
    operation: str
    rows_written: int


def commit_metadata(run_id: str, step: str) -> str:
    return json.dumps({"lakeforge_run_id": run_id, "step": step}, sort_keys=True)


def table_exists(spark: SparkSession, table: str) -> bool:
    return bool(spark.catalog.tableExists(table))


def latest_version(spark: SparkSession, table: str) -> int | None:
    """Newest Delta version of ``table`` (None when the table does not exist)."""
    if not table_exists(spark, table):
        return None
    from delta.tables import DeltaTable

    row = DeltaTable.forName(spark, table).history(1).select("version").first()
    return int(row["version"]) if row is not None else None


def write_table(
    df: DataFrame, table: str, mode: str, run_id: str, step: str, overwrite_schema: bool = False
) -> Commit:
    """Write ``df`` to the metastore table ``table`` as one Delta commit.

    Args:
        df: the rows.
        table: ``schema.name``; created (registered in the metastore) on first write.
        mode: ``append`` or ``overwrite``.
        run_id: recorded in the commit's ``userMetadata``.
        step: the step's table name, recorded alongside.
        overwrite_schema: allow an overwrite to replace the schema (gold rebuilds).

    Returns:
        The commit, read back from the Delta log.
    """
    from delta.tables import DeltaTable

    spark = df.sparkSession
    writer = (
        df.write.format("delta").mode(mode).option("userMetadata", commit_metadata(run_id, step))
    )
    if overwrite_schema and mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")
    # The writer option is ignored when saveAsTable creates the table (CREATE TABLE AS
    # SELECT), so the session conf carries the metadata too, for this one commit only.
    conf_key = "spark.databricks.delta.commitInfo.userMetadata"
    previous = spark.conf.get(conf_key, None)
    spark.conf.set(conf_key, commit_metadata(run_id, step))
    try:
        writer.saveAsTable(table)
    finally:
        if previous is None:
            spark.conf.unset(conf_key)
        else:
            spark.conf.set(conf_key, previous)
    row = DeltaTable.forName(spark, table).history(1).first()
    if row is None or run_id not in (row["userMetadata"] or ""):
        raise RunError(
            Code.STEP_FAILED, f"{table}: the newest Delta commit is not this run's ({run_id})"
        )
    metrics = row["operationMetrics"] or {}
    return Commit(
        table=table,
        version=int(row["version"]),
        operation=str(row["operation"]),
        rows_written=int(metrics.get("numOutputRows", 0)),
    )


def read_version(spark: SparkSession, table: str, version: int) -> DataFrame:
    """``table`` as of ``version`` (time travel)."""
    return spark.sql(f"SELECT * FROM {table} VERSION AS OF {int(version)}")


def count_rows(spark: SparkSession, table: str, version: int) -> int:
    """Row count of a table version; Delta answers it from file statistics, no data scan."""
    row = spark.sql(f"SELECT count(*) AS n FROM {table} VERSION AS OF {int(version)}").first()
    return int(row["n"]) if row is not None else 0
