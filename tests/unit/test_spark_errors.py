"""The one Spark error translator, on stand-ins shaped like PySpark's and py4j's
exceptions (no JVM): codes, error classes, the deepest Java cause, Derby's XSDB6."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lakeforge.errors import Code, LakeforgeError
from lakeforge.runtime import spark_errors
from lakeforge.runtime.spark_errors import describe, is_spark_error, translate


class FakeJava:
    """A Java throwable as py4j shows it: toString, getCause, getClass().getName()."""

    def __init__(self, text: str, cause: FakeJava | None = None, condition: str | None = None):
        self.text, self.cause, self.condition = text, cause, condition

    def toString(self) -> str:
        return self.text

    def getCause(self) -> FakeJava | None:
        return self.cause

    def getCondition(self) -> str | None:
        return self.condition

    def getClass(self) -> Any:
        name = self.text.split(":")[0]
        return type("C", (), {"getName": staticmethod(lambda: name)})()


def spark_exc(name: str, module: str, text: str, **attrs: Any) -> Exception:
    cls = type(name, (Exception,), {"__module__": module})
    exc = cls(text)
    for key, value in attrs.items():
        setattr(exc, key, value)
    return exc


def captured(
    name: str, text: str, condition: str | None, origin: FakeJava | None = None
) -> Exception:
    return spark_exc(
        name,
        "pyspark.errors.exceptions.captured",
        text,
        getCondition=lambda: condition,
        _origin=origin,
        _stackTrace="",
    )


def test_analysis_error_is_sql_failed_with_its_class() -> None:
    exc = captured(
        "AnalysisException",
        "[PATH_NOT_FOUND] Path does not exist: file:/nope. SQLSTATE: 42K03",
        "PATH_NOT_FOUND",
    )
    err = translate(exc)
    assert err.code == Code.SQL_FAILED
    assert "[PATH_NOT_FOUND] Path does not exist: file:/nope" in err.message
    assert len(err.lines()) == 1


def test_runtime_error_gets_class_prefix_and_deepest_cause() -> None:
    deep = FakeJava("java.io.FileNotFoundException: /data/part-0001.parquet (No such file)")
    mid = FakeJava(
        "org.apache.spark.SparkException: [FAILED_READ_FILE.NO_HINT] Encountered error while "
        "reading file",
        deep,
        condition="FAILED_READ_FILE.NO_HINT",
    )
    origin = FakeJava("org.apache.spark.SparkException: Job aborted due to stage failure", mid)
    exc = captured("SparkException", "Job aborted due to stage failure\nmore", None, origin)
    err = translate(exc, context="bronze.orders")
    assert err.code == Code.SPARK_FAILED
    assert err.message.startswith("bronze.orders: [FAILED_READ_FILE.NO_HINT] Job aborted")
    assert "(cause: java.io.FileNotFoundException: /data/part-0001.parquet" in err.message
    assert "\n" not in err.message


def test_py4j_call_site_is_replaced_by_the_java_message() -> None:
    java = FakeJava(
        "java.lang.IllegalStateException: cannot load: bad header",
        FakeJava("java.io.EOFException: Unexpected end of input"),
    )
    exc = spark_exc(
        "Py4JJavaError",
        "py4j.protocol",
        "An error occurred while calling o103.load.\n: java.lang.IllegalStateException: "
        "cannot load\n\tat x.y(Z.java:1)",
        java_exception=java,
    )
    msg = translate(exc).message
    assert "o103" not in msg and "An error occurred" not in msg
    assert msg.startswith("java.lang.IllegalStateException: cannot load: bad header")
    assert "(cause: java.io.EOFException: Unexpected end of input)" in msg


def test_py4j_text_without_java_object_still_drops_call_site() -> None:
    exc = spark_exc(
        "Py4JJavaError",
        "py4j.protocol",
        "An error occurred while calling o7.save.\n: org.apache.spark.SparkException: "
        "[TASK_WRITE_FAILED] Task failed while writing rows\n\tat a.b(C.java:1)",
    )
    assert describe(exc) == "[TASK_WRITE_FAILED] Task failed while writing rows"


def test_jvm_gone_is_rt_007() -> None:
    exc = spark_exc("Py4JError", "py4j.protocol", "Answer from Java side is empty")
    err = translate(exc)
    assert err.code == Code.SPARK_FAILED and "JVM" in err.message


def test_derby_xsdb6_anywhere_in_the_trace_is_metastore_locked(tmp_path: Path) -> None:
    db = tmp_path / "lakehouse" / "metastore_db"
    trace = (
        "org.apache.hadoop.hive.ql.metadata.HiveException: Unable to instantiate\n"
        "Caused by: ERROR XJ040: Failed to start database\n"
        f"Caused by: ERROR XSDB6: Another instance of Derby may have already booted the "
        f"database {db}.\n\tat org.apache.derby.X(Y.java:1)\n"
    )
    exc = captured("AnalysisException", "HiveException: Unable to instantiate", None)
    exc._stackTrace = trace  # type: ignore[attr-defined]
    err = translate(exc)
    assert err.code == Code.METASTORE_LOCKED
    assert str(db) in err.message and len(err.lines()) == 1


def test_lakeforge_errors_pass_through_and_others_are_not_spark() -> None:
    own = LakeforgeError(Code.CYCLE, "x")
    assert translate(own) is own
    assert not is_spark_error(ValueError("x"))
    assert is_spark_error(spark_exc("Py4JError", "py4j.protocol", "x"))


def test_translating_decorator_codes_spark_errors_only() -> None:
    @spark_errors.translating
    def boom(exc: Exception) -> None:
        raise exc

    with pytest.raises(LakeforgeError) as err:
        boom(captured("ParseException", "[PARSE_SYNTAX_ERROR] Syntax error", "PARSE_SYNTAX_ERROR"))
    assert err.value.code == Code.SQL_FAILED
    with pytest.raises(KeyError):
        boom(KeyError("k"))


def test_metastore_holder_finds_another_process_not_our_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "metastore_db"
    db.mkdir()
    lock = db / "db.lck"
    lock.write_text("x")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"f = open({str(lock)!r}); print('open', flush=True); import time; time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "open\n"
        # Our own child (as our Spark JVM is) does not count.
        assert spark_errors.metastore_holder(db) is None
        # Seen from a process it does not descend from, it is the holder.
        monkeypatch.setattr(spark_errors.os, "getpid", lambda: 4_000_000)
        assert spark_errors.metastore_holder(db) == child.pid
        with pytest.raises(LakeforgeError) as err:
            spark_errors.check_metastore_free(db)
        assert err.value.code == Code.METASTORE_LOCKED
        assert f"process {child.pid}" in err.value.message and str(db) in err.value.message
    finally:
        child.kill()
        child.wait()
