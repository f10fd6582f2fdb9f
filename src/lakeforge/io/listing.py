"""List raw files through Hadoop's FileSystem, so local paths and s3a:// look alike.

The ingestion log compares these listings (path, size, modification time) with what
was already ingested. :func:`list_source` returns the files to ingest and, separately,
every file the pattern matched that will not be read, with why (:class:`Skipped`):

- ``hidden_name``: the file's name, or a folder's name on the way to it below the matched
  path, starts with ``_`` or ``.`` (or ends with ``._COPYING_``/``.crc``). Spark's file
  sources ignore such files, so reading them would be a surprise; listing them silently
  would be a loss. They are reported instead.
- ``outside_roots``: a local file that, once symlinks are resolved, lies outside the
  allowed roots (:mod:`lakeforge.config.roots`), e.g. a link in the raw folder that
  points at ``/etc``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lakeforge.config.roots import is_inside

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

BOM = "\ufeff"
HIDDEN_NAME = "hidden_name"
OUTSIDE_ROOTS = "outside_roots"


@dataclass(frozen=True, order=True)
class FileInfo:
    """One raw file as listed: fully qualified path, bytes, modification time (ms).

    On object storage also its ETag (from the listing) and, once :func:`with_versions`
    asked for it, the object version id the file is (None: not versioned, or local).
    """

    path: str
    size: int
    mtime_ms: int
    etag: str | None = None
    version_id: str | None = None
    # A version the source pins (``source.versions``): read that version, not the latest.
    pinned: bool = False


def _hidden(name: str) -> bool:
    return name.startswith(("_", ".")) or name.endswith(("._COPYING_", ".crc"))


def _jvm(spark: SparkSession) -> tuple[Any, Any]:
    # Classic (non-Connect) PySpark: the py4j gateway gives Hadoop's FileSystem API.
    return spark.sparkContext._jvm, spark.sparkContext._jsc.hadoopConfiguration()


@dataclass(frozen=True)
class Skipped:
    """A file the source pattern matched that will not be read, and why.

    ``reason`` is ``hidden_name`` or ``outside_roots`` (see the module docstring).
    """

    file: FileInfo
    reason: str


def list_source(
    spark: SparkSession, pattern: str, roots: Sequence[str] | None = None
) -> tuple[list[FileInfo], list[Skipped]]:
    """The files to ingest for ``pattern`` (a file, folder or glob), and those skipped.

    Args:
        spark: the session (its Hadoop configuration reaches s3a:// and local files alike).
        pattern: a file, folder or glob.
        roots: allowed roots (:func:`lakeforge.config.roots.resolve_roots`); ``None`` checks
            nothing. Local files are checked after resolving symlinks.

    Returns:
        The files to read, sorted by path, and the matched files that will not be read,
        sorted by path, each with its reason.
    """
    jvm, conf = _jvm(spark)
    path = jvm.org.apache.hadoop.fs.Path(pattern)
    fs = path.getFileSystem(conf)
    statuses = fs.globStatus(path)
    found: set[FileInfo] = set()
    skipped: dict[FileInfo, str] = {}
    for status in statuses or []:
        hidden_here = _hidden(status.getPath().getName())
        if status.isDirectory():
            base = str(status.getPath().toString())
            it = fs.listFiles(status.getPath(), True)
            while it.hasNext():
                f = it.next()
                rel = str(f.getPath().toString())[len(base) :]
                info = _info(fs, f)
                if hidden_here or any(_hidden(part) for part in rel.split("/") if part):
                    skipped[info] = HIDDEN_NAME
                else:
                    found.add(info)
        else:
            info = _info(fs, status)
            if hidden_here:
                skipped[info] = HIDDEN_NAME
            else:
                found.add(info)
    if roots is not None:
        for info in list(found):
            if not is_inside(info.path, roots):
                found.discard(info)
                skipped[info] = OUTSIDE_ROOTS
    return sorted(found), [Skipped(f, skipped[f]) for f in sorted(skipped)]


def list_files(spark: SparkSession, pattern: str) -> list[FileInfo]:
    """Every non-hidden file matching ``pattern`` (a file, folder or glob), sorted by path.

    Hidden files are left out without a word: prefer :func:`list_source`, which reports them.
    """
    return list_source(spark, pattern)[0]


def _info(fs: Any, status: Any) -> FileInfo:
    path = str(fs.makeQualified(status.getPath()).toString())
    etag = version = None
    if path.startswith("s3a://"):
        # S3A's statuses carry the object's ETag (and, from a HEAD, its version id).
        etag = _text(status.getEtag())
        version = _text(status.getVersionId())
    return FileInfo(
        path=path,
        size=int(status.getLen()),
        mtime_ms=int(status.getModificationTime()),
        etag=etag,
        version_id=version,
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip('"')
    return text or None


def with_versions(spark: SparkSession, files: Sequence[FileInfo]) -> list[FileInfo]:
    """``files`` with the object version id of each ``s3a://`` one (a HEAD each).

    A listing gives no version ids (S3's ListObjectsV2 has none), so the files about to
    be ingested are asked one by one, through the same S3A connection Spark reads them
    with. Local files and files that already know their version are returned as they are.
    """
    jvm, conf = _jvm(spark)
    out = []
    for f in files:
        if f.path.startswith("s3a://") and f.version_id is None:
            path = jvm.org.apache.hadoop.fs.Path(f.path)
            try:
                status = path.getFileSystem(conf).getFileStatus(path)
            except Exception as exc:  # py4j: gone since the listing
                if "FileNotFoundException" not in str(exc):
                    raise
                # Deleted since the listing: reading it fails, and the file is rejected
                # with that reason like any unreadable file (the rest of its batch lands).
                out.append(f)
                continue
            head = _info(path.getFileSystem(conf), status)
            # Only the version (and an ETag the listing lacked) comes from the HEAD: its
            # Last-Modified has whole seconds where the listing's has milliseconds, and
            # the log must compare listings with listings.
            f = replace(f, version_id=head.version_id, etag=f.etag or head.etag)
        out.append(f)
    return out


def read_first_line(spark: SparkSession, path: str, encoding: str = "utf-8") -> str:
    """The first non-blank line of a (possibly compressed) file: a CSV header, read alone."""
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
        # Spark takes the first non-blank line as the header: so do we.
        while line is not None and not str(line).removeprefix(BOM).strip():
            line = reader.readLine()
    finally:
        reader.close()
    return str(line) if line is not None else ""


def parse_header(line: str, sep: str = ",", quote: str = '"') -> list[str]:
    """CSV header names as Spark would name them (blank -> ``_c<i>``, repeats numbered).

    A leading UTF-8 byte order mark is not part of the first name.
    """
    fields = next(
        csv.reader(io.StringIO(line.removeprefix(BOM)), delimiter=sep, quotechar=quote), []
    )
    names: list[str] = []
    for i, raw in enumerate(fields):
        name = raw.strip() or f"_c{i}"
        names.append(name)
    counts = {n: names.count(n) for n in names}
    return [f"{n}{i}" if counts[n] > 1 else n for i, n in enumerate(names)]
