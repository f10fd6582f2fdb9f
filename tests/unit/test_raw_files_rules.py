"""Rules of reading raw files that need no JVM: column-name sanitising, BOM, record counts,
error descriptions (io/files.py, io/listing.py)."""

from __future__ import annotations

from typing import Any

import pytest

from lakeforge.config.models import SourceSpec
from lakeforge.io.files import (
    _record_counter,
    comparable_path,
    describe_error,
    sanitise_names,
    spark_charset,
)
from lakeforge.io.listing import parse_header


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["id", "name"], ["id", "name"]),
        (["order id", "amount(eur)", "a=b"], ["order_id", "amount_eur_", "a_b"]),
        (["a,b;c{d}e", "x\ty\nz"], ["a_b_c_d_e", "x_y_z"]),
        # A renamed name that meets an existing one gets its position; valid names never move.
        (["a b", "a_b"], ["a_b_0", "a_b"]),
        (["a_b", "A B"], ["a_b", "A_B_1"]),
        (["a b", "a;b"], ["a_b", "a_b_1"]),
    ],
)
def test_sanitise_names(names: list[str], expected: list[str]) -> None:
    assert sanitise_names(names) == expected


def test_sanitised_names_are_storable_and_distinct() -> None:
    names = ["a b", "a;b", "a=b", "a_b", "(a b)", " "]
    out = sanitise_names(names)
    assert len({n.lower() for n in out}) == len(out)
    assert not any(ch in n for n in out for ch in " ,;{}()\n\t=")


def test_bom_is_not_part_of_the_first_header_name() -> None:
    assert parse_header("\ufeffid,name") == ["id", "name"]
    assert parse_header("id,\ufeffname") == ["id", "\ufeffname"]  # only a leading BOM


def test_multiline_csv_counter_keeps_quoted_newlines_in_one_record() -> None:
    count = _record_counter("csv", {"header": "true"}).func  # type: ignore[attr-defined]
    assert count('id,note\n1,"two\nlines"\n\n2,"x ""q"" \r\n y"\r\n3,plain\n') == 4
    assert count("\ufeffid\n") == 1
    assert count(None) == 0
    semi = _record_counter("csv", {"sep": ";", "comment": "#"}).func  # type: ignore[attr-defined]
    assert semi('# note\na;"b;\nc"\n') == 1


def test_multiline_json_counter() -> None:
    count = _record_counter("json", {}).func  # type: ignore[attr-defined]
    assert count('[{"a": 1},\n {"a": 2}]') == 2
    assert count('{"a": 1}') == 1
    assert count("\ufeff[]") == 0
    assert count('[{"a": 1},\n oops') == -1


class _Throwable:
    """A stand-in for a py4j Java throwable."""

    def __init__(
        self, name: str, message: str, cause: Any = None, condition: str | None = None
    ) -> None:
        self._name, self._message, self._cause, self._condition = name, message, cause, condition

    def getClass(self) -> Any:
        return type("C", (), {"getSimpleName": lambda _s: self._name})()

    def getMessage(self) -> str:
        return self._message

    def getCause(self) -> Any:
        return self._cause

    def getCondition(self) -> str:
        if self._condition is None:
            raise AttributeError("not a SparkThrowable")
        return self._condition

    def getErrorClass(self) -> str:
        return self.getCondition()


def test_describe_error_names_the_error_class_and_root_cause() -> None:
    root = _Throwable("RuntimeException", "file:/x.parquet is not a Parquet file")
    spark = _Throwable(
        "SparkException",
        "[FAILED_READ_FILE.NO_HINT] Encountered error while reading file file:/x.parquet.",
        root,
        "FAILED_READ_FILE.NO_HINT",
    )
    exc = Exception("An error occurred while calling o103.load.")
    exc.java_exception = _Throwable("Py4JJavaError", "wrapper", spark)  # type: ignore[attr-defined]
    text = describe_error(exc)
    assert text.startswith("FAILED_READ_FILE.NO_HINT: Encountered error")
    assert "cause: RuntimeException: file:/x.parquet is not a Parquet file" in text
    assert "o103" not in text
    assert describe_error(ValueError("plain\nfailure")) == "ValueError: plain failure"


def test_paths_compare_as_listed_and_as_spark_gives_them() -> None:
    assert comparable_path("file:///tmp/a%20b.csv") == comparable_path("file:/tmp/a b.csv")
    assert comparable_path("s3a://b/k.csv") == "s3a://b/k.csv"


def test_encoding_is_declared_per_source() -> None:
    assert SourceSpec.model_validate({"format": "csv", "path": "x"}).encoding == "utf-8"
    spec = SourceSpec.model_validate({"format": "csv", "path": "x", "encoding": "latin1"})
    assert spec.encoding == "latin1"
    with pytest.raises(ValueError, match="unknown encoding"):
        SourceSpec.model_validate({"format": "csv", "path": "x", "encoding": "klingon-8"})
    # Spark 4's CSV reader refuses charsets outside its list: a config error, not a run error.
    with pytest.raises(ValueError, match="not one Spark"):
        SourceSpec.model_validate({"format": "csv", "path": "x", "encoding": "cp1252"})
    assert spark_charset("latin1") == "iso-8859-1"
    assert spark_charset("UTF8") == "utf-8"
