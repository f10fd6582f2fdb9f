"""Read a batch of raw files (CSV, JSON, Parquet, Avro, text) with lineage columns.

:func:`read_batch` owns the promise "nothing lost between a raw file and bronze":

- **A file that cannot be read or parsed as a whole is rejected, the others land**
  (:class:`RejectedFile`, reason ``empty_file``, ``unreadable:<ERROR_CLASS>: <message>``,
  ``not_json_lines: ...`` or ``not_json: ...``). The batch is read at once; only when that
  fails, or a cheap check on the driver flags a file (0 bytes, an unreadable CSV header, a
  JSON-lines file whose first line is not JSON), are files tried one by one to isolate the
  bad ones. Spark/py4j errors are described by their error class and message
  (:func:`describe_error`), never by py4j's call site.
- **Rows are counted from the files, not from the DataFrame** (``source_rows``), so any
  loss between a raw file and bronze shows as ``source_rows`` != rows written. See
  :func:`count_source_rows` for how each format is counted.
- Bronze is typed loosely: CSV columns stay strings unless a schema is declared. Files are
  grouped by their header line and each group read with its own header, then unioned by
  name, so a feed that gains a column on some day lands it in the right place.
- Malformed records (wrong field count, broken quoting, unparseable JSON, values that do
  not fit a declared schema) are kept: the raw text goes to ``_lf_corrupt_record`` and
  silver quarantines them as ``malformed_record``. So are rows with bytes invalid in the
  source's ``encoding``: Spark decodes them to U+FFFD, and any text value holding U+FFFD
  is treated as malformed (its fields joined by the separator go to
  ``_lf_corrupt_record``) rather than landing with the bytes silently replaced.
- A UTF-8 byte order mark is stripped: from the first header name, or (no header, text
  files) from the first value.
- Column names Delta cannot store are renamed by :func:`sanitise_names`; the raw name is
  kept as the column's comment (field metadata ``comment`` and ``lakeforge.source_name``).
- Every row carries the run, batch, ingestion time and its file's path, size and mtime,
  and ``_lf_missing_columns``: for CSV, the columns bronze knows (the batch's other
  headers, the bronze table's columns) that the row's file lacks (:func:`missing_columns`),
  so silver can tell "absent from the file" from a NULL value. Other formats (and CSV with
  a declared ``schema``, where a short line is malformed) give an empty array: a JSON key
  or Parquet column one file lacks reads as NULL there.
- Bronze's commits also record, in their ``userMetadata`` (:data:`MISSING_KEY`), every
  column any row of the table so far lacks (:attr:`BatchRead.lacks`). Reading the per-row
  array and testing it per declared column cost silver about 40% of its step
  (bench/RESULTS.md, 2026-11-30), so silver asks the Delta log first
  (:func:`recorded_lacks`) and reads the array only when a column it declares may be
  missing, or when the log cannot say.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from lakeforge.config.models import SourceSpec
from lakeforge.errors import Code, RunError
from lakeforge.io.delta import parse_metadata
from lakeforge.io.listing import BOM, FileInfo, parse_header, read_first_line

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

META_RUN_ID = "_lf_run_id"
META_BATCH_ID = "_lf_batch_id"
META_INGESTED_AT = "_lf_ingested_at"
META_SOURCE_FILE = "_lf_source_file"
META_SOURCE_SIZE = "_lf_source_size"
META_SOURCE_MTIME = "_lf_source_mtime"
# Object storage only (bronze tables fed from s3a://): which object version each row came
# from, and its ETag. A local source's bronze has neither column.
META_SOURCE_VERSION = "_lf_source_version_id"
META_SOURCE_ETAG = "_lf_source_etag"
# array<string>: columns the row's file lacks (empty when none; NULL in rows bronze wrote
# before this column existed: unknown, read as none missing).
META_MISSING_COLUMNS = "_lf_missing_columns"
CORRUPT = "_lf_corrupt_record"
META_COLUMNS = (
    META_RUN_ID,
    META_BATCH_ID,
    META_INGESTED_AT,
    META_SOURCE_FILE,
    META_SOURCE_SIZE,
    META_SOURCE_MTIME,
    META_MISSING_COLUMNS,
    CORRUPT,
    META_SOURCE_VERSION,
    META_SOURCE_ETAG,
)

DEFAULT_OPTIONS: dict[str, dict[str, str]] = {
    "csv": {"header": "true", "mode": "PERMISSIVE"},
    "json": {"mode": "PERMISSIVE"},
    "parquet": {},
    "avro": {},
    "text": {},
}

EMPTY_FILE = "empty_file"
UNREADABLE = "unreadable"
NOT_JSON_LINES = "not_json_lines"
NOT_JSON = "not_json"
SOURCE_NAME_KEY = "lakeforge.source_name"
REPLACEMENT_CHAR = "\ufffd"
# Characters Delta refuses in column names (DELTA_INVALID_CHARACTERS_IN_COLUMN_NAMES).
INVALID_NAME_CHARS = " ,;{}()\n\t="
_INVALID_NAME = re.compile("[" + re.escape(INVALID_NAME_CHARS) + "]")


@dataclass(frozen=True)
class RejectedFile:
    """A file that cannot be read or parsed as a whole; ``reason`` = stable prefix, detail."""

    file: FileInfo
    reason: str


@dataclass
class BatchRead:
    """What :func:`read_batch` made of a batch of files.

    Attributes:
        df: rows of the readable files, with the ``_lf_*`` lineage columns. When every
            file is rejected it has the lineage columns only and no rows: do not write it.
        rejected: files that cannot be read or parsed as a whole, with their reasons.
        source_rows: records counted from the accepted files themselves, independently of
            ``df`` (see :func:`count_source_rows`).
        files: the accepted files (``files`` given minus ``rejected``), sorted.
        lacks: the columns any row of the table may lack once ``df`` lands, sorted: those
            some accepted file lacks (the union of its rows' ``_lf_missing_columns``,
            known here without reading them) and the table's so far (:func:`table_lacks`).
            Bronze records it in its commit (:data:`MISSING_KEY`).
    """

    df: DataFrame
    rejected: list[RejectedFile] = field(default_factory=list)
    source_rows: int = 0
    files: list[FileInfo] = field(default_factory=list)
    lacks: list[str] = field(default_factory=list)


def resolve_source_path(path: str, root: Path) -> str:
    """URIs (``s3a://``, ``file:/``) pass through; relative paths are from the project root."""
    if "://" in path or path.startswith("file:"):
        return path
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else root / p)


def sanitise_names(names: Sequence[str]) -> list[str]:
    """Column names Delta can store, in order, for the names a file gives.

    The rule: every character of ``INVALID_NAME_CHARS`` (space, ``,;{}()``, newline, tab,
    ``=``) becomes ``_``. A renamed column that then equals another name (compared without
    case, as Spark does) gets ``_<position>`` appended (0-based). Valid names never change.
    """
    out = list(names)
    taken = {n.lower() for n in names if not _INVALID_NAME.search(n)}
    for i, name in enumerate(names):
        if not _INVALID_NAME.search(name):
            continue
        new = _INVALID_NAME.sub("_", name)
        while new.lower() in taken:
            new = f"{new}_{i}"
        taken.add(new.lower())
        out[i] = new
    return out


def describe_error(exc: BaseException) -> str:
    """One line for a Spark or py4j failure: ``<ERROR_CLASS>: <message>[; cause: ...]``.

    Walks the Java exception chain for the first Spark error class and the root cause,
    instead of py4j's ``An error occurred while calling o103.load``.
    """
    throwable = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    if throwable is None:
        return _one_line(f"{type(exc).__name__}: {exc}")
    condition = None
    first = None
    last = None
    seen = 0
    t = throwable
    while t is not None and seen < 20:
        seen += 1
        name = str(t.getClass().getSimpleName())
        msg = str(t.getMessage() or "")
        if first is None:
            first = (name, msg)
        if condition is None:
            condition = _condition(t)
            if condition:
                first = (condition, re.sub(r"^\[[A-Z_.]+\]\s*", "", msg))
        last = (name, msg)
        t = t.getCause()
    assert first is not None and last is not None
    text = f"{first[0]}: {first[1]}"
    if last != first and last[1] and last[1] not in first[1]:
        text += f"; cause: {last[0]}: {last[1]}"
    return _one_line(text)


def _condition(t: Any) -> str | None:
    for method in ("getCondition", "getErrorClass"):
        try:
            value = getattr(t, method)()
        except Exception:  # py4j: not a SparkThrowable
            continue
        if value:
            return str(value)
    return None


def _one_line(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def comparable_path(path: str) -> str:
    """A file path as listed and as ``_metadata.file_path`` gives it, made comparable."""
    path = unquote(path)
    for prefix in ("file:///", "file://"):
        if path.startswith(prefix):
            return "file:/" + path[len(prefix) :]
    return path


def _options(spec: SourceSpec) -> dict[str, str]:
    options = {**DEFAULT_OPTIONS[spec.format], **spec.options}
    if spec.format in ("csv", "json") and not {"encoding", "charset"} & options.keys():
        options["encoding"] = spark_charset(spec.encoding)
    return options


def spark_charset(encoding: str) -> str:
    """The charset name Spark's readers accept for ``encoding`` (``latin1`` -> ``iso-8859-1``)."""
    import codecs

    from lakeforge.config.models import SPARK_CHARSETS

    return SPARK_CHARSETS.get(codecs.lookup(encoding).name, encoding)


def _multiline(options: dict[str, str]) -> bool:
    return options.get("multiLine", options.get("multiline", "false")).lower() == "true"


def _ddl(columns: dict[str, str]) -> str:
    return ", ".join(f"`{name}` {typ}" for name, typ in columns.items())


def _has_replacement(df: DataFrame, cols: list[str]) -> Column | None:
    """Whether any text in the row holds U+FFFD: bytes invalid in the source's encoding."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, MapType, StringType, StructType

    types = dict((f.name, f.dataType) for f in df.schema.fields)
    tests = []
    for c in cols:
        t = types[c]
        if isinstance(t, StringType):
            tests.append(F.instr(F.col(f"`{c}`"), REPLACEMENT_CHAR) > 0)
        elif isinstance(t, ArrayType | MapType | StructType):
            tests.append(F.instr(F.to_json(F.col(f"`{c}`")), REPLACEMENT_CHAR) > 0)
    if not tests:
        return None
    out = tests[0]
    for test in tests[1:]:
        out = out | test
    return F.coalesce(out, F.lit(False))


def _with_meta(
    df: DataFrame,
    run_id: str,
    batch_id: int,
    *,
    sep: str = ",",
    check_encoding: bool = False,
    strip_bom_first: bool = False,
    missing: Sequence[str] = (),
) -> DataFrame:
    """Data columns (names sanitised), the corrupt-record column, then lineage.

    Must be applied to a file-source DataFrame directly: ``_metadata`` does not survive a
    union. ``check_encoding`` marks rows holding U+FFFD as corrupt; ``strip_bom_first``
    strips a leading BOM from the first column's values (files without a header);
    ``missing`` is what every row gets in ``_lf_missing_columns``.
    """
    from pyspark.sql import functions as F

    if CORRUPT not in df.columns:
        df = df.withColumn(CORRUPT, F.lit(None).cast("string"))
    names = [c for c in df.columns if c != CORRUPT]
    safe = sanitise_names(names)
    types = dict(df.dtypes)
    data = []
    for i, (name, new) in enumerate(zip(names, safe, strict=True)):
        col = F.col(f"`{name}`")
        # Only a string column can hold a BOM; a declared typed column keeps its type (a
        # BOM there fails the parse: the line is kept as malformed, not lost).
        if i == 0 and strip_bom_first and types[name] == "string":
            col = F.regexp_replace(col, "^" + BOM, "")
        if new != name:
            data.append(col.alias(new, metadata={"comment": name, SOURCE_NAME_KEY: name}))
        else:
            data.append(col.alias(name))
    corrupt = F.col(CORRUPT)
    if check_encoding:
        bad = _has_replacement(df, names)
        if bad is not None:
            joined = F.concat_ws(
                sep, *[F.coalesce(F.col(f"`{c}`").cast("string"), F.lit("")) for c in names]
            )
            corrupt = F.when(corrupt.isNull() & bad, joined).otherwise(corrupt)
    return df.select(
        *data,
        corrupt.alias(CORRUPT),
        F.lit(run_id).alias(META_RUN_ID),
        F.lit(batch_id).cast("bigint").alias(META_BATCH_ID),
        F.current_timestamp().alias(META_INGESTED_AT),
        # _metadata is Spark's hidden file-source column: the exact file each row came from.
        F.col("_metadata.file_path").alias(META_SOURCE_FILE),
        F.col("_metadata.file_size").alias(META_SOURCE_SIZE),
        F.col("_metadata.file_modification_time").alias(META_SOURCE_MTIME),
        F.array(*[F.lit(m) for m in missing]).cast("array<string>").alias(META_MISSING_COLUMNS),
    )


def _csv_header(
    spark: SparkSession, f: FileInfo, options: dict[str, str]
) -> tuple[str, ...] | None:
    """The column names of one CSV file as read (``_c<i>`` without a header); None if blank."""
    line = read_first_line(spark, f.path, options.get("encoding", options.get("charset", "utf-8")))
    if not line.removeprefix(BOM).strip():
        return None
    names = parse_header(line, _sep(options), options.get("quote", '"'))
    if options.get("header", "false").lower() != "true":
        names = [f"_c{i}" for i in range(len(names))]
    return tuple(names)


def _sep(options: dict[str, str]) -> str:
    return options.get("sep", options.get("delimiter", ","))


def missing_columns(
    header: Sequence[str], headers: Sequence[Sequence[str]], known: Sequence[str] = ()
) -> list[str]:
    """The columns a CSV file with ``header`` lacks: those of the batch's other ``headers``
    and of the bronze table (``known``), as bronze names them (:func:`sanitise_names`),
    compared without case as Spark's union by name does; in order of first appearance.
    """
    have = {n.lower() for n in sanitise_names(header)}
    out: list[str] = []
    for names in [*(sanitise_names(h) for h in headers), list(known)]:
        for name in names:
            if name.lower() not in have:
                have.add(name.lower())
                out.append(name)
    return out


def _read_csv(
    spark: SparkSession,
    spec: SourceSpec,
    headers: dict[str, tuple[str, ...]],
    options: dict[str, str],
    run_id: str,
    batch_id: int,
    known: Sequence[str] = (),
) -> DataFrame:
    opts = {**options, "columnNameOfCorruptRecord": CORRUPT}
    header = opts.get("header", "false").lower() == "true"
    meta = {"sep": _sep(opts), "check_encoding": True, "strip_bom_first": not header}
    if spec.schema_:
        schema = _ddl({**spec.schema_, CORRUPT: "string"})
        df = spark.read.options(**opts).schema(schema).csv(list(headers))
        return _with_meta(df, run_id, batch_id, **meta)  # type: ignore[arg-type]
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for path, names in headers.items():
        groups[names].append(path)
    frames = []
    for header_names, paths in groups.items():
        # The header's own names, positionally: exact for this group of files.
        schema = _ddl({**dict.fromkeys(header_names, "string"), CORRUPT: "string"})
        df = spark.read.options(**opts).option("enforceSchema", "true").schema(schema).csv(paths)
        lacks = missing_columns(header_names, list(groups), known)
        frames.append(_with_meta(df, run_id, batch_id, missing=lacks, **meta))  # type: ignore[arg-type]
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame, allowMissingColumns=True)
    return out


def _read(
    spark: SparkSession,
    spec: SourceSpec,
    files: list[FileInfo],
    options: dict[str, str],
    run_id: str,
    batch_id: int,
    headers: dict[str, tuple[str, ...]],
    known: Sequence[str] = (),
) -> DataFrame:
    paths = [f.path for f in files]
    if spec.format == "csv":
        by_path = {p: headers[p] for p in paths}
        return _read_csv(spark, spec, by_path, options, run_id, batch_id, known)
    if spec.format == "json":
        reader = spark.read.options(**options).option("columnNameOfCorruptRecord", CORRUPT)
        if spec.schema_:
            reader = reader.schema(_ddl({**spec.schema_, CORRUPT: "string"}))
        return _with_meta(reader.json(paths), run_id, batch_id, check_encoding=True)
    reader = spark.read.format(spec.format).options(**options)
    if spec.schema_:
        reader = reader.schema(_ddl(spec.schema_))
    elif spec.format == "parquet":
        reader = reader.option("mergeSchema", "true")
    text = spec.format == "text"
    return _with_meta(
        reader.load(paths), run_id, batch_id, check_encoding=text, strip_bom_first=text
    )


def count_source_rows(
    spark: SparkSession,
    spec: SourceSpec,
    files: list[FileInfo],
    options: dict[str, str] | None = None,
) -> dict[str, int]:
    """Records per file (by listed path), counted from the files without the bronze reader.

    - CSV and JSON lines: the file's non-blank physical lines (a line with a character
      above U+0020), read with Spark's plain text reader, less the lines starting with the
      ``comment`` option's character, less one header line per non-empty CSV file with
      ``header``. A one-line JSON array counts its elements (Spark reads each as a row).
      Spark's CSV and JSON readers make one row of every such line, malformed or not, so
      a row they drop (``DROPMALFORMED``, a parser that joins lines) breaks the count.
    - CSV with ``multiLine``: each whole file is parsed by Python's own ``csv`` module
      (RFC 4180: quoted newlines stay inside a record) and its non-blank records counted,
      less the header. A different parser from Spark's (univocity), so a record Spark
      drops or merges shows.
    - JSON with ``multiLine``: each whole file is parsed by Python's ``json``: a top-level
      array counts its elements, any other value 1; a file that is not strict JSON counts
      -1 (the caller rejects it as ``not_json``).
    - text: every line (Spark's text source makes one row of each, blank ones too).
    - Parquet, Avro: the format's own row count per file (Parquet from the footers).

    Raises:
        Exception: whatever Spark raises when a file cannot be read.
    """
    from pyspark.sql import functions as F

    options = options if options is not None else _options(spec)
    paths = [f.path for f in files]
    path_col = F.col("_metadata.file_path").alias("f")
    if spec.format in ("parquet", "avro"):
        df = spark.read.format(spec.format).options(**options).load(paths).select(path_col)
        counted = df.groupBy("f").agg(F.count(F.lit(1)).alias("n"))
    elif _multiline(options) and spec.format in ("csv", "json"):
        whole = spark.read.text(paths, wholetext=True).select(F.col("value"), path_col)
        counter = _record_counter(spec.format, options)
        counted = whole.select("f", counter(F.col("value")).alias("n"))
    else:
        text_opts = {k: v for k, v in options.items() if k == "lineSep"}
        lines = spark.read.options(**text_opts).text(paths).select(F.col("value"), path_col)
        if spec.format == "text":
            counted = lines.groupBy("f").agg(F.count(F.lit(1)).alias("n"))
        else:
            lines = lines.where(F.col("value").rlike("[^\\x00-\\x20]"))
            comment = options.get("comment")
            if comment:
                lines = lines.where(~F.ltrim(F.col("value")).startswith(comment))
            records = F.lit(1)
            if spec.format == "json":
                v = F.ltrim(F.regexp_replace(F.col("value"), "^" + BOM, ""))
                records = F.when(v.startswith("["), F.coalesce(F.json_array_length(v), F.lit(1)))
                records = records.otherwise(F.lit(1))
            counted = lines.groupBy("f").agg(F.sum(records).alias("n"))
    by_path = {comparable_path(r["f"]): int(r["n"]) for r in counted.collect()}
    out = {f.path: by_path.get(comparable_path(f.path), 0) for f in files}
    if spec.format == "csv" and options.get("header", "false").lower() == "true":
        out = {p: max(n - 1, 0) if n > 0 else n for p, n in out.items()}
    return out


def _record_counter(fmt: str, options: dict[str, str]) -> Callable[[Column], Column]:
    """A UDF counting the records of one whole file with Python's own parser (see above)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType

    sep = _sep(options)
    quote = options.get("quote", '"')
    escape = options.get("escape", "\\")
    comment = options.get("comment")
    bom = BOM

    def count_csv(text: str | None) -> int:
        import csv
        import io

        if text is None:
            return 0
        reader = csv.reader(
            io.StringIO(text.removeprefix(bom), newline=""),
            delimiter=sep,
            quotechar=quote,
            escapechar=None if escape in ("", quote) else escape,
            doublequote=True,
            strict=False,
        )
        n = 0
        for row in reader:
            if not "".join(row).strip():
                continue
            if comment and row[0].lstrip().startswith(comment):
                continue
            n += 1
        return n

    def count_json(text: str | None) -> int:
        import json

        if text is None:
            return 0
        try:
            value = json.loads(text.removeprefix(bom))
        except ValueError:
            return -1
        return len(value) if isinstance(value, list) else 1

    return F.udf(count_csv if fmt == "csv" else count_json, LongType(), useArrow=False)


def _first_line_is_json(spark: SparkSession, f: FileInfo, options: dict[str, str]) -> bool:
    import json

    line = read_first_line(spark, f.path, options.get("encoding", "utf-8")).removeprefix(BOM)
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _no_json_record(spark: SparkSession, f: FileInfo, options: dict[str, str]) -> bool:
    """Whether Spark finds no line of a JSON-lines file that parses: only the corrupt column."""
    df = spark.read.options(**options).option("columnNameOfCorruptRecord", CORRUPT).json(f.path)
    return [c for c in df.columns if c != CORRUPT] == []


def _raise_if_outage(exc: BaseException) -> None:
    """Raise the coded storage error if ``exc`` is the object store failing as a whole
    (unreachable, refusing us, bucket gone), not one file being unreadable.

    A file that cannot be read is rejected and waits for an operator; an outage must not
    reject every file of the batch: the run fails instead, and a rerun after the store is
    back reads them (their batch is pending).
    """
    from lakeforge.io.s3 import storage_failure

    parts = [str(exc)]
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            cause = java
            while cause is not None and len(parts) < 16:
                parts.append(str(cause.toString()))
                cause = cause.getCause()
        except Exception:  # the JVM is gone: the Python text will have to do
            pass
    failure = storage_failure("\n".join(parts))
    if failure is not None and failure.code != Code.OBJECT_MISSING:
        raise failure from exc


def _isolate(
    files: list[FileInfo], attempt: Callable[[list[FileInfo]], Any], what: str
) -> tuple[Any, list[FileInfo], list[RejectedFile]]:
    """Run ``attempt`` on all files; if it fails, on each alone to find the unreadable ones.

    Returns:
        The result of ``attempt`` on the readable files, those files, and the rejected.

    Raises:
        RunError: ``LF-RT-007`` when every file reads alone but not together.
    """
    try:
        return attempt(files), files, []
    except Exception as batch_exc:  # Spark/py4j failures come in many types
        _raise_if_outage(batch_exc)
        good: list[FileInfo] = []
        rejected: list[RejectedFile] = []
        for f in files:
            try:
                attempt([f])
            except Exception as exc:  # one file at a time is the point
                _raise_if_outage(exc)
                rejected.append(RejectedFile(f, f"{UNREADABLE}:{describe_error(exc)}"))
            else:
                good.append(f)
        if not rejected:
            raise RunError(Code.SPARK_FAILED, f"{what}: {describe_error(batch_exc)}") from batch_exc
        if not good:
            return None, good, rejected
        return attempt(good), good, rejected


def read_batch(
    spark: SparkSession,
    spec: SourceSpec,
    files: list[FileInfo],
    run_id: str,
    batch_id: int,
    table: str | None = None,
) -> BatchRead:
    """Read ``files`` for bronze: their rows, the files rejected as a whole, and a row count.

    Args:
        spark: the session.
        spec: the source (format, options, schema, encoding).
        files: the batch's files, as listed.
        run_id: written to every row (``_lf_run_id``).
        batch_id: written to every row (``_lf_batch_id``).
        table: the bronze table the batch goes to: a CSV file lacking one of its columns
            lists it in ``_lf_missing_columns`` (as it lists the batch's other columns).

    Returns:
        A :class:`BatchRead`: ``df`` (lazy, not yet written), ``rejected`` with reasons,
        ``source_rows`` counted from the accepted files (:func:`count_source_rows`).

    Raises:
        RunError: ``LF-RT-007`` when the files cannot be read together although each can.
    """
    options = _options(spec)
    rejected: list[RejectedFile] = []
    ok: list[FileInfo] = []
    for f in sorted(files):
        if f.size == 0:
            rejected.append(RejectedFile(f, EMPTY_FILE))
        else:
            ok.append(f)

    # Cheap checks on the driver, one small read per file.
    headers: dict[str, tuple[str, ...]] = {}
    suspects: list[FileInfo] = []
    checked: list[FileInfo] = []
    for f in ok:
        try:
            if spec.format == "csv":
                names = _csv_header(spark, f, options)
                if names is None:
                    rejected.append(RejectedFile(f, EMPTY_FILE))
                    continue
                headers[f.path] = names
            elif (
                spec.format == "json"
                and not _multiline(options)
                and not _first_line_is_json(spark, f, options)
            ):
                suspects.append(f)
        except Exception as exc:  # a Hadoop/py4j failure opening or decoding the file
            _raise_if_outage(exc)
            rejected.append(RejectedFile(f, f"{UNREADABLE}:{describe_error(exc)}"))
            continue
        checked.append(f)

    # One Spark job counts every file; it also proves each can be read.
    counts, ok, bad = _isolate(
        checked,
        lambda fs: count_source_rows(spark, spec, fs, options),
        f"{spec.path}: counting rows",
    )
    rejected.extend(bad)
    counts = counts or {}
    kept: list[FileInfo] = []
    for f in ok:
        if counts.get(f.path) == -1:
            rejected.append(RejectedFile(f, f"{NOT_JSON}: the file is not one JSON document"))
        elif f in suspects and _no_json_record(spark, f, options):
            rejected.append(
                RejectedFile(
                    f,
                    f"{NOT_JSON_LINES}: no line is a JSON record; a pretty-printed JSON "
                    "document needs options: {multiLine: true}",
                )
            )
        else:
            kept.append(f)

    df = None
    if kept:
        known = _table_columns(spark, table)
        df, kept, bad = _isolate(
            kept,
            lambda fs: _read(spark, spec, fs, options, run_id, batch_id, headers, known),
            f"{spec.path}: reading",
        )
        rejected.extend(bad)
    lacks: set[str] = set()
    if df is None:
        df = _empty(spark, run_id, batch_id)
    else:
        lacks = table_lacks(spark, table) if table is not None else set()
        if spec.format == "csv" and not spec.schema_:
            # What _read_csv gave the files that were read, per header group.
            groups = list(dict.fromkeys(headers[f.path] for f in kept))
            for names in groups:
                lacks.update(missing_columns(names, groups, known))
    return BatchRead(
        df=df,
        rejected=sorted(rejected, key=lambda r: r.file.path),
        source_rows=sum(counts.get(f.path, 0) for f in kept),
        files=kept,
        lacks=sorted(lacks),
    )


def with_object_versions(df: DataFrame, files: Sequence[FileInfo]) -> DataFrame:
    """Add each row's object version id and ETag (by its ``_lf_source_file``), when the
    batch's files are objects that have them; ``df`` unchanged for local files.

    A literal map from path to value: a batch holds at most thousands of files, and the
    lookup needs no join (nor a second read of the files).
    """
    from pyspark.sql import functions as F

    known = [f for f in files if f.etag is not None or f.version_id is not None]
    if not known:
        return df

    def lookup(values: dict[str, str | None]) -> Column:
        pairs = [x for path, v in values.items() for x in (F.lit(path), F.lit(v))]
        return F.element_at(F.create_map(*pairs), F.col(META_SOURCE_FILE)).cast("string")

    # Spark's _metadata.file_path and the listing name a file alike for s3a:// (no
    # percent-encoding differences in the keys lakeforge lands); a miss is NULL, not loss.
    return df.withColumn(
        META_SOURCE_VERSION, lookup({f.path: f.version_id for f in known})
    ).withColumn(META_SOURCE_ETAG, lookup({f.path: f.etag for f in known}))


def _table_columns(spark: SparkSession, table: str | None) -> list[str]:
    """The data columns of the bronze table ``table`` (none when it does not exist yet)."""
    if table is None or not spark.catalog.tableExists(table):
        return []
    return [c for c in spark.table(table).columns if c not in META_COLUMNS]


def _empty(spark: SparkSession, run_id: str, batch_id: int) -> DataFrame:
    """No rows, lineage columns only: what a batch of rejected files reads as."""
    schema = (
        f"{CORRUPT} string, {META_RUN_ID} string, {META_BATCH_ID} bigint, "
        f"{META_INGESTED_AT} timestamp, {META_SOURCE_FILE} string, {META_SOURCE_SIZE} bigint, "
        f"{META_SOURCE_MTIME} timestamp, {META_MISSING_COLUMNS} array<string>"
    )
    return spark.createDataFrame([], schema)


# --- what the Delta log says about _lf_missing_columns --------------------------------

# The userMetadata key of a bronze commit: the columns any row of the table may lack, this
# batch's and every earlier one's (a sorted list; empty when no file ever lacked one).
MISSING_KEY = "missing_columns"
# How far back the log is read for the newest commit that recorded it.
HISTORY_LIMIT = 50
# Operations that add no rows: the rows they keep (rewritten by OPTIMIZE, REORG or a
# DELETE's surviving rows) come from commits older than them. A RESTORE is not among them:
# it can bring back rows deleted before a record was started from the table's rows.
_ROWLESS = frozenset(
    {
        "ADD COLUMNS",
        "ADD CONSTRAINT",
        "CHANGE COLUMN",
        "DELETE",
        "DROP CONSTRAINT",
        "OPTIMIZE",
        "REORG",
        "SET TBLPROPERTIES",
        "UNSET TBLPROPERTIES",
        "UPGRADE PROTOCOL",
        "VACUUM END",
        "VACUUM START",
    }
)


def recorded_lacks(spark: SparkSession, table: str) -> set[str] | None:
    """The columns any row of ``table`` may lack, as its newest bronze commit recorded them.

    The Delta log is read newest first (at most :data:`HISTORY_LIMIT` commits, from the
    log alone, no job over data): commits that add no rows are passed over, the first one
    that recorded ``missing_columns`` answers (its list covers every earlier commit).

    Returns:
        The recorded columns; None when the log cannot say (another writer's commit that
        may add rows, a table bronze wrote before it kept the record, or no such commit in
        reach): then only the rows can tell.
    """
    from delta.tables import DeltaTable

    if not spark.catalog.tableExists(table):
        return None
    rows = (
        DeltaTable.forName(spark, table)
        .history(HISTORY_LIMIT)
        .select("operation", "operationMetrics", "userMetadata")
        .collect()
    )
    return lacks_from_history(
        (r["operation"], r["operationMetrics"], r["userMetadata"]) for r in rows
    )


def lacks_from_history(
    commits: Iterable[tuple[str, Mapping[str, str] | None, str | None]],
) -> set[str] | None:
    """:func:`recorded_lacks` from the commits (operation, operationMetrics,
    userMetadata), newest first."""
    for operation, metrics, user_metadata in commits:
        recorded = parse_metadata(user_metadata).get(MISSING_KEY)
        if isinstance(recorded, list):
            return {str(c) for c in recorded}
        added = (metrics or {}).get("numAddedFiles", (metrics or {}).get("numFiles"))
        if operation not in _ROWLESS and added != "0":
            return None
    return None


def table_lacks(spark: SparkSession, table: str) -> set[str]:
    """The columns any row of the bronze table ``table`` lacks, for its next commit's
    record: from the log (:func:`recorded_lacks`) or, when the log cannot say (a table
    older than the record), from its rows once (one job over ``_lf_missing_columns``)."""
    from pyspark.sql import functions as F

    if not spark.catalog.tableExists(table):
        return set()
    recorded = recorded_lacks(spark, table)
    if recorded is not None:
        return recorded
    df = spark.table(table)
    if META_MISSING_COLUMNS not in df.columns:
        return set()
    listed = df.select(F.explode(META_MISSING_COLUMNS).alias("c")).distinct().collect()
    return {str(r["c"]) for r in listed}
