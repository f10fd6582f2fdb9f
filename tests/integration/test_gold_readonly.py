"""Gold is read-only toward every table but its own (issue 14, point 1), on real Spark/Delta.

Gold SQL that is not a query is refused by Spark's parser before anything runs; a Python
transform's session refuses write statements and catalog changes; and whatever a function
still manages to change through the real session is found by comparing the Delta logs
before and after it, which fails the step with LF-RUN-008.
"""

from __future__ import annotations

import dataclasses
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakeforge.errors import Code, RunError
from lakeforge.io.delta import count_rows, latest_version
from lakeforge.pipeline.executor import execute
from lakeforge.plan.builder import build_plan
from lakeforge.plan.load import LoadedPipeline, load_pipeline
from lakeforge.plan.steps import Plan, TransformStep
from lakeforge.results import RunResult
from lakeforge.steps.transform import ReadOnlySession, require_query
from tests.helpers import make_project

pytestmark = pytest.mark.spark

EVIL = """\
from pyspark.sql import functions as F

BRONZE = "bronze.orders_{s}"


def ok(spark, inputs):
    return spark.sql("SELECT order_id, amount FROM " + BRONZE + " WHERE amount > 0")


def sql_delete(spark, inputs):
    spark.sql("DELETE FROM " + BRONZE + " WHERE 1=1")
    return inputs[BRONZE]


def drop_log(spark, inputs):
    spark.sql("DROP TABLE lakeforge.ingested_files")
    return inputs[BRONZE]


def catalog_drop(spark, inputs):
    spark.catalog.dropTempView("x")
    return inputs[BRONZE]


def sneaky_delete(spark, inputs):
    try:
        spark.sql("DELETE FROM " + BRONZE + " WHERE 1=1")
    except Exception:
        pass
    df = inputs[BRONZE]
    df.sparkSession.sql("DELETE FROM " + BRONZE + " WHERE order_id = '1'")
    return df


def save_system(spark, inputs):
    schema = spark.table("lakeforge.ingested_files").schema
    values = []
    for f in schema:  # one made-up row, whatever the log holds
        kind = f.dataType.typeName()
        value = F.current_timestamp() if kind in ("timestamp", "date") else F.lit(
            "x" if kind == "string" else False if kind == "boolean" else 0
        )
        values.append(value.cast(f.dataType).alias(f.name))
    log = spark.range(1).select(*values).withColumn("table_name", F.lit(BRONZE))
    log.write.format("delta").mode("append").saveAsTable("lakeforge.ingested_files")
    return inputs[BRONZE]


def overwrite_other(spark, inputs):
    df = inputs[BRONZE]
    df.write.format("delta").mode("overwrite").saveAsTable(BRONZE)
    return df
"""


class Project:
    def __init__(self, suffix: str, loaded: LoadedPipeline, plan: Plan) -> None:
        self.suffix, self.loaded, self.plan = suffix, loaded, plan
        self.bronze = f"bronze.orders_{suffix}"

    def run_python(self, spark: SparkSession, func: str) -> RunResult:
        """Run only the gold step, with ``evil:<func>`` as its function and its own table."""
        [gold] = [s for s in self.plan.steps if isinstance(s, TransformStep)]
        table = f"gold.{func}_{self.suffix}"
        spec = gold.spec.model_copy(update={"python": f"evil:{func}"})
        step = dataclasses.replace(gold, table=table, spec=spec)
        plan = dataclasses.replace(self.plan, steps=(step,))
        return execute(plan, spark, self.loaded.project_root)


@pytest.fixture(scope="module")
def project(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    s = uuid.uuid4().hex[:6]
    root = tmp_path_factory.mktemp("gold-readonly")
    text = f"""\
    name: ro_{s}
    bronze:
      orders_{s}:
        source: {{format: csv, path: raw/*.csv}}
    gold:
      report_{s}:
        python: evil:ok
        depends_on: [bronze.orders_{s}]
    """
    path = make_project(root, textwrap.dedent(text))
    (path.parent / "evil.py").write_text(EVIL.replace("{s}", s))
    # bronze is made directly (not ingested): these tests are about the gold step only
    rows = [("1", "10"), ("2", "0"), ("3", "5")]
    spark.sql("CREATE SCHEMA IF NOT EXISTS bronze")
    df = spark.createDataFrame(rows, "order_id string, amount string")
    df.write.format("delta").saveAsTable(f"bronze.orders_{s}")
    loaded = load_pipeline(path)
    full = build_plan(loaded)
    plan = dataclasses.replace(
        full, steps=tuple(x for x in full.steps if isinstance(x, TransformStep))
    )
    result = execute(plan, spark, loaded.project_root)
    assert result.ok, result.error
    yield Project(s, loaded, plan)


def test_a_legit_python_transform_lands(spark: SparkSession, project: Project) -> None:
    assert spark.table(f"gold.report_{project.suffix}").count() == 2


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM {b} WHERE 1=1",
        "DROP TABLE {b}",
        "INSERT INTO {b} SELECT * FROM {b}",
        "WITH x AS (SELECT * FROM {b}) INSERT INTO {b} SELECT * FROM x",
        "EXECUTE IMMEDIATE 'DROP TABLE {b}'",
        "TRUNCATE TABLE {b}",
        "CACHE TABLE {b}",
    ],
)
def test_spark_parser_refuses_non_queries_without_running_them(
    spark: SparkSession, project: Project, sql: str
) -> None:
    before = latest_version(spark, project.bronze)
    with pytest.raises(RunError) as info:
        require_query(spark, sql.format(b=project.bronze), "test")
    assert info.value.code == Code.GOLD_WRITE_REJECTED
    assert latest_version(spark, project.bronze) == before
    assert count_rows(spark, project.bronze, before) == 3


def test_two_statements_are_a_parse_error_and_nothing_runs(
    spark: SparkSession, project: Project
) -> None:
    # Spark's parser rejects the text; require_query leaves the error to spark.sql
    before = latest_version(spark, project.bronze)
    with pytest.raises(Exception, match="PARSE_SYNTAX_ERROR"):
        ReadOnlySession(spark, "test").sql(f"SELECT 1; DROP TABLE {project.bronze}")
    assert spark.catalog.tableExists(project.bronze)
    assert latest_version(spark, project.bronze) == before


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM {b}",
        "SELECT * FROM {b};",
        "TABLE {b}",
        "WITH x AS (SELECT * FROM {b}) SELECT * FROM x",
        "SELECT * FROM {b} VERSION AS OF 0 UNION ALL SELECT * FROM {b}",
        "VALUES (1, 2)",
    ],
)
def test_spark_parser_accepts_queries(spark: SparkSession, project: Project, sql: str) -> None:
    require_query(spark, sql.format(b=project.bronze), "test")


def test_gold_sql_that_slipped_past_validate_is_refused_at_run_time(
    spark: SparkSession, project: Project
) -> None:
    [gold] = [s for s in project.plan.steps if isinstance(s, TransformStep)]
    spec = gold.spec.model_copy(update={"python": None, "sql": "x"})
    step = dataclasses.replace(
        gold,
        table=f"gold.evil_sql_{project.suffix}",
        sql=f"DELETE FROM {project.bronze} WHERE 1=1",
        spec=spec,
    )
    before = latest_version(spark, project.bronze)
    result = execute(dataclasses.replace(project.plan, steps=(step,)), spark, Path("."))
    assert result.error_code == Code.GOLD_WRITE_REJECTED
    assert latest_version(spark, project.bronze) == before


@pytest.mark.parametrize("func", ["sql_delete", "drop_log", "catalog_drop"])
def test_python_write_attempts_are_refused_before_they_run(
    spark: SparkSession, project: Project, func: str
) -> None:
    before = latest_version(spark, project.bronze)
    result = project.run_python(spark, func)
    assert result.error_code == Code.GOLD_WRITE_REJECTED, result.error
    assert latest_version(spark, project.bronze) == before
    assert spark.catalog.tableExists("lakeforge.ingested_files")
    assert not spark.catalog.tableExists(f"gold.{func}_{project.suffix}")


@pytest.mark.parametrize(
    ("func", "changed"),
    [
        ("sneaky_delete", "bronze.orders_"),
        ("save_system", "lakeforge.ingested_files"),
        ("overwrite_other", "bronze.orders_"),
    ],
)
def test_writes_through_the_real_session_are_detected_after_the_fact(
    spark: SparkSession, project: Project, func: str, changed: str
) -> None:
    result = project.run_python(spark, func)
    assert result.error_code == Code.GOLD_WRITE_REJECTED, result.error
    assert result.error is not None and changed in result.error
    assert not spark.catalog.tableExists(f"gold.{func}_{project.suffix}")


def test_the_session_proxy_refuses_catalog_changes_and_new_sessions(
    spark: SparkSession, project: Project
) -> None:
    proxy = ReadOnlySession(spark, "test")
    assert proxy.catalog.tableExists(project.bronze)
    assert proxy.range(3).count() == 3
    for call in (
        lambda: proxy.catalog.setCurrentDatabase("bronze"),
        lambda: proxy.catalog.createTable("gold.nope", schema=None),
        lambda: proxy.newSession(),
        lambda: proxy.sql("SET spark.sql.shuffle.partitions = 7"),
        lambda: proxy.sql("DELETE FROM {t} WHERE id = 0", t=spark.range(1)),
    ):
        with pytest.raises(RunError) as info:
            call()
        assert info.value.code == Code.GOLD_WRITE_REJECTED
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    assert proxy.sql("SELECT * FROM {t}", t=spark.range(2)).count() == 2
