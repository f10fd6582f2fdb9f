"""A whole pipeline on the shared session: accounting, quarantine, versions, failures."""

from __future__ import annotations

import csv
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import Row, SparkSession

from lakeforge.errors import Code
from lakeforge.pipeline.executor import execute
from lakeforge.plan.builder import build_plan
from lakeforge.plan.load import load_pipeline
from lakeforge.results import RunResult
from tests.helpers import make_project

pytestmark = pytest.mark.spark

ORDERS = [
    ["order_id", "amount", "order_date"],
    ["1", "10.50", "2026-11-01"],
    ["2", "4.25", "2026-11-01"],
    ["3", "abc", "2026-11-01"],  # cast failure: amount
    ["4", "7.00", "2026-02-30"],  # impossible date
    ["", "3.00", "2026-11-02"],  # null business key
    ["6", "20.00", "2026-11-02"],
    ["7", "", "2026-11-02"],  # empty amount is null, allowed (nullable)
]


def pipeline_text(suffix: str) -> str:
    return f"""\
name: shop_{suffix}
bronze:
  orders_{suffix}:
    source:
      format: csv
      path: raw/orders/*.csv
silver:
  orders_{suffix}:
    from: bronze.orders_{suffix}
    keys: [order_id]
    columns:
      order_id: bigint
      amount: decimal(10,2)
      order_date: date
gold:
  revenue_{suffix}:
    sql: |
      SELECT order_date, SUM(amount) AS revenue, COUNT(*) AS orders
      FROM silver.orders_{suffix}
      GROUP BY order_date
"""


def write_csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


def expected_split(rows: list[list[str]]) -> tuple[list[list[str]], list[list[str]]]:
    """An independent oracle in plain Python for which rows are valid."""
    from datetime import date
    from decimal import InvalidOperation

    good, bad = [], []
    for r in rows[1:]:
        ok = r[0] != ""
        try:
            if r[1]:
                Decimal(r[1])
            date.fromisoformat(r[2])
        except (InvalidOperation, ValueError):
            ok = False
        (good if ok else bad).append(r)
    return good, bad


# A batch the second run brings: one new file with one new valid order.
DAY2 = [ORDERS[0], ["8", "1.00", "2026-11-03"]]


@dataclass(frozen=True)
class Shop:
    """One pipeline run twice (a module fixture shared by the two tests below), with what
    the first run left in its tables read right after it."""

    s: str
    first: RunResult
    second: RunResult
    landed: list[Row]
    dtypes: dict[str, str]
    quarantine: list[Row]
    gold: list[Row]


@pytest.fixture(scope="module")
def shop(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    s = uuid.uuid4().hex[:6]
    root = tmp_path_factory.mktemp("shop")
    path = make_project(root, pipeline_text(s))
    write_csv(root / "raw" / "orders" / "day1.csv", ORDERS)
    loaded = load_pipeline(path)
    first = execute(build_plan(loaded), spark, loaded.project_root)
    landed = spark.table(f"silver.orders_{s}")
    seen = (
        landed.collect(),
        dict(landed.dtypes),
        spark.table(f"silver.orders_{s}__quarantine").collect(),
        spark.table(f"gold.revenue_{s}").collect(),
    )
    # A new file (rewriting day1.csv in place would be a changed file: LF-RUN-004).
    write_csv(root / "raw" / "orders" / "day2.csv", DAY2)
    second = execute(build_plan(loaded), spark, loaded.project_root)
    return Shop(s, first, second, *seen)


def test_run_lands_quarantines_and_accounts(shop: Shop) -> None:
    s, result = shop.s, shop.first
    assert result.ok, result.error

    good, bad = expected_split(ORDERS)
    bronze, silver, gold = result.steps
    assert (bronze.rows_read, bronze.rows_written, bronze.version) == (
        len(ORDERS) - 1,
        len(ORDERS) - 1,
        0,
    )
    assert silver.rows_read == len(ORDERS) - 1
    assert (silver.rows_written, silver.rows_quarantined) == (len(good), len(bad))
    assert silver.inputs == {f"bronze.orders_{s}": 0}
    assert all(step.balanced for step in result.steps)

    assert sorted(r["order_id"] for r in shop.landed) == sorted(int(r[0]) for r in good)
    assert shop.dtypes["amount"] == "decimal(10,2)"
    assert shop.dtypes["order_date"] == "date"

    q = {r["record"]: r for r in shop.quarantine}
    assert len(q) == len(bad)
    reasons = sorted(r["reason"] for r in q.values())
    assert reasons == sorted(
        [
            "cast_failed:amount:decimal(10,2):abc",
            "cast_failed:order_date:date:2026-02-30",
            "null_not_allowed:order_id",
        ]
    )
    for row in q.values():
        assert row["source_file"].endswith("day1.csv")
        assert row["_lf_run_id"] == result.run_id
        assert row["source_table"] == f"bronze.orders_{s}"
    # The original record keeps every column, nulls included.
    assert any('"order_id":null' in record for record in q)

    revenue = {r["order_date"].isoformat(): r["revenue"] for r in shop.gold}
    expect: dict[str, Decimal] = {}
    for r in good:
        expect[r[2]] = expect.get(r[2], Decimal(0)) + (Decimal(r[1]) if r[1] else Decimal(0))
    assert revenue == expect
    assert gold.rows_read == len(good)


def test_second_run_makes_new_versions(spark: SparkSession, shop: Shop) -> None:
    s, first, second = shop.s, shop.first, shop.second
    good, _ = expected_split(ORDERS)
    assert first.ok and second.ok
    assert [st.version for st in second.steps] == [1, 1, 1]
    hist = spark.sql(f"DESCRIBE HISTORY silver.orders_{s}").orderBy("version").collect()
    assert [first.run_id in h["userMetadata"] for h in hist] == [True, False]
    assert spark.sql(f"SELECT COUNT(*) AS n FROM silver.orders_{s} VERSION AS OF 0").first()[
        "n"
    ] == len(good)  # type: ignore[index]
    # Only the new file was ingested; the overwrite silver rebuilds from all of bronze.
    assert second.steps[0].rows_written == 1
    assert spark.table(f"bronze.orders_{s}").count() == len(ORDERS) - 1 + 1
    assert spark.table(f"silver.orders_{s}").count() == len(good) + 1


def test_missing_source_fails_step_and_skips_downstream(
    spark: SparkSession, tmp_path: Path
) -> None:
    s = uuid.uuid4().hex[:6]
    loaded = load_pipeline(make_project(tmp_path, pipeline_text(s)))
    result = execute(build_plan(loaded), spark, loaded.project_root)
    assert not result.ok
    assert result.error_code == Code.SOURCE_EMPTY
    assert [st.status for st in result.steps] == ["failed", "skipped", "skipped"]
    assert "pipeline.yml:" in (result.error or "")


def test_declared_column_missing_upstream(spark: SparkSession, tmp_path: Path) -> None:
    s = uuid.uuid4().hex[:6]
    text = pipeline_text(s).replace(
        "      order_date: date\n", "      order_date: date\n      channel: string\n"
    )
    loaded = load_pipeline(make_project(tmp_path, text))
    write_csv(tmp_path / "raw" / "orders" / "d.csv", ORDERS[:2])
    result = execute(build_plan(loaded), spark, loaded.project_root)
    assert [st.status for st in result.steps] == ["ok", "failed", "skipped"]
    # LF-RUN-005, as the README's errors table always said (issue 14 point 4; was LF-RUN-001).
    assert result.error_code == Code.SCHEMA_CHANGED
    assert "['channel']" in (result.error or "")
