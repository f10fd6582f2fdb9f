"""The fast engine (delta-rs + DataFusion) and Spark give the same answers.

Two Delta tables written by Spark in the shared session's warehouse, with every type the
fast path claims (bigint, int, string, decimal, double, boolean, date, timestamp,
timestamp_ntz) and nulls in each, in two versions (for time travel). Every query of the
corpus runs on both engines through :func:`lakeforge.sql.engine.answer`: the fast one
must take it (``--engine fast``), and column count, each column's Python value type and
every value must agree (doubles to 12 significant digits; row order where the query
orders). Then what must *not* be fast goes to Spark under ``auto`` with its reason, and
the fast engine's refusals are one coded line each.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pyspark.sql import SparkSession

from lakeforge.cli.main import cli
from lakeforge.cli.output import collect_printable
from lakeforge.config.models import Profile
from lakeforge.config.table_refs import rewrite_sql
from lakeforge.errors import Code, LakeforgeError
from lakeforge.sql.engine import Answer, Engine, answer
from lakeforge.sql.fast import Rows

pytestmark = pytest.mark.spark

S = uuid.uuid4().hex[:6]
FACTS = f"gold.sqlx_facts_{S}"
DIMS = f"silver.sqlx_dims_{S}"

ROWS = [
    # id, k, name, amount, ratio, flag, d, ts (UTC), ts_ntz
    (1, 1, "alpha", "12.50", 0.5, True, "2026-01-15", "2026-01-15 08:00:00", "2026-01-15 08:00:00"),
    (2, 1, "Beta ", "100.00", 1.25, False, "2026-02-28", "2026-02-28 23:59:59.123456", "2026-02-28 23:59:59"),
    (3, 2, None, "250.75", -2.75, True, "2026-03-01", "2026-03-01 12:00:00", None),
    (4, 2, "alpha", None, None, None, "2026-03-01", "2026-03-01 12:00:01", "2026-03-01 12:00:01"),
    (5, 3, "gamma", "-7.25", 3.999, True, None, None, "2026-12-31 00:00:00"),
    (6, None, "delta", "0.00", 0.0, False, "2025-12-31", "2025-12-31 23:00:00", "2025-12-31 23:00:00"),
    (7, 3, "", "99999999.99", 1e10, True, "2026-07-04", "2026-07-04 00:00:00", "2026-07-04 00:00:00"),
]  # fmt: skip
NEW_ROWS = [
    (8, 4, "eps", "1.01", 2.5, False, "2026-08-01", "2026-08-01 10:30:00", "2026-08-01 10:30:00")
]


@pytest.fixture(scope="module")
def tables(spark: SparkSession) -> dict[str, Any]:
    schema = (
        "id BIGINT, k INT, name STRING, amount DECIMAL(10,2), ratio DOUBLE, flag BOOLEAN, "
        "d DATE, ts TIMESTAMP, ts_ntz TIMESTAMP_NTZ"
    )

    def frame(rows: list[tuple[Any, ...]]) -> Any:
        values = [
            (
                i, k, n, Decimal(a) if a is not None else None, r, f,
                date.fromisoformat(d) if d else None,
                datetime.fromisoformat(t) if t else None,
                datetime.fromisoformat(z) if z else None,
            )
            for i, k, n, a, r, f, d, t, z in rows
        ]  # fmt: skip
        return spark.createDataFrame(values, schema)

    for layer in ("gold", "silver"):
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {layer}")
    frame(ROWS).write.format("delta").saveAsTable(FACTS)
    frame(NEW_ROWS).write.format("delta").mode("append").saveAsTable(FACTS)
    spark.createDataFrame(
        [(1, "one"), (2, "two"), (2, "deux"), (5, "five"), (None, "none")], "k INT, label STRING"
    ).write.format("delta").saveAsTable(DIMS)
    stamp = spark.sql(f"DESCRIBE HISTORY {FACTS}").where("version = 1").first()
    assert stamp is not None
    warehouse = spark.conf.get("spark.sql.warehouse.dir")
    assert warehouse is not None
    profile = Profile.model_validate({"warehouse": warehouse.removeprefix("file:")})
    return {"profile": profile, "v1_time": stamp["timestamp"].strftime("%Y-%m-%dT%H:%M:%S.%f")}


def _spark_path(spark: SparkSession) -> Any:
    def run(query: str, limit: int) -> Rows:
        df = spark.sql(rewrite_sql(query))
        return Rows(list(df.columns), collect_printable(df, limit))

    return run


def _both(spark: SparkSession, tables: dict[str, Any], query: str) -> tuple[Answer, Answer]:
    args = (tables["profile"], Path.cwd(), 1000, _spark_path(spark))
    fast = answer(query, Engine.FAST, *args)
    slow = answer(query, Engine.SPARK, *args)
    assert fast.engine is Engine.FAST and slow.engine is Engine.SPARK
    return fast, slow


def _no_spark(query: str, limit: int) -> Rows:
    raise AssertionError("the fast engine must not fall back to Spark here")


def _norm(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.12g}") if math.isfinite(value) else value
    return value


def _same(fast: Rows, slow: Rows, ordered: bool) -> None:
    assert len(fast.columns) == len(slow.columns)
    assert len(fast.rows) == len(slow.rows), (fast.rows, slow.rows)
    for i in range(len(slow.columns)):
        kinds_fast = {type(r[i]) for r in fast.rows if r[i] is not None}
        kinds_slow = {type(r[i]) for r in slow.rows if r[i] is not None}
        assert kinds_fast == kinds_slow, (slow.columns[i], kinds_fast, kinds_slow)
    a = [tuple(_norm(v) for v in r) for r in fast.rows]
    b = [tuple(_norm(v) for v in r) for r in slow.rows]
    if ordered:
        assert a == b
    else:
        assert Counter(map(repr, a)) == Counter(map(repr, b))


CORPUS = [
    # aggregates over every type, nulls counted and skipped
    "SELECT count(*) AS n, count(name) AS names, count(DISTINCT k) AS ks, sum(amount) AS s, "
    "avg(amount) AS a, min(amount) AS lo, max(ratio) AS hi, sum(ratio) AS sr, avg(k) AS ak, "
    "sum(k) AS sk, min(d) AS d0, max(d) AS d1, min(ts) AS t0, max(ts_ntz) AS t1, "
    "min(name) AS first_name FROM {F}",
    # grouping on a nullable key; ORDER BY puts NULL first ascending, last descending
    "SELECT name, count(*) AS n, sum(amount) AS s FROM {F} GROUP BY name ORDER BY name",
    "SELECT id, amount FROM {F} ORDER BY amount DESC, id",
    "SELECT k, max(ts) AS last_ts FROM {F} GROUP BY k HAVING count(*) > 1 ORDER BY k DESC",
    # joins
    "SELECT f.id, m.label FROM {F} f LEFT JOIN {D} m ON f.k = m.k ORDER BY f.id, m.label",
    "SELECT f.id, m.label FROM {F} AS f JOIN {D} AS m ON f.k = m.k WHERE m.label <> 'two' "
    "ORDER BY 1, 2",
    "SELECT f.id FROM {F} f WHERE EXISTS (SELECT 1 FROM {D} m WHERE m.k = f.k) ORDER BY f.id",
    "SELECT id FROM {F} WHERE k IN (SELECT k FROM {D} WHERE label LIKE 't%') ORDER BY id",
    # logic, CASE, COALESCE, IN, BETWEEN, LIKE, booleans
    "SELECT id, CASE WHEN amount > 100 THEN 'big' WHEN amount IS NULL THEN 'none' "
    "ELSE 'small' END AS size, coalesce(name, 'n/a') AS nm, flag IS NULL AS unknown, "
    "NOT flag AS off FROM {F} WHERE d BETWEEN DATE '2026-01-01' AND DATE '2026-12-31' "
    "AND k IN (1, 2, 3) AND (name LIKE 'a%' OR name IS NULL OR flag) ORDER BY id",
    "SELECT id, IF(ratio > 1, k, -k) AS signed FROM {F} ORDER BY id",
    # dates and timestamps (TIMESTAMP is an instant shown in the session's UTC; NTZ is not)
    "SELECT year(d) AS y, month(d) AS m, day(d) AS dd, count(*) AS n FROM {F} "
    "GROUP BY year(d), month(d), day(d) ORDER BY y, m, dd",
    "SELECT id, ts, ts_ntz FROM {F} WHERE ts >= TIMESTAMP '2026-03-01 12:00:00' ORDER BY id",
    "SELECT id FROM {F} WHERE d = DATE '2026-03-01' AND ts_ntz IS NOT NULL ORDER BY id",
    "SELECT extract(year FROM ts) AS y, count(*) AS n FROM {F} GROUP BY 1 ORDER BY 1",
    # decimals and doubles
    "SELECT id, amount * 2 AS dbl, amount + 1.5 AS plus, -amount AS neg, "
    "abs(amount - 100) AS dist, ratio * k AS rk, k + 1 AS k1 FROM {F} ORDER BY id",
    "SELECT CAST(ratio AS INT) AS ri, CAST(k AS DOUBLE) AS kd, CAST(k AS BIGINT) AS kb, "
    "CAST('2026-05-05' AS DATE) AS lit, CAST(amount AS DECIMAL(12,1)) AS a1, "
    "0.1 + 0.2 AS tenths, 1e3 AS dbl FROM {F} WHERE ratio < 1e6 ORDER BY id",
    "SELECT id, CAST(d AS TIMESTAMP) AS midnight FROM {F} WHERE "
    "ts_ntz < TIMESTAMP_NTZ '2026-03-01 12:00:01' ORDER BY id",
    # strings
    "SELECT id, lower(name) AS lo, upper(name) AS up, length(name) AS len, trim(name) AS tr "
    "FROM {F} ORDER BY id",
    # windows
    "SELECT id, row_number() OVER (PARTITION BY k ORDER BY id) AS rn, "
    "sum(amount) OVER (PARTITION BY k ORDER BY id) AS running, "
    "count(*) OVER (PARTITION BY k) AS in_k FROM {F} ORDER BY id",
    # CTEs, set operations, DISTINCT, LIMIT, subqueries
    "WITH a AS (SELECT k FROM {F} WHERE flag) SELECT k FROM a UNION SELECT k FROM {D} ORDER BY k",
    "SELECT k FROM {F} INTERSECT SELECT k FROM {D} ORDER BY k",
    "SELECT k FROM {F} EXCEPT SELECT k FROM {D} ORDER BY k",
    "SELECT k FROM {F} UNION ALL SELECT k FROM {D} ORDER BY k",
    "SELECT DISTINCT k FROM {F} ORDER BY k LIMIT 3",
    "SELECT t.k, t.n FROM (SELECT k, count(*) AS n FROM {F} GROUP BY k) t WHERE t.n >= 2 "
    "ORDER BY t.k",
    # time travel: by version, by time, one table at two versions
    "SELECT count(*) AS n, sum(amount) AS s FROM {F}@0",
    "SELECT count(*) AS n FROM {F}@{T1}",
    "SELECT b.id FROM {F} b LEFT JOIN {F}@0 a ON a.id = b.id WHERE a.id IS NULL ORDER BY b.id",
]


@pytest.mark.parametrize("query", CORPUS)
def test_both_engines_agree(spark: SparkSession, tables: dict[str, Any], query: str) -> None:
    sql = query.format(F=FACTS, D=DIMS, T1=tables["v1_time"])
    fast, slow = _both(spark, tables, sql)
    _same(fast.rows, slow.rows, ordered="ORDER BY" in sql and "LIMIT" not in sql)


def test_time_travel_reads_the_version_asked_for(
    spark: SparkSession, tables: dict[str, Any]
) -> None:
    # Not only equal to Spark: @0 lacks the appended row, the latest has it.
    at0, _ = _both(spark, tables, f"SELECT count(*) AS n FROM {FACTS}@0")
    now, _ = _both(spark, tables, f"SELECT count(*) AS n FROM {FACTS}")
    assert (at0.rows.rows, now.rows.rows) == ([(len(ROWS),)], [(len(ROWS) + len(NEW_ROWS),)])


@pytest.mark.parametrize(
    "query, reason",
    [
        ("SELECT id, amount / k AS per FROM {F} ORDER BY id", "DIV"),
        ("SELECT date_format(d, 'yyyy-MM') AS m FROM {F} ORDER BY id", "function"),
        ("SELECT concat(name, '!') AS c FROM {F} ORDER BY id", "function"),
        ("SELECT round(ratio, 1) AS r FROM {F} ORDER BY id", "function"),
        ("SELECT CAST(ratio AS STRING) AS s FROM {F} ORDER BY id", "CAST to STRING"),
        ("SELECT 1 AS one", "reads no lakeforge table"),
    ],
)
def test_what_the_fast_engine_does_not_take_spark_answers(
    spark: SparkSession, tables: dict[str, Any], query: str, reason: str
) -> None:
    sql = query.format(F=FACTS)
    args = (tables["profile"], Path.cwd(), 1000, _spark_path(spark))
    auto = answer(sql, Engine.AUTO, *args)
    assert auto.engine is Engine.SPARK and auto.why_not_fast and reason in auto.why_not_fast
    assert auto.rows.rows == answer(sql, Engine.SPARK, *args).rows.rows
    with pytest.raises(LakeforgeError) as refused:
        answer(sql, Engine.FAST, *args)
    assert refused.value.code == Code.SQL_NOT_FAST and reason in refused.value.message


def test_the_cli_says_which_engine_answered(
    spark: SparkSession, tables: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "local.yml").write_text(f"warehouse: {tables['profile'].warehouse}\n")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    fast = runner.invoke(
        cli, ["sql", f"SELECT count(*) AS n FROM {FACTS}@0", "--format", "csv"], prog_name="lf"
    )
    assert fast.exit_code == 0, fast.output
    assert fast.stdout.splitlines() == ["n", str(len(ROWS))]
    assert "answered by the fast engine (delta-rs)" in fast.stderr
    slow = runner.invoke(
        cli, ["sql", f"SELECT sum(amount) / count(*) AS m FROM {FACTS}", "--format", "csv"]
    )
    assert slow.exit_code == 0, slow.output
    assert "answered by the Spark" in slow.stderr and "not fast: DIV" in slow.stderr
    forced = runner.invoke(cli, ["sql", f"SELECT count(*) FROM {FACTS}", "--engine", "spark"])
    assert forced.exit_code == 0 and "answered by the Spark" in forced.stderr


@pytest.mark.parametrize(
    "query, code, says",
    [
        ("DELETE FROM {F} WHERE id = 1", Code.SQL_READ_ONLY, "read-only"),
        ("INSERT INTO {F} SELECT * FROM {F}", Code.SQL_READ_ONLY, "read-only"),
        ("SELECT id FROM {F} WHER id = 1", Code.SQL_SYNTAX, "line 1, column"),
        ("SELECT * FROM {F}@99", Code.VERSION_NOT_FOUND, "its latest is 1"),
        ("SELECT * FROM {F}@2001-01-01", Code.VERSION_NOT_FOUND, "first commit"),
        ("SELECT * FROM {F}@2999-01-01", Code.VERSION_NOT_FOUND, "its last (version 1)"),
        ("SELECT * FROM {F}@banana", Code.BAD_TABLE_REF, "banana"),
    ],
)
def test_fast_engine_refusals_are_one_coded_line(
    tables: dict[str, Any], query: str, code: str, says: str
) -> None:
    with pytest.raises(LakeforgeError) as refused:
        answer(query.format(F=FACTS), Engine.FAST, tables["profile"], Path.cwd(), 10, _no_spark)
    assert refused.value.code == code, refused.value.lines()
    assert says in refused.value.message
    assert len(refused.value.lines()) == 1


def test_an_unknown_table_lists_the_tables_there(tables: dict[str, Any]) -> None:
    from lakeforge.sql.tables import Warehouse

    with pytest.raises(LakeforgeError) as refused:
        answer("SELECT * FROM gold.no_such_table", Engine.FAST, tables["profile"], Path.cwd(), 10,
               _no_spark)  # fmt: skip
    assert refused.value.code == Code.TABLE_NOT_FOUND and len(refused.value.lines()) == 1
    listed = refused.value.message.split("tables there: ", 1)[1].removesuffix(" ...").split(", ")
    # The shared warehouse holds every test's tables: the first 30 are named.
    known = Warehouse.of(tables["profile"], Path.cwd()).known()
    assert FACTS in known and DIMS in known
    assert listed == known[:30]


def test_an_external_hive_metastore_always_answers_on_spark(tables: dict[str, Any]) -> None:
    profile = tables["profile"].model_copy(
        update={"metastore": Profile.model_validate({"metastore": {"kind": "hive"}}).metastore}
    )
    called = []

    def spark_path(q: str, n: int) -> Rows:
        called.append(q)
        return Rows(["n"], [(1,)])

    got = answer(
        f"SELECT count(*) AS n FROM {FACTS}", Engine.AUTO, profile, Path.cwd(), 10, spark_path
    )
    assert (
        got.engine is Engine.SPARK and called and "external Hive metastore" in str(got.why_not_fast)
    )


def test_the_fast_engine_follows_restore_and_drop_recreate(
    spark: SparkSession, tables: dict[str, Any]
) -> None:
    """No catalog of its own to go stale: what Spark's metastore does to a table, the fast
    engine sees at once (a restore is a new version; a dropped managed table's files go;
    a table made again under the name starts at version 0)."""
    name = f"gold.sqlx_life_{S}"
    count = f"SELECT count(*) AS n FROM {name}"

    def both(query: str) -> list[tuple[Any, ...]]:
        fast, slow = _both(spark, tables, query)
        assert fast.rows.rows == slow.rows.rows
        return fast.rows.rows

    spark.range(3).write.format("delta").saveAsTable(name)
    spark.range(5).write.format("delta").mode("overwrite").saveAsTable(name)
    assert both(count) == [(5,)]
    spark.sql(f"RESTORE TABLE {name} TO VERSION AS OF 0")
    assert both(count) == [(3,)] and both(f"{count}@1") == [(5,)] and both(f"{count}@2") == [(3,)]
    spark.sql(f"DROP TABLE {name}")
    with pytest.raises(LakeforgeError) as gone:
        answer(count, Engine.FAST, tables["profile"], Path.cwd(), 10, _spark_path(spark))
    assert gone.value.code == Code.TABLE_NOT_FOUND
    spark.range(7).write.format("delta").saveAsTable(name)
    assert both(count) == [(7,)]
    with pytest.raises(LakeforgeError) as old:
        answer(f"{count}@1", Engine.FAST, tables["profile"], Path.cwd(), 10, _spark_path(spark))
    assert old.value.code == Code.VERSION_NOT_FOUND and "its latest is 0" in old.value.message
