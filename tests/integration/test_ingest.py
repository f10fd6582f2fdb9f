"""Bronze exactly once: the ingestion log, changed files, crash recovery, malformed rows,
schema evolution.

Each scenario is its own scratch project (one bronze and one silver table, its own raw
folder), but the runs every scenario starts with are shared (a run has a fixed cost: lock,
system tables, run records): one run lands every scenario's first delivery, and one more
run lands the second deliveries whose scenarios need nothing else first (the one expected
to fail last, since a run stops at its first failed step). Each test asserts its own share
of those runs (:func:`tests.helpers.run_together`), then runs its own project where its
scenario goes on. State is kept per table, so a project's own runs carry on from the shared
ones.
"""

from __future__ import annotations

import os
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakeforge.errors import Code
from lakeforge.io.delta import Txn, latest_version, write_table
from lakeforge.io.files import read_batch
from lakeforge.io.listing import list_files
from lakeforge.lineage.system_tables import INGESTED_FILES
from lakeforge.pipeline.executor import execute
from lakeforge.plan.builder import build_plan
from lakeforge.plan.load import load_pipeline
from lakeforge.results import RunResult
from lakeforge.steps.ingest import _events, load_log
from tests.helpers import make_project, run_together

pytestmark = pytest.mark.spark


class Shop:
    """A scratch project with one bronze and one silver table named uniquely."""

    def __init__(self, root: Path, evolution: str = "fail", on_changed: str = "fail") -> None:
        self.s = uuid.uuid4().hex[:6]
        self.root = root
        self.raw = root / "raw" / "orders"
        self.raw.mkdir(parents=True)
        self.bronze = f"bronze.orders_{self.s}"
        self.silver = f"silver.orders_{self.s}"
        text = f"""\
            name: shop_{self.s}
            bronze:
              orders_{self.s}:
                source: {{format: csv, path: raw/orders}}
                schema_evolution: {evolution}
                on_changed_file: {on_changed}
            silver:
              orders_{self.s}:
                from: bronze.orders_{self.s}
                keys: [order_id]
                sequence_by: updated_at
                mode: merge
                columns:
                  order_id: bigint
                  amount: decimal(10,2)
                  updated_at: timestamp
                  channel: {{type: string, optional: true}}
            """
        self.path = make_project(root, textwrap.dedent(text))

    def drop(self, name: str, text: str, mtime: int | None = None) -> Path:
        path = self.raw / name
        path.write_text(textwrap.dedent(text))
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    def run(self, spark: SparkSession) -> RunResult:
        loaded = load_pipeline(self.path)
        return execute(build_plan(loaded), spark, loaded.project_root)


DAY1 = """\
    order_id,amount,updated_at
    1,10.00,2026-11-01 09:00:00
    2,20.00,2026-11-01 09:05:00
    """
DAY2 = """\
    order_id,amount,updated_at
    3,30.00,2026-11-02 09:00:00
    1,11.00,2026-11-02 10:00:00
    """


CHANGED_DAY1 = DAY1.rstrip(" ") + "    4,40.00,2026-11-01 11:00:00\n"
MALFORMED_DAY1 = (
    DAY1.rstrip(" ") + '    5,"50.00,2026-11-01 12:00:00\n    6,60.00,2026-11-01 12:00:00,extra\n'
)


@dataclass
class Scenario:
    """A scenario's project and its shares of the shared runs (``second``: None when its
    second run is its test's own)."""

    shop: Shop
    first: RunResult
    second: RunResult | None = None


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, spark: SparkSession) -> dict[str, Scenario]:
    root = tmp_path_factory.mktemp("ingest")
    shops = {
        "rerun": Shop(root / "rerun"),
        "changed_fails": Shop(root / "changed_fails"),
        "changed_reingests": Shop(root / "changed_reingests", on_changed="reingest"),
        "pending": Shop(root / "pending"),
        "malformed": Shop(root / "malformed"),
        "new_column_fails": Shop(root / "new_column_fails"),
        "new_column_added": Shop(root / "new_column_added", evolution="add_columns"),
    }
    for name, shop in shops.items():
        if name.startswith("changed"):
            shop.drop("d1.csv", DAY1, mtime=1_700_000_000)
        else:
            shop.drop("d1.csv", MALFORMED_DAY1 if name == "malformed" else DAY1)
    firsts = run_together(spark, [shop.path for shop in shops.values()], root)
    out = {
        name: Scenario(shop, first)
        for (name, shop), first in zip(shops.items(), firsts, strict=True)
    }

    # Second runs: "rerun" delivers nothing; the others change or add a file.
    shops["changed_reingests"].drop("d1.csv", CHANGED_DAY1, mtime=1_700_000_500)
    # The new column is *first*: grouping files by header keeps values in their columns.
    shops["new_column_added"].drop(
        "d2.csv", "channel,order_id,amount,updated_at\nweb,3,30.00,2026-11-02 09:00:00\n"
    )
    shops["changed_fails"].drop("d1.csv", CHANGED_DAY1, mtime=1_700_000_500)
    second = ["rerun", "changed_reingests", "new_column_added", "changed_fails"]  # fails last
    seconds = run_together(spark, [shops[n].path for n in second], root)
    for name, result in zip(second, seconds, strict=True):
        out[name].second = result
    return out


def test_rerun_commits_nothing_and_new_file_ingests_alone(
    spark: SparkSession, ran: dict[str, Scenario]
) -> None:
    shop, first, again = ran["rerun"].shop, ran["rerun"].first, ran["rerun"].second
    assert first.ok, first.error
    assert (first.steps[0].rows_written, first.steps[0].files, first.steps[0].version) == (2, 1, 0)

    assert again is not None and again.ok
    assert again.steps[0].rows_written == 0 and not again.steps[0].committed
    assert latest_version(spark, shop.bronze) == 0
    assert not again.steps[1].committed and latest_version(spark, shop.silver) == 0

    shop.drop("d2.csv", DAY2)
    third = shop.run(spark)
    assert third.ok, third.error
    assert (third.steps[0].rows_written, third.steps[0].files, third.steps[0].version) == (2, 1, 1)
    files = {
        r["_lf_source_file"].rsplit("/", 1)[-1]: r["n"]
        for r in spark.sql(
            f"SELECT _lf_source_file, count(*) AS n FROM {shop.bronze} GROUP BY 1"
        ).collect()
    }
    assert files == {"d1.csv": 2, "d2.csv": 2}
    log = load_log(spark, shop.bronze)
    assert sorted(
        (Path(e.path).name, e.batch_id, e.status, e.bronze_version) for e in log.values()
    ) == [("d1.csv", 1, "committed", 0), ("d2.csv", 2, "committed", 1)]
    # Silver merged only the new rows: order 1 updated, order 3 inserted.
    rows = {r["order_id"]: str(r["amount"]) for r in spark.table(shop.silver).collect()}
    assert rows == {1: "11.00", 2: "20.00", 3: "30.00"}
    assert third.steps[1].rows_read == 2 and third.step(shop.silver).inputs == {shop.bronze: 1}


def test_changed_file_fails_or_reingests(spark: SparkSession, ran: dict[str, Scenario]) -> None:
    # d1.csv landed, then changed in place (size and mtime) before the second run.
    shop, failed = ran["changed_fails"].shop, ran["changed_fails"].second
    assert ran["changed_fails"].first.ok
    assert failed is not None
    assert failed.error_code == Code.FILE_CHANGED
    assert "d1.csv" in (failed.error or "") and "reingest" in (failed.error or "")
    assert latest_version(spark, shop.bronze) == 0

    other, result = ran["changed_reingests"].shop, ran["changed_reingests"].second
    assert ran["changed_reingests"].first.ok
    assert result is not None
    assert result.ok, result.error
    assert result.steps[0].rows_written == 3
    # Silver still has one row per order: the re-sent ones are deduplicated against the table.
    assert sorted(r["order_id"] for r in spark.table(other.silver).collect()) == [1, 2, 4]


def test_pending_batch_is_finished_once(spark: SparkSession, ran: dict[str, Scenario]) -> None:
    """Crash after logging a batch as pending, and after its bronze commit: no loss, no dup."""
    shop = ran["pending"].shop
    d1 = shop.raw / "d1.csv"
    assert ran["pending"].first.ok
    shop.drop("d2.csv", DAY2)
    # Simulate a run that logged batch 2 as pending and committed bronze, then died.
    files = [f for f in list_files(spark, str(shop.raw)) if f.path.endswith("d2.csv")]
    from lakeforge.lineage.system_tables import append_ingestion_events

    append_ingestion_events(spark, _events(shop.bronze, files, 2, "crashed-run", "pending", None))
    df = read_batch(
        spark,
        load_pipeline(shop.path).pipeline.bronze[f"orders_{shop.s}"].source,
        files,
        "crashed-run",
        2,
    ).df
    write_table(
        df,
        shop.bronze,
        "append",
        "crashed-run",
        shop.bronze,
        txn=Txn(f"lakeforge:{shop.bronze}", 2),
        metadata={"batch_id": 2, "files": 1},
    )
    assert latest_version(spark, shop.bronze) == 1

    result = shop.run(spark)
    assert result.ok, result.error
    assert latest_version(spark, shop.bronze) == 1  # the retry was skipped by Delta's txn
    assert spark.table(shop.bronze).count() == 4
    statuses = spark.sql(
        f"SELECT status, bronze_version FROM {INGESTED_FILES} WHERE table_name = '{shop.bronze}' "
        "AND path LIKE '%d2.csv' ORDER BY recorded_at"
    ).collect()
    assert [(r["status"], r["bronze_version"]) for r in statuses] == [
        ("pending", None),
        ("committed", 1),
    ]
    assert d1.exists()


def test_malformed_rows_reach_quarantine_with_raw_line(
    spark: SparkSession, ran: dict[str, Scenario]
) -> None:
    shop, result = ran["malformed"].shop, ran["malformed"].first
    assert result.ok, result.error
    silver = result.step(shop.silver)
    assert (silver.rows_read, silver.rows_written, silver.rows_quarantined) == (4, 2, 2)
    q = spark.table(f"{shop.silver}__quarantine").collect()
    assert sorted(r["reason"] for r in q) == ["malformed_record", "malformed_record"]
    assert sorted(r["record"] for r in q) == [
        '5,"50.00,2026-11-01 12:00:00',
        "6,60.00,2026-11-01 12:00:00,extra",
    ]


def test_new_column_fails_by_default(spark: SparkSession, ran: dict[str, Scenario]) -> None:
    shop = ran["new_column_fails"].shop
    assert ran["new_column_fails"].first.ok
    shop.drop("d2.csv", "order_id,amount,updated_at,channel\n3,30.00,2026-11-02 09:00:00,web\n")
    result = shop.run(spark)
    assert result.error_code == Code.SCHEMA_CHANGED
    assert "['channel']" in (result.error or "")


def test_new_column_added_by_header_not_position(
    spark: SparkSession, ran: dict[str, Scenario]
) -> None:
    # The second delivery's d2.csv has the new column *first* (see ``ran``).
    shop, result = ran["new_column_added"].shop, ran["new_column_added"].second
    assert ran["new_column_added"].first.ok
    assert result is not None
    assert result.ok, result.error
    rows = {
        r["order_id"]: (str(r["amount"]), r["channel"]) for r in spark.table(shop.silver).collect()
    }
    assert rows == {1: ("10.00", None), 2: ("20.00", None), 3: ("30.00", "web")}
