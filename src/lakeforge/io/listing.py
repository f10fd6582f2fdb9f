"""List raw files through Hadoop's FileSystem, so local paths and s3a:// look alike.

The ingestion log compares these listings (path, size, modification time) with what
was already ingested. Hidden files (``_SUCCESS``, ``.crc``, ``.tmp``) are skipped the way
Spark's file sources skip them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True, order=True)
class FileInfo:
    """One raw file as listed: fully qualified path, bytes, modification time (ms)."""

    path: str
    size: int
    mtime_ms: int


def _hidden(name: str) -> bool:
    return name.startswith(("_", ".")) or name.endswith(("._COPYING_", ".crc"))


def _jvm(spark: SparkSession) -> tuple[Any, Any]:
    # Classic (non-Connect) PySpark: the py4j gateway gives Hadoop's FileSystem API.
    return spark.sparkContext._jvm, spark.sparkContext._jsc.hadoopConfiguration()


def list_files(spark: SparkSession, pattern: str) -> list[FileInfo]:
    """Every non-hidden file matching ``pattern`` (a file, folder or glob), sorted by path."""
    jvm, conf = _jvm(spark)
    path = jvm.org.apache.hadoop.fs.Path(pattern)
    fs = path.getFileSystem(conf)
    statuses = fs.globStatus(path)
    found: list[FileInfo] = []
    if statuses is None:
        return found
    for status in statuses:
        if _hidden(status.getPath().getName()):
            continue
        if status.isDirectory():
            it = fs.listFiles(status.getPath(), True)
            while it.hasNext():
                f = it.next()
                rel = str(f.getPath().toString())[len(str(status.getPath().toString())) :]
                if any(_hidden(part) for part in rel.split("/") if part):
                    continue
                found.append(_info(fs, f))
        else:
            found.append(_info(fs, status))
    return sorted(set(found))


def _info(fs: Any, status: Any) -> FileInfo:
    return FileInfo(
        path=str(fs.makeQualified(status.getPath()).toString()),
        size=int(status.getLen()),
        mtime_ms=int(status.getModificationTime()),
    )


def read_first_line(spark: SparkSession, path: str, encoding: str = "utf-8") -> str:
    """The first line of a (possibly compressed) file: a CSV header, without reading the rest."""
    jvm, conf = _jvm(spark)
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(conf)
    stream = fs.open(hpath)
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf).getCodec(hpath)
    if codec is not None:
        stream = codec.createInputStream(stream)
    reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, encoding))
    try:
        line = reader.readLine()
    finally:
        reader.close()
    return str(line) if line is not None else ""


def parse_header(line: str, sep: str = ",", quote: str = '"') -> list[str]:
    """CSV header names as Spark would name them (blank -> ``_c<i>``, repeats numbered)."""
    fields = next(csv.reader(io.StringIO(line), delimiter=sep, quotechar=quote), [])
    names: list[str] = []
    for i, raw in enumerate(fields):
        name = raw.strip() or f"_c{i}"
        names.append(name)
    counts = {n: names.count(n) for n in names}
    return [f"{n}{i}" if counts[n] > 1 else n for i, n in enumerate(names)]
