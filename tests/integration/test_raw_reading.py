"""Reading raw files: nothing lost between a raw file and bronze (io/files.py, io/listing.py).

Each test writes tiny files and checks what :func:`read_batch` makes of them: rejected files
with reasons, the others read, and ``source_rows`` counted from the files themselves.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeforge.config.models import SourceSpec
from lakeforge.config.roots import resolve_roots
from lakeforge.io.files import CORRUPT, SOURCE_NAME_KEY, BatchRead, read_batch
from lakeforge.io.listing import FileInfo, list_source

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _spec(fmt: str, path: Path, **extra: Any) -> SourceSpec:
    return SourceSpec.model_validate({"format": fmt, "path": str(path), **extra})


def _read(spark: SparkSession, spec: SourceSpec, folder: Path) -> BatchRead:
    files, _ = list_source(spark, str(folder))
    return read_batch(spark, spec, files, "run-1", 1)


def _write(folder: Path, name: str, data: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    if isinstance(data, str):
        p.write_text(data, encoding="utf-8")
    else:
        p.write_bytes(data)
    return p


def _reasons(batch: BatchRead) -> dict[str, str]:
    return {Path(r.file.path).name: r.reason for r in batch.rejected}


def test_bad_csv_files_are_rejected_and_the_rest_lands(spark: SparkSession, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write(raw, "a.csv", "id,name\n1,x\n2,y\n")
    _write(raw, "empty.csv", "")
    _write(raw, "blank.csv", "\n\n")
    _write(raw, "broken.csv.gz", b"not gzip at all")
    batch = _read(spark, _spec("csv", raw), raw)
    reasons = _reasons(batch)
    assert reasons["empty.csv"] == "empty_file"
    assert reasons["blank.csv"] == "empty_file"
    assert reasons["broken.csv.gz"].startswith("unreadable:")
    assert "An error occurred while calling" not in reasons["broken.csv.gz"]
    assert [Path(f.path).name for f in batch.files] == ["a.csv"]
    assert sorted(r["id"] for r in batch.df.collect()) == ["1", "2"]
    assert batch.source_rows == 2


def test_corrupt_parquet_is_rejected_with_its_error_class(
    spark: SparkSession, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    spark.createDataFrame([(1,), (2,), (3,)], "id int").coalesce(1).write.parquet(
        str(tmp_path / "p")
    )
    good = next((tmp_path / "p").glob("part-*.parquet"))
    _write(raw, "good.parquet", good.read_bytes())
    _write(raw, "bad.parquet", b"PAR1 this is not parquet PAR1")
    batch = _read(spark, _spec("parquet", raw), raw)
    reason = _reasons(batch)["bad.parquet"]
    assert reason.startswith("unreadable:")
    # The Spark error class, not py4j's call site.
    assert reason.split(":")[1].strip().isupper(), reason
    assert "o1" not in reason.split(":")[1]
    assert batch.df.count() == 3
    assert batch.source_rows == 3


def test_pretty_printed_json_without_multiline_is_a_rejected_file(
    spark: SparkSession, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    _write(raw, "lines.json", '{"id": 1}\n\n{"id": 2}\n{"id": broken\n')
    _write(raw, "pretty.json", json.dumps([{"id": 3}, {"id": 4}], indent=2))
    batch = _read(spark, _spec("json", raw), raw)
    assert _reasons(batch)["pretty.json"].startswith("not_json_lines:")
    rows = batch.df.collect()
    # A broken line in a readable file stays a row, flagged for silver's quarantine.
    assert len(rows) == 3
    assert sum(r[CORRUPT] is not None for r in rows) == 1
    assert batch.source_rows == 3


def test_multiline_json_counts_elements_and_rejects_non_json(
    spark: SparkSession, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    _write(raw, "pretty.json", json.dumps([{"id": 3}, {"id": 4}], indent=2))
    _write(raw, "junk.json", '[{"id": 5},\n oops')
    batch = _read(spark, _spec("json", raw, options={"multiLine": True}), raw)
    assert _reasons(batch)["junk.json"].startswith("not_json:")
    assert batch.source_rows == 2
    assert sorted(r["id"] for r in batch.df.collect()) == [3, 4]


def test_header_names_delta_cannot_store_are_sanitised_and_kept_as_comment(
    spark: SparkSession, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    _write(raw, "a.csv", '"order id",amount(eur),a=b\n1,2,3\n')
    batch = _read(spark, _spec("csv", raw), raw)
    data = [f for f in batch.df.schema.fields if not f.name.startswith("_lf_")]
    assert [f.name for f in data] == ["order_id", "amount_eur_", "a_b"]
    assert data[0].metadata["comment"] == "order id"
    assert data[1].metadata[SOURCE_NAME_KEY] == "amount(eur)"
    table = f"default.raw_names_{os.getpid()}_{abs(hash(str(tmp_path))) % 10**8}"
    batch.df.write.format("delta").saveAsTable(table)
    try:
        stored = spark.table(table).schema["order_id"]
        assert stored.metadata["comment"] == "order id"
        assert spark.table(table).count() == 1
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {table}")


def test_source_rows_counts_lines_the_reader_drops(spark: SparkSession, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write(raw, "a.csv", "id,name\n1,x\n2,y,extra\n\n3,z\n")
    kept = _read(spark, _spec("csv", raw), raw)
    assert kept.source_rows == 3 == kept.df.count()
    dropping = _read(spark, _spec("csv", raw, options={"mode": "DROPMALFORMED"}), raw)
    assert dropping.source_rows == 3
    assert len(dropping.df.collect()) == 2  # the loss the accounting sees


def test_quoted_newline_needs_multiline(spark: SparkSession, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write(raw, "a.csv", 'id,note,n\n1,"two\nlines",5\n2,plain,6\n')
    joined = _read(spark, _spec("csv", raw, options={"multiLine": True}), raw)
    rows = sorted(joined.df.collect(), key=lambda r: r["id"])
    assert [r["note"] for r in rows] == ["two\nlines", "plain"]
    assert all(r[CORRUPT] is None for r in rows)
    assert joined.source_rows == 2 == len(rows)
    split = _read(spark, _spec("csv", raw), raw)
    halves = split.df.collect()
    # Without multiLine: two malformed halves, never silently joined, and counted.
    assert len(halves) == 3 == split.source_rows
    assert sum(r[CORRUPT] is not None for r in halves) == 2


def test_multiline_count_catches_a_dropped_record(spark: SparkSession, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write(raw, "a.csv", 'id,n\n1,"a\nb"\n2,3,4\n3,"c"\n')
    spec = _spec("csv", raw, options={"multiLine": True, "mode": "DROPMALFORMED"})
    batch = _read(spark, spec, raw)
    assert batch.source_rows == 3
    assert len(batch.df.collect()) == 2


def test_encoding_declared_and_invalid_bytes_quarantined(
    spark: SparkSession, tmp_path: Path
) -> None:
    latin = tmp_path / "latin"
    _write(latin, "a.csv", "id,city\n1,Zürich\n2,Besançon\n".encode("latin-1"))
    ok = _read(spark, _spec("csv", latin, encoding="latin1"), latin)
    rows = sorted(ok.df.collect(), key=lambda r: r["id"])
    assert [r["city"] for r in rows] == ["Zürich", "Besançon"]
    assert all(r[CORRUPT] is None for r in rows)
    # The same bytes read as UTF-8: the row with invalid bytes is malformed, not replaced.
    bad = _read(spark, _spec("csv", latin), latin)
    flagged = {r["id"]: r[CORRUPT] for r in bad.df.collect()}
    assert flagged["1"] is not None and flagged["2"] is not None
    assert bad.source_rows == 2


def test_bom_is_stripped(spark: SparkSession, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write(raw, "a.csv", "\ufeffid,name\n1,x\n")
    batch = _read(spark, _spec("csv", raw), raw)
    assert "id" in batch.df.columns
    no_header = tmp_path / "nh"
    _write(no_header, "a.csv", "\ufeff1,x\n2,y\n")
    batch = _read(spark, _spec("csv", no_header, options={"header": False}), no_header)
    assert sorted(r["_c0"] for r in batch.df.collect()) == ["1", "2"]
    js = tmp_path / "js"
    _write(js, "a.json", '\ufeff{"id": 1}\n')
    batch = _read(spark, _spec("json", js), js)
    assert [r["id"] for r in batch.df.collect()] == [1]


def test_hidden_and_outside_files_are_reported(spark: SparkSession, tmp_path: Path) -> None:
    raw = tmp_path / "proj" / "raw"
    _write(raw, "a.csv", "id\n1\n")
    _write(raw, "_b.csv", "id\n2\n")
    _write(raw, ".c.csv", "id\n3\n")
    outside = _write(tmp_path / "elsewhere", "secret.csv", "id\n4\n")
    (raw / "link.csv").symlink_to(outside)
    roots = resolve_roots(tmp_path / "proj")
    files, skipped = list_source(spark, str(raw / "*.csv"), roots)
    assert [Path(f.path).name for f in files] == ["a.csv"]
    assert {(Path(s.file.path).name, s.reason) for s in skipped} == {
        ("_b.csv", "hidden_name"),
        (".c.csv", "hidden_name"),
        ("link.csv", "outside_roots"),
    }
    files, _ = list_source(spark, str(raw))
    assert "link.csv" in [Path(f.path).name for f in files]  # no roots given: no check


def test_every_file_rejected_gives_an_empty_frame(spark: SparkSession, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write(raw, "empty.csv", "")
    files = [FileInfo(f"file:{raw / 'empty.csv'}", 0, 0)]
    batch = read_batch(spark, _spec("csv", raw), files, "r", 1)
    assert batch.files == [] and batch.source_rows == 0 and batch.df.count() == 0
