"""The content checksum of a training-set split: order-independent, recomputable anywhere.

Definition (what :func:`spark_checksums` computes and :func:`checksum` recomputes in plain
Python)::

    row_text  = PART_SEPARATOR.join(part(value) for value in row)   # columns in schema order
    part(v)   = "\\x00" if v is null else f"{len(text(v).encode('utf-8'))}:{text(v)}"
    row_hash  = int.from_bytes(sha256(row_text.encode("utf-8")).digest()[:8], "big")
    checksum  = format(sum(row_hash for row in split) % 2**64, "016x")

The length prefix keeps different rows from rendering alike (``("a|b", "c")`` vs
``("a", "b|c")``); a null is the bare NUL character, which no value part can be. Summing
(mod 2^64) instead of XOR-ing keeps duplicate rows from cancelling out; being a sum, the
result depends neither on row order nor on partitioning, and any changed value changes
its row's hash and so (but for a 2^-64 chance) the sum. Only values count: column names
and types are in the manifest's schema, next to the checksum.

``text(v)`` by Spark type:

==========================  ========================================================
type                        text
==========================  ========================================================
boolean                     ``true`` / ``false``
tinyint .. bigint           decimal digits, ``-`` for negatives
decimal(p, s)               plain notation with the column's scale (``-12.50``)
float, double               the exact value in Java's hexadecimal form
                            (``Double.toHexString``: ``0x1.999999999999ap-4``,
                            ``-0x0.0p0``, ``NaN``, ``Infinity``); floats are widened to
                            double first. Decimal text is not used: Java 17 and Python
                            print some doubles differently (1e23).
string                      the string itself
binary                      lower-case hex
date                        ``YYYY-MM-DD``
timestamp                   microseconds since 1970-01-01T00:00:00Z, decimal digits
timestamp_ntz               ``YYYY-MM-DDTHH:MM:SS.ffffff``
array, map, struct          Spark's ``to_json`` (Spark-specific: recomputable with
                            Spark only)
==========================  ========================================================
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lakeforge.training.splits import NULL, PART_SEPARATOR

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

MOD = 2**64
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INTEGRAL = ("tinyint", "smallint", "int", "bigint")
NESTED = ("array", "map", "struct")


# --- plain Python (the reference) -------------------------------------------------------


def _java_hex(value: float) -> str:
    """``Double.toHexString``: Python's ``float.hex`` without trailing zeros and ``+``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    mantissa, exponent = value.hex().split("p")
    whole, frac = mantissa.split(".")
    return f"{whole}.{frac.rstrip('0') or '0'}p{int(exponent)}"


def render(value: Any, spark_type: str) -> str:
    """One non-null value as canonical text (see the module docstring).

    Args:
        value: as PySpark returns it (``collect``); a naive ``datetime`` for a
            ``timestamp`` column is local time, as PySpark returns it.
        spark_type: the column's Spark type, ``simpleString`` form (``decimal(10,2)``).
    """
    t = spark_type.lower()
    if t == "boolean":
        return "true" if value else "false"
    if t in INTEGRAL:
        return str(int(value))
    if t.startswith("decimal"):
        scale = int(t.rstrip(")").split(",")[1]) if "," in t else 0
        return format(Decimal(value).quantize(Decimal(1).scaleb(-scale)), "f")
    if t in ("float", "double"):
        return _java_hex(float(value))
    if t == "string":
        return str(value)
    if t == "binary":
        return bytes(value).hex()
    if t == "date":
        assert isinstance(value, date)
        return value.isoformat()
    if t == "timestamp":
        assert isinstance(value, datetime)
        aware = value if value.tzinfo is not None else value.astimezone()
        return str((aware - EPOCH) // timedelta(microseconds=1))
    if t == "timestamp_ntz":
        assert isinstance(value, datetime)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")
    raise TypeError(f"{spark_type} values are checksummed by Spark only (to_json)")


def row_text(values: Sequence[Any], types: Sequence[str]) -> str:
    return PART_SEPARATOR.join(
        NULL if v is None else _part(render(v, t)) for v, t in zip(values, types, strict=True)
    )


def _part(text: str) -> str:
    return f"{len(text.encode('utf-8'))}:{text}"


def row_hash(values: Sequence[Any], types: Sequence[str]) -> int:
    digest = hashlib.sha256(row_text(values, types).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def checksum(rows: Iterable[Sequence[Any]], types: Sequence[str]) -> str:
    """The checksum of ``rows`` (any order), each a sequence of values in schema order."""
    return format(sum(row_hash(r, types) for r in rows) % MOD, "016x")


def from_sum(total: int | Decimal | None) -> str:
    """The checksum text from Spark's (unreduced) sum of row hashes; None: no rows."""
    return format(int(total or 0) % MOD, "016x")


# --- Spark ------------------------------------------------------------------------------


def _spark_text(column: Column, spark_type: str) -> Column:
    from pyspark.sql import functions as F

    t = spark_type.lower()
    if t == "boolean":
        return F.when(column, F.lit("true")).otherwise(F.lit("false"))
    if t in INTEGRAL or t.startswith("decimal") or t == "string":
        return column.cast("string")  # decimals print plainly, with their scale
    if t in ("float", "double"):
        return F.format_string("%a", column.cast("double"))
    if t == "binary":
        return F.lower(F.hex(column))
    if t == "date":
        return F.date_format(column, "yyyy-MM-dd")
    if t == "timestamp":
        return F.unix_micros(column).cast("string")
    if t == "timestamp_ntz":
        return F.date_format(column, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS")
    if t.startswith(NESTED):
        return F.to_json(column)
    return column.cast("string")


def spark_row_hash(df: DataFrame, columns: Sequence[str]) -> Column:
    """:func:`row_hash` of each row over ``columns`` as a ``decimal(20,0)`` Spark column."""
    from pyspark.sql import functions as F

    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    parts = []
    for name in columns:
        column = F.col(f"`{name}`")
        text = _spark_text(column, types[name])
        part = F.concat(F.octet_length(text).cast("string"), F.lit(":"), text)
        parts.append(F.when(column.isNull(), F.lit(NULL)).otherwise(part))
    digest = F.sha2(F.concat_ws(PART_SEPARATOR, *parts), 256)
    return F.conv(F.substring(digest, 1, 16), 16, 10).cast("decimal(20,0)")


def spark_checksum_sum(df: DataFrame, columns: Sequence[str]) -> Column:
    """An aggregate: the sum of row hashes (reduce it with :func:`from_sum`).

    ``decimal(38,0)`` holds the exact sum of ~10^19 rows' hashes, so no overflow.
    """
    from pyspark.sql import functions as F

    return F.sum(spark_row_hash(df, columns).cast("decimal(38,0)"))


def spark_checksums(df: DataFrame, columns: Sequence[str], by: str) -> dict[str, tuple[int, str]]:
    """Rows and checksum of each group of ``by`` (one Spark job)."""
    from pyspark.sql import functions as F

    rows = df.groupBy(by).agg(
        F.count(F.lit(1)).alias("n"), spark_checksum_sum(df, columns).alias("s")
    )
    return {str(r[by]): (int(r["n"]), from_sum(r["s"])) for r in rows.collect()}
