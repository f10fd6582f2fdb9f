"""The fast engine's reading of a query (lakeforge.sql.statement), without any engine."""

from __future__ import annotations

import pytest

from lakeforge.config.table_refs import VersionedRef
from lakeforge.errors import Code, LakeforgeError
from lakeforge.sql.statement import NotFast, prepare


def test_tables_become_registered_names_with_their_versions() -> None:
    got = prepare(
        "WITH recent AS (SELECT * FROM silver.orders@3) "
        "SELECT o.id, c.name FROM recent o JOIN Silver.Customers@2026-11-01 AS c "
        "ON o.k = c.k JOIN silver.orders x ON x.id = o.id"
    )
    names = {u.ref: u.registered for u in got.tables}
    assert set(names) == {
        VersionedRef("silver.orders", version=3),
        VersionedRef("silver.customers", timestamp="2026-11-01"),
        VersionedRef("silver.orders"),
    }
    assert names[VersionedRef("silver.orders", version=3)] == "silver__orders__v3"
    assert names[VersionedRef("silver.orders")] == "silver__orders"
    when = VersionedRef("silver.customers", timestamp="2026-11-01")
    assert names[when].startswith("silver__customers__t")
    # Registered names replace the references; aliases stay; the CTE is not a table.
    assert "silver__orders__v3 AS orders" in got.sql and "AS c" in got.sql
    assert "recent AS o" in got.sql and "silver.orders" not in got.sql


def test_one_table_twice_is_registered_once() -> None:
    got = prepare("SELECT * FROM gold.t a JOIN gold.t b ON a.k = b.k")
    assert [u.registered for u in got.tables] == ["gold__t"]


def test_spark_null_ordering_is_made_explicit() -> None:
    # Spark sorts NULL first ascending and last descending; DataFusion the other way.
    sql = prepare("SELECT k FROM gold.t ORDER BY k, j DESC").sql
    assert "ORDER BY k NULLS FIRST, j DESC NULLS LAST" in sql


@pytest.mark.parametrize(
    "query, says",
    [
        ("SELECT a / b FROM gold.t", "DIV"),
        ("SELECT date_format(d, 'yyyy') FROM gold.t", "function"),
        ("SELECT concat(a, b) FROM gold.t", "function CONCAT"),
        ("SELECT CAST(a AS STRING) FROM gold.t", "CAST to STRING"),
        ("SELECT * FROM t", "not schema.table"),
        ("SELECT * FROM cat.gold.t", "not schema.table"),
        ("SELECT * FROM gold.`../../etc`", "not plain schema.table"),
        ("SELECT 1", "reads no lakeforge table"),
    ],
)
def test_what_might_mean_something_else_goes_to_spark(query: str, says: str) -> None:
    with pytest.raises(NotFast) as why:
        prepare(query)
    assert why.value.code == Code.SQL_NOT_FAST and says in why.value.reason


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM gold.t",
        "INSERT INTO gold.t SELECT * FROM gold.u",
        "DROP TABLE gold.t",
        "CREATE TABLE gold.x AS SELECT * FROM gold.t",
        "SET spark.sql.ansi.enabled = false",
        "SELECT * FROM gold.t; SELECT * FROM gold.u",
    ],
)
def test_anything_but_one_query_is_refused_as_not_read_only(query: str) -> None:
    with pytest.raises(NotFast) as why:
        prepare(query)
    assert why.value.code == Code.SQL_READ_ONLY


def test_syntax_and_reference_errors_are_coded() -> None:
    with pytest.raises(LakeforgeError) as syntax:
        prepare("SELECT id FROM gold.t WHER id = 1")
    assert syntax.value.code == Code.SQL_SYNTAX and "line 1, column" in syntax.value.message
    with pytest.raises(LakeforgeError) as ref:
        prepare("SELECT * FROM gold.t@banana")
    assert ref.value.code == Code.BAD_TABLE_REF


def test_decimal_literals_are_spelled_as_spark_reads_them() -> None:
    # Spark: 1.5 is DECIMAL(2,1), 0.10 DECIMAL(2,2); 1e3 a double. DataFusion would read
    # the first two as doubles.
    sql = prepare("SELECT a + 1.5, 0.10, 1e3 FROM gold.t").sql
    assert "CAST('1.5' AS DECIMAL(2, 1))" in sql and "CAST('0.10' AS DECIMAL(2, 2))" in sql
    assert "1e3" in sql
