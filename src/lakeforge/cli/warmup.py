"""The class-archive warm-up workload (``lakeforge jars warm``; lakeforge.runtime.cds).

Run as ``python -m lakeforge.cli.warmup WORK DUMP BUNDLES``: makes a small project in the
empty folder WORK, runs its pipeline over two deliveries (bronze CSV ingest, a silver MERGE
with an expectation that quarantines, a silver SCD2 history, a gold query), publishes a
training set over it and queries it, so the driver JVM loads the classes a real run loads.
Its profile makes the JVM dump them to DUMP (``-XX:ArchiveClassesAtExit``) when it exits,
and the process waits for that exit: the archive is complete when this process returns 0.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from lakeforge.runtime.cds import QUIET

PROFILE = """\
description: class-archive warm-up (lakeforge jars warm)
spark:
  master: local[1]
  class_archive: false
  conf:
    # Sized for a few rows, like tests/data/tiny: the classes loaded are the same.
    spark.sql.shuffle.partitions: 1
    spark.default.parallelism: 1
    spark.databricks.delta.snapshotPartitions: 1
    spark.ui.enabled: "false"
    spark.driver.extraJavaOptions: "-XX:ArchiveClassesAtExit={dump} {quiet}"
warehouse: lakehouse/warehouse
metastore:
  kind: derby
  path: lakehouse/metastore_db
jar_bundles: [{bundles}]
"""

PIPELINE = """\
name: warmup
bronze:
  orders:
    source: {format: csv, path: data/raw/orders/*.csv}
silver:
  orders:
    from: bronze.orders
    keys: [order_id]
    sequence_by: updated_at
    mode: merge
    columns:
      order_id: bigint
      customer_id: {type: bigint, nullable: false}
      status: string
      amount: decimal(10,2)
      updated_at: timestamp
    expectations:
      - expect_column_values_to_be_in_set: {column: status, value_set: [open, paid]}
        action: quarantine
  customers:
    from: bronze.orders
    keys: [customer_id]
    sequence_by: updated_at
    mode: scd2
    scd2: {track: [segment]}
    columns:
      customer_id: bigint
      segment: string
      updated_at: timestamp
gold:
  customer_value:
    sql: |
      SELECT customer_id, COUNT(*) AS orders, SUM(amount) AS spend, MAX(updated_at) AS last_ts
      FROM silver.orders GROUP BY customer_id
"""

TRAINING = """\
name: warmup_set
labels:
  table: silver.orders
  keys: [customer_id]
  event_time: updated_at
  columns: [status]
features:
  - table: gold.customer_value
    keys: [customer_id]
    event_time: last_ts
    features: [orders, spend]
    defaults: {orders: 0}
splits:
  salt: warmup
  fractions: {train: 0.6, validation: 0.2, test: 0.2}
"""

HEADER = "order_id,customer_id,status,amount,segment,updated_at\n"
DELIVERIES = (
    "1,10,open,12.50,consumer,2026-11-01 09:00:00\n"
    "2,11,paid,30.00,business,2026-11-01 10:00:00\n"
    "1,10,paid,12.50,consumer,2026-11-01 12:00:00\n"
    "3,12,lost,5.00,consumer,2026-11-01 11:00:00\n",
    "2,11,paid,30.00,enterprise,2026-11-02 09:00:00\n5,12,open,9.99,consumer,2026-11-02 10:00:00\n",
)


def write_project(work: Path, dump: Path, bundles: str) -> None:
    (work / "conf").mkdir(parents=True)
    # The archive's own log lines silenced, as when it is mapped (runtime/cds.py).
    quiet = " ".join(o for o in QUIET if o.startswith("-Xlog"))
    (work / "conf" / "local.yml").write_text(
        PROFILE.format(dump=dump, bundles=bundles, quiet=quiet)
    )
    (work / "pipeline.yml").write_text(PIPELINE)
    (work / "training.yml").write_text(TRAINING)


def main(argv: list[str]) -> int:
    work, dump, bundles = Path(argv[0]), Path(argv[1]), argv[2]
    write_project(work, dump, bundles)

    os.chdir(work)  # profiles and relative paths resolve from the project, as for a user

    from lakeforge import api
    from lakeforge.config.loader import load_profile
    from lakeforge.runtime.session import build_session

    profile, _ = load_profile("local", work)
    spark = build_session(profile, work, "lakeforge:warmup")
    raw = work / "data" / "raw" / "orders"
    raw.mkdir(parents=True)
    for n, rows in enumerate(DELIVERIES, start=1):
        (raw / f"orders_{n}.csv").write_text(HEADER + rows)
        result = api.run(work / "pipeline.yml", spark=spark)
        if not result.ok:
            print(f"warm-up run {n} failed: {result.error}", file=sys.stderr)
            return 1
    api.publish(work / "training.yml", spark=spark)
    spark.sql("SELECT * FROM gold.customer_value VERSION AS OF 0").collect()
    # The JVM writes the archive when it exits: stop it and wait for that exit here, so
    # that a 0 from this process means a complete archive.
    gateway: Any = spark.sparkContext._gateway
    jvm_process = getattr(gateway, "proc", None)
    spark.stop()
    gateway.shutdown()
    if jvm_process is not None:
        if jvm_process.stdin is not None:
            jvm_process.stdin.close()
        if jvm_process.wait(timeout=600) != 0:
            print(f"the warm-up JVM exited {jvm_process.returncode}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
