"""Time travel on the shared session: diffs between versions, restores, and their CLI."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from lakeforge.cli.main import cli
from lakeforge.config.table_refs import VersionedRef
from lakeforge.errors import Code, TimeTravelError
from lakeforge.io.delta import latest_version, read_version, write_table
from lakeforge.runtime.session import ensure_schemas
from lakeforge.timetravel.diff import ColumnChange, diff_versions
from lakeforge.timetravel.restore import restore_table

pytestmark = pytest.mark.spark

USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
RunCli = Callable[..., Result]

ORDERS_SCHEMA = "order_id BIGINT, line INT, amount DECIMAL(10,2), status STRING, _lf_run_id STRING"
V0 = [
    (1, 1, Decimal("10.00"), "new", "r0"),
    (1, 2, Decimal("5.00"), "new", "r0"),
    (2, 1, Decimal("7.50"), "new", "r0"),
    (3, 1, Decimal("1.00"), "new", "r0"),
    (4, 1, None, "new", "r0"),
]
# From V0: (1,2) status changes, (4,1) amount null -> 2.00 (null-safe), (3,1) goes,
# (5,1) arrives. Every row gets a new _lf_run_id, which must not count as a change.
V1 = [
    (1, 1, Decimal("10.00"), "new", "r1"),
    (1, 2, Decimal("5.00"), "shipped", "r1"),
    (2, 1, Decimal("7.50"), "new", "r1"),
    (4, 1, Decimal("2.00"), "new", "r1"),
    (5, 1, Decimal("3.00"), "new", "r1"),
]


def unique(name: str) -> str:
    return f"{name}_{uuid.uuid4().hex[:8]}"


def write(
    spark: SparkSession, table: str, rows: list[tuple[Any, ...]], schema: str, **kw: bool
) -> int:
    df = spark.createDataFrame(rows, schema)
    return write_table(df, table, "overwrite", f"run-{uuid.uuid4().hex[:6]}", table, **kw).version


def make_orders(spark: SparkSession) -> str:
    """silver.orders_<id> with version 0 = V0 and version 1 = V1."""
    ensure_schemas(spark)
    table = f"silver.{unique('orders')}"
    assert write(spark, table, V0, ORDERS_SCHEMA) == 0
    assert write(spark, table, V1, ORDERS_SCHEMA) == 1
    return table


@pytest.fixture(scope="module")
def orders_ro(spark: SparkSession) -> str:
    """An orders table shared by the tests of this module that never write to it."""
    return make_orders(spark)


@pytest.fixture
def orders(spark: SparkSession) -> str:
    """A fresh orders table, for tests that commit to it."""
    return make_orders(spark)


def history(spark: SparkSession, table: str) -> list[dict[str, Any]]:
    rows = spark.sql(f"DESCRIBE HISTORY {table}").orderBy("version")
    return [r.asDict() for r in rows.select("version", "operation", "userMetadata").collect()]


# --- diff --------------------------------------------------------------------------------


def test_diff_with_keys_counts_each_category(spark: SparkSession, orders_ro: str) -> None:
    d = diff_versions(spark, orders_ro, 0, 1, keys=["order_id", "line"])

    assert (d.old_version, d.new_version) == (0, 1)
    assert d.keys == ("order_id", "line")
    assert d.schema_changes == ()
    assert d.compared_columns == ("amount", "status")  # keys and _lf_ columns left out
    assert (d.added, d.removed, d.changed, d.unchanged) == (1, 1, 2, 2)
    assert (d.rows_old, d.rows_new) == (5, 5)
    assert d.added_sample == ((5, 1),)
    assert d.removed_sample == ((3, 1),)
    assert d.changed_sample == ((1, 2), (4, 1))  # ordered by key
    assert d.has_changes

    same = diff_versions(spark, orders_ro, 1, VersionedRef(orders_ro), keys=["ORDER_ID", "line"])
    assert (same.added, same.removed, same.changed, same.unchanged) == (0, 0, 0, 5)
    assert not same.has_changes


def test_diff_with_keys_counts_match_a_brute_force_oracle(spark: SparkSession) -> None:
    ensure_schemas(spark)
    table = f"gold.{unique('oracle')}"
    old = {k: (k * 7) % 5 if k % 4 else None for k in range(0, 60)}
    new = {k: ((k * 7) % 5 if k % 4 else None) if k % 6 else -1 for k in range(20, 90)}
    write(spark, table, list(old.items()), "k INT, v INT")
    write(spark, table, list(new.items()), "k INT, v INT")

    d = diff_versions(spark, table, 0, 1, keys=["k"])

    both = old.keys() & new.keys()
    changed = sorted(k for k in both if old[k] != new[k])
    assert d.added == len(new.keys() - old.keys())
    assert d.removed == len(old.keys() - new.keys())
    assert d.changed == len(changed)
    assert d.unchanged == len(both) - len(changed)
    assert [k for (k,) in d.changed_sample] == changed[:10]
    assert [k for (k,) in d.added_sample] == sorted(new.keys() - old.keys())[:10]


def test_diff_reports_schema_changes_and_compares_common_columns(
    spark: SparkSession, orders: str
) -> None:
    # Version 2: amount DECIMAL -> DOUBLE, status dropped, channel added.
    v2 = [
        (1, 1, 10.0, "web", "r2"),
        (1, 2, 5.0, "web", "r2"),
        (2, 1, 8.0, "shop", "r2"),  # amount changed
        (4, 1, 2.0, "web", "r2"),
        (5, 1, 3.0, "web", "r2"),
        (6, 1, None, "web", "r2"),  # added
    ]
    schema = "order_id BIGINT, line INT, amount DOUBLE, channel STRING, _lf_run_id STRING"
    assert write(spark, orders, v2, schema, overwrite_schema=True) == 2

    d = diff_versions(spark, orders, VersionedRef(orders, version=1), None, ["order_id", "line"])

    assert d.new_version == 2
    assert set(d.schema_changes) == {
        ColumnChange("channel", None, "string"),
        ColumnChange("status", "string", None),
        ColumnChange("amount", "decimal(10,2)", "double"),
    }
    assert [c.name for c in d.columns_added] == ["channel"]
    assert [c.name for c in d.columns_removed] == ["status"]
    assert [c.name for c in d.columns_retyped] == ["amount"]
    # Only amount is compared: 10.00 vs 10.0 is the same value under a new type.
    assert d.compared_columns == ("amount",)
    assert (d.added, d.removed, d.changed, d.unchanged) == (1, 0, 1, 4)
    assert d.changed_sample == ((2, 1),)

    whole = diff_versions(spark, orders, 1, 2)
    assert whole.compared_columns == ("order_id", "line", "amount")
    assert (whole.added, whole.removed, whole.unchanged) == (2, 1, 4)

    data = d.to_dict()
    assert data["schema"]["retyped"] == [
        {"name": "amount", "old_type": "decimal(10,2)", "new_type": "double"}
    ]
    assert data["rows"]["changed"] == 1
    assert data["samples"]["added"] == [{"order_id": 6, "line": 1}]


def test_diff_compares_non_numeric_retypes_by_text(spark: SparkSession) -> None:
    ensure_schemas(spark)
    table = f"gold.{unique('codes')}"
    write(spark, table, [(1, 1), (2, 2), (3, 3)], "k INT, code INT")
    schema = "k STRING, code STRING"
    write(spark, table, [("1", "1"), ("2", "two"), ("4", "4")], schema, overwrite_schema=True)

    d = diff_versions(spark, table, 0, 1, ["k"])

    assert {c.name for c in d.columns_retyped} == {"k", "code"}
    assert (d.added, d.removed, d.changed, d.unchanged) == (1, 1, 1, 1)
    # The key changed type, so samples show its text form.
    assert d.added_sample == (("4",),)
    assert d.removed_sample == (("3",),)
    assert d.changed_sample == (("2",),)


def test_diff_without_keys_compares_rows_as_multisets(spark: SparkSession) -> None:
    ensure_schemas(spark)
    table = f"bronze.{unique('events')}"
    schema = "name STRING, n INT, tags MAP<STRING, INT>, _lf_source_file STRING"
    old = [("a", 1, {"x": 1}, "f0"), ("a", 1, {"x": 1}, "f0"), ("b", 2, None, "f0")]
    # One copy of ("a", 1) goes, a second ("b", 2) and a ("c", 3) arrive; new source files.
    new = [("a", 1, {"x": 1}, "f1"), ("b", 2, None, "f1"), ("b", 2, None, "f1"), ("c", 3, {}, "f2")]
    write(spark, table, old, schema)
    write(spark, table, new, schema)

    d = diff_versions(spark, table, 0, 1)

    assert d.keys == () and d.changed is None
    assert d.compared_columns == ("name", "n", "tags")
    assert (d.rows_old, d.rows_new) == (3, 4)
    assert (d.added, d.removed, d.unchanged) == (2, 1, 2)
    # Maps are compared (and shown) in their JSON form.
    assert d.added_sample == (("b", 2, None), ("c", 3, "{}"))
    assert d.removed_sample == (("a", 1, '{"x":1}'),)
    assert d.changed_sample == ()

    again = diff_versions(spark, table, 1, 1)
    assert (again.added, again.removed, again.unchanged) == (0, 0, 4)


def test_diff_resolves_timestamps_like_delta(spark: SparkSession, orders_ro: str) -> None:
    # CAST in Spark: the session clock is UTC whatever the machine's zone is.
    from delta.tables import DeltaTable

    log = DeltaTable.forName(spark, orders_ro).history()
    stamps = {
        r["version"]: r["ts"]
        for r in log.selectExpr("version", "CAST(timestamp AS STRING) AS ts").collect()
    }
    at_v0 = VersionedRef(orders_ro, timestamp=stamps[0])
    at_v1 = VersionedRef(orders_ro, timestamp=stamps[1])
    d = diff_versions(spark, orders_ro, at_v0, at_v1, ["order_id", "line"])
    assert (d.old_version, d.new_version) == (0, 1)
    assert d.changed == 2

    with pytest.raises(TimeTravelError) as exc:
        diff_versions(spark, orders_ro, VersionedRef(orders_ro, timestamp="2000-01-01"), 1)
    assert exc.value.code == Code.VERSION_NOT_FOUND


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda s, t: diff_versions(s, t, 0, 7), Code.VERSION_NOT_FOUND),
        (lambda s, t: diff_versions(s, t, -1, 1), Code.BAD_TABLE_REF),
        (lambda s, t: diff_versions(s, t + "_missing", 0, 1), Code.TABLE_NOT_FOUND),
        (lambda s, t: diff_versions(s, "orders", 0, 1), Code.BAD_TABLE_REF),
        (lambda s, t: diff_versions(s, t, VersionedRef("silver.other", 0), 1), Code.BAD_TABLE_REF),
        (lambda s, t: diff_versions(s, t, 0, 1, keys=["nope"]), Code.BAD_VALUE),
        (lambda s, t: diff_versions(s, t, 0, 1, keys=["order_id"]), Code.BAD_VALUE),  # not unique
    ],
    ids=["version", "negative", "table", "unqualified", "other-table", "key", "duplicate-key"],
)
def test_diff_errors_have_codes(
    spark: SparkSession, orders_ro: str, call: Callable[[SparkSession, str], Any], code: str
) -> None:
    with pytest.raises(TimeTravelError) as exc:
        call(spark, orders_ro)
    assert exc.value.code == code


# --- restore -----------------------------------------------------------------------------


def test_restore_is_one_audited_commit_with_the_old_content(
    spark: SparkSession, orders: str
) -> None:
    spark.conf.set(USER_METADATA_CONF, "someone else's")
    try:
        commit = restore_table(spark, orders, 0, "restore-run-1")
        # The session conf is put back for whoever set it.
        assert spark.conf.get(USER_METADATA_CONF) == "someone else's"
    finally:
        spark.conf.unset(USER_METADATA_CONF)

    assert (commit.table, commit.version, commit.operation) == (orders, 2, "RESTORE")
    last = history(spark, orders)[-1]
    assert (last["version"], last["operation"]) == (2, "RESTORE")
    assert json.loads(last["userMetadata"]) == {
        "lakeforge_run_id": "restore-run-1",
        "step": orders,
        "operation": "restore",
        "restored_to": 0,
    }
    assertDataFrameEqual(spark.table(orders), read_version(spark, orders, 0))
    assertDataFrameEqual(read_version(spark, orders, 2), spark.createDataFrame(V0, ORDERS_SCHEMA))
    # The versions in between stay readable: nothing was rewritten.
    assertDataFrameEqual(read_version(spark, orders, 1), spark.createDataFrame(V1, ORDERS_SCHEMA))
    assert not diff_versions(spark, orders, 0, 2, ["order_id", "line"]).has_changes


def test_restore_to_the_latest_version_is_a_no_op(spark: SparkSession, orders: str) -> None:
    commit = restore_table(spark, orders, 1, "noop-run")
    assert (commit.version, commit.committed_now) == (1, False)
    assert [h["version"] for h in history(spark, orders)] == [0, 1]
    assertDataFrameEqual(spark.table(orders), spark.createDataFrame(V1, ORDERS_SCHEMA))


def test_restore_to_a_missing_version_or_table_raises_and_commits_nothing(
    spark: SparkSession, orders_ro: str
) -> None:
    for version in (2, 99):
        with pytest.raises(TimeTravelError) as exc:
            restore_table(spark, orders_ro, version, "r")
        assert exc.value.code == Code.VERSION_NOT_FOUND
        assert "available: 0..1" in exc.value.message
    with pytest.raises(TimeTravelError) as exc:
        restore_table(spark, orders_ro + "_missing", 0, "r")
    assert exc.value.code == Code.TABLE_NOT_FOUND
    assert latest_version(spark, orders_ro) == 1


# --- CLI ---------------------------------------------------------------------------------


@pytest.fixture
def run_cli(lakehouse_root: Path, monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """Invoke ``lakeforge`` in-process from the shared session's project root.

    There the CLI's default profile names the same warehouse and metastore as the
    session fixture, and ``build_session`` joins that running session (getOrCreate).
    """
    monkeypatch.chdir(lakehouse_root)
    monkeypatch.delenv("LAKEFORGE_ENV", raising=False)

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args))

    return run


def test_cli_diff_json_and_table(spark: SparkSession, orders_ro: str, run_cli: RunCli) -> None:
    keys = ("--keys", "order_id,line")
    res = run_cli("diff", f"{orders_ro}@0", f"{orders_ro}@v1", *keys, "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert (data["old_version"], data["new_version"]) == (0, 1)
    assert data["rows"] == {
        "old": 5,
        "new": 5,
        "added": 1,
        "removed": 1,
        "changed": 2,
        "unchanged": 2,
    }
    assert data["samples"]["changed"] == [{"order_id": 1, "line": 2}, {"order_id": 4, "line": 1}]

    res = run_cli("diff", f"{orders_ro}@0", orders_ro.upper())
    assert res.exit_code == 0, res.output
    assert f"{orders_ro}: version 0 -> 1 (keys: none: whole rows)" in res.stdout
    assert "schema: unchanged" in res.stdout


def test_cli_restore_prints_the_new_version(
    spark: SparkSession, orders: str, run_cli: RunCli
) -> None:
    res = run_cli("restore", orders, "--to-version", "0", "--run-id", "cli-restore")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == "2"
    last = history(spark, orders)[-1]
    assert last["operation"] == "RESTORE"
    assert json.loads(last["userMetadata"])["lakeforge_run_id"] == "cli-restore"
    assertDataFrameEqual(spark.table(orders), read_version(spark, orders, 0))


def test_cli_sql_understands_at_references(
    spark: SparkSession, orders_ro: str, run_cli: RunCli
) -> None:
    query = (
        f"SELECT (SELECT count(*) FROM {orders_ro}@0 WHERE status = 'new') AS v0_new, "
        f"(SELECT count(*) FROM {orders_ro}@v1 WHERE status = 'new') AS v1_new, "
        f"'{orders_ro}@99' AS literal"
    )
    res = run_cli("sql", query, "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip()) == {
        "v0_new": 5,
        "v1_new": 4,
        "literal": f"{orders_ro}@99",
    }


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("diff", "{t}@0", "silver.other@1"), "LF-TT-002"),
        (("diff", "{t}@0", "{t}@9"), "LF-TT-001"),
        (("diff", "{t}@x", "{t}"), "LF-TT-002"),
        (("restore", "{t}", "--to-version", "9"), "LF-TT-001"),
        (("restore", "{t}@1", "--to-version", "0"), "LF-TT-002"),
        (("restore", "silver.no_such_table_xyz", "--to-version", "0"), "LF-SQL-002"),
        (("sql", "SELECT * FROM orders@1"), "LF-TT-002"),
    ],
)
def test_cli_errors_are_one_line_with_a_code(
    spark: SparkSession, orders_ro: str, run_cli: RunCli, args: tuple[str, ...], code: str
) -> None:
    res = run_cli(*[a.format(t=orders_ro) for a in args])
    assert res.exit_code == 1
    errors = [line for line in res.output.splitlines() if line.startswith("error ")]
    assert len(errors) == 1 and code in errors[0], res.output
    assert "Traceback" not in res.output
