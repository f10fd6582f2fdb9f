"""Gold SQL is one read-only query, checked at validate time without a JVM."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lakeforge.config.sql_guard import query_problem, strip_trailing_semicolons
from lakeforge.errors import Code, ConfigError
from lakeforge.plan.load import load_pipeline
from tests.helpers import MINIMAL_PIPELINE, make_project

QUERIES = [
    "SELECT 1",
    "select * from silver.orders",
    "SELECT * FROM silver.orders@3 o JOIN silver.customers@2026-11-01 c ON o.id = c.id",
    "SELECT * FROM silver.orders@v2 WHERE order_date = '2026-11-01T10:00:00'",
    "WITH a AS (SELECT 1 AS x) SELECT * FROM a",
    "SELECT 1 UNION ALL SELECT 2",
    "SELECT 1 INTERSECT SELECT 1",
    "VALUES (1, 2), (3, 4)",
    "(SELECT 1)",
    "FROM silver.orders SELECT order_id",
    "TABLE silver.orders",  # sqlglot cannot parse it; Spark can: the fallback lets it pass
    "TABLE x",  # sqlglot reads this one as an alias: the tokens decide
    "SELECT * FROM silver.orders |> WHERE amount > 0",
    "SELECT 1;",
    "SELECT 1; -- done\n",
    "SELECT 'DELETE FROM x; DROP TABLE y' AS s -- ; DROP TABLE z",
    "SELECT a, transform(xs, x -> x + 1) FROM t LATERAL VIEW explode(ys) e AS y",
]

NOT_QUERIES = [
    ("DELETE FROM bronze.t WHERE 1=1", "DELETE"),
    ("DROP TABLE IF EXISTS lakeforge.ingested_files", "DROP"),
    ("INSERT INTO gold.x SELECT 1", "INSERT"),
    ("INSERT OVERWRITE DIRECTORY '/tmp/x' SELECT 1", "INSERT"),
    ("WITH a AS (SELECT 1) INSERT INTO gold.x SELECT * FROM a", "INSERT"),
    ("MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "MERGE"),
    ("UPDATE silver.t SET a = 1", "UPDATE"),
    ("CREATE TABLE x AS SELECT 1", "CREATE"),
    ("REPLACE TABLE x AS SELECT 1", "REPLACE"),
    ("SET spark.sql.ansi.enabled = false", "SET"),
    ("CACHE TABLE x AS SELECT 1", "CACHE"),
    ("CLEAR CACHE", "CLEAR"),
    ("OPTIMIZE silver.t", "OPTIMIZE"),
    ("VACUUM silver.t", "VACUUM"),
    ("RESTORE TABLE silver.t TO VERSION AS OF 1", "RESTORE"),
    ("TRUNCATE TABLE silver.t", "TRUNCATE"),
    ("ALTER TABLE silver.t ADD COLUMNS (a int)", "ALTER"),
    ("EXECUTE IMMEDIATE 'DROP TABLE x'", "EXECUTE"),
    ("SELECT * INTO x FROM t", "INTO"),
    ("SELECT 1; SELECT 2", "2 statements"),
    ("SELECT 1; DROP TABLE lakeforge.runs", "2 statements"),
    ("TABLE x; DROP TABLE y", "2 statements"),
    ("BEGIN SELECT 1; END", "statements"),
    ("", "no SQL"),
    ("-- nothing", "no SQL"),
]


@pytest.mark.parametrize("sql", QUERIES)
def test_a_query_passes(sql: str) -> None:
    assert query_problem(sql) is None


@pytest.mark.parametrize(("sql", "kind"), NOT_QUERIES)
def test_anything_else_is_named(sql: str, kind: str) -> None:
    problem = query_problem(sql)
    assert problem is not None and kind.upper() in problem.upper()


def test_a_malformed_version_reference_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        query_problem("SELECT * FROM silver.orders@abc")


def test_trailing_semicolons_and_comments_are_stripped_but_not_inside_strings() -> None:
    assert strip_trailing_semicolons("SELECT 1 ;; -- end\n") == "SELECT 1"
    assert strip_trailing_semicolons("SELECT ';'") == "SELECT ';'"


def _gold(sql: str) -> str:
    head = MINIMAL_PIPELINE.split("gold:")[0]
    body = "\n".join("      " + line for line in sql.splitlines())
    return f"{head}gold:\n  evil:\n    sql: |\n{body}\n"


def test_validate_rejects_a_delete_located_at_the_sql_key(tmp_path: Path) -> None:
    text = _gold("DELETE FROM silver.orders WHERE 1=1")
    with pytest.raises(ConfigError) as info:
        load_pipeline(make_project(tmp_path, text))
    [issue] = info.value.issues
    assert issue.code == Code.GOLD_NOT_A_QUERY
    assert issue.key == "gold.evil.sql"
    assert issue.line == text.splitlines().index("    sql: |") + 1
    assert issue.file.endswith("pipeline.yml")


def test_validate_rejects_two_statements_and_a_drop_of_a_system_table(tmp_path: Path) -> None:
    text = _gold("SELECT * FROM silver.orders;\nDROP TABLE IF EXISTS lakeforge.ingested_files")
    with pytest.raises(ConfigError) as info:
        load_pipeline(make_project(tmp_path, text))
    assert info.value.codes == [Code.GOLD_NOT_A_QUERY]


def test_sql_file_content_is_checked_and_located_at_the_sql_file_key(tmp_path: Path) -> None:
    text = MINIMAL_PIPELINE.split("gold:")[0] + "gold:\n  evil:\n    sql_file: evil.sql\n"
    path = make_project(tmp_path, text)
    (path.parent / "evil.sql").write_text(
        "MERGE INTO silver.orders t USING silver.orders s\n"
        "ON t.order_id = s.order_id WHEN MATCHED THEN DELETE\n"
    )
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    [issue] = info.value.issues
    assert (issue.code, issue.key) == (Code.GOLD_NOT_A_QUERY, "gold.evil.sql_file")
    assert issue.line == text.splitlines().index("    sql_file: evil.sql") + 1
    assert "WHEN MATCHED" not in issue.message  # names the kind, never echoes the SQL


def test_a_bad_version_reference_in_gold_sql_is_a_located_value_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_pipeline(make_project(tmp_path, _gold("SELECT * FROM silver.orders@yesterday")))
    assert Code.BAD_VALUE in info.value.codes


def test_every_shipped_pipeline_still_validates() -> None:
    root = Path(__file__).resolve().parents[2]
    pipelines = sorted((root / "jobs").glob("*/pipeline.yml"))
    assert pipelines
    for path in pipelines:
        load_pipeline(path, environ={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"})


def test_the_guard_loads_no_pyspark() -> None:
    code = (
        "import sys; from lakeforge.config.sql_guard import query_problem; "
        "query_problem('SELECT 1'); assert 'pyspark' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
