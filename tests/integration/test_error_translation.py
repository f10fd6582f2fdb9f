"""Real Spark, Delta and py4j failures become one coded line with the error class and the
real cause (runtime/spark_errors.py); a Derby metastore held by another process is
LF-RT-006; `lakeforge sql` prints dates Python cannot hold as text."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pyspark.sql import SparkSession

from lakeforge.cli.output import collect_printable
from lakeforge.errors import Code
from lakeforge.runtime.spark_errors import translate

pytestmark = pytest.mark.spark


def caught(fn: Callable[[], object]) -> Exception:
    try:
        fn()
    except Exception as exc:
        return exc
    raise AssertionError("expected a failure")


def test_missing_path(spark: SparkSession, tmp_path: Path) -> None:
    missing = tmp_path / "no_such_dir"
    err = translate(caught(lambda: spark.read.parquet(str(missing)).collect()))
    assert err.code == Code.SQL_FAILED
    assert "[PATH_NOT_FOUND]" in err.message and str(missing) in err.message
    assert "An error occurred while calling" not in err.message and len(err.lines()) == 1


def test_bad_sql(spark: SparkSession) -> None:
    err = translate(caught(lambda: spark.sql("SELEC 1")))
    assert err.code == Code.SQL_FAILED and "[PARSE_SYNTAX_ERROR]" in err.message


def test_delta_error(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / f"t_{uuid.uuid4().hex[:8]}")
    spark.range(2).write.format("delta").save(path)
    exc = caught(lambda: spark.read.format("delta").option("versionAsOf", 7).load(path).count())
    err = translate(exc, context="reading t")
    assert err.code in (Code.SQL_FAILED, Code.SPARK_FAILED)
    assert err.message.startswith("reading t: [DELTA_VERSION_NOT_FOUND]")
    schema = caught(
        lambda: (
            spark.range(1).selectExpr("'x' AS id").write.format("delta").mode("append").save(path)
        )
    )
    assert "[DELTA_FAILED_TO_MERGE_FIELDS]" in translate(schema).message


def test_failure_while_running_is_rt_007(spark: SparkSession) -> None:
    err = translate(caught(lambda: spark.sql("SELECT assert_true(id < 0) FROM range(2)").collect()))
    assert err.code == Code.SPARK_FAILED and "[USER_RAISED_EXCEPTION]" in err.message


def test_raw_py4j_error_names_the_java_exception_not_the_call_site(
    spark: SparkSession, tmp_path: Path
) -> None:
    """A Java exception PySpark does not convert stays a Py4JJavaError ("An error occurred
    while calling o123.open."): the translation shows the Java exception and its message."""
    missing = tmp_path / "gone.bin"
    jvm, conf = spark._jvm, spark._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(f"file://{missing}")  # type: ignore[union-attr]
    exc = caught(lambda: path.getFileSystem(conf).open(path))
    assert type(exc).__name__ == "Py4JJavaError" and "An error occurred" in str(exc)
    err = translate(exc)
    assert err.code == Code.SPARK_FAILED
    assert "java.io.FileNotFoundException" in err.message and str(missing) in err.message
    assert "An error occurred" not in err.message and len(err.lines()) == 1


def run_cli(monkeypatch: pytest.MonkeyPatch, spark: SparkSession, *args: str) -> Result:
    from lakeforge.cli import main

    monkeypatch.setattr(main, "session_for", lambda env, app: spark)
    return CliRunner().invoke(main.cli, list(args), prog_name="lakeforge")


def test_cli_handler_prints_one_coded_line(
    monkeypatch: pytest.MonkeyPatch, spark: SparkSession
) -> None:
    res = run_cli(monkeypatch, spark, "sql", "SELECT assert_true(false)")
    assert res.exit_code == 1 and res.exc_info is not None and res.exc_info[0] is SystemExit
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error ")]
    assert len(errors) == 1
    assert "LF-RT-007" in errors[0] and "[USER_RAISED_EXCEPTION]" in errors[0]
    res = run_cli(monkeypatch, spark, "sql", "SELECT * FROM no_such_schema.t")
    assert res.exit_code == 1 and "LF-SQL-001" in res.stderr
    assert "TABLE_OR_VIEW_NOT_FOUND" in res.stderr


def test_sql_prints_out_of_range_dates_as_text(
    monkeypatch: pytest.MonkeyPatch, spark: SparkSession
) -> None:
    query = (
        "SELECT DATE'+99999-01-01' AS d, TIMESTAMP'+99999-01-01 00:00:00' AS ts, "
        "array(DATE'2020-01-02') AS a, 1 AS n"
    )
    for fmt in ("table", "json", "csv"):
        res = run_cli(monkeypatch, spark, "sql", query, "--format", fmt)
        assert res.exit_code == 0, res.output
        assert "+99999-01-01" in res.stdout and "Traceback" not in res.output
    rows = collect_printable(spark.sql(query), 10)
    assert rows == [("+99999-01-01", "+99999-01-01 00:00:00", "[2020-01-02]", 1)]
    # Values Python can hold stay Python values.
    import datetime

    (row,) = collect_printable(spark.sql("SELECT DATE'2020-01-02' AS d, 1 AS d"), 10)
    assert row == (datetime.date(2020, 1, 2), 1)


def test_second_process_on_a_held_metastore_is_one_line(
    spark: SparkSession, lakehouse_root: Path, tmp_path: Path
) -> None:
    """The shared session holds its Derby metastore; `lakeforge sql` in another process,
    on a profile pointing at the same folder, fails at once with LF-RT-006 naming it."""
    spark.sql("SHOW DATABASES").collect()  # the metastore is booted (Hive is lazy)
    db = lakehouse_root / "lakehouse" / "metastore_db"
    assert (db / "db.lck").exists()
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "local.yml").write_text(
        f"warehouse: {lakehouse_root / 'lakehouse' / 'warehouse'}\n"
        f"metastore: {{kind: derby, path: {db}}}\n"
    )
    jvm_pid = spark._jvm.java.lang.ProcessHandle.current().pid()  # type: ignore[union-attr]
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("lakeforge")), "sql", "SELECT 1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1
    assert "LF-RT-006" in proc.stderr and str(db.resolve()) in proc.stderr
    assert f"process {jvm_pid}" in proc.stderr
    assert len(proc.stderr.splitlines()) < 20 and "Traceback" not in proc.stderr
