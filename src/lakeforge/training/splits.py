"""Stable train / validation / test splits by hash of an entity key.

An entity's split depends on nothing but its key and the salt::

    bucket = int(sha256(salt + "\\x1e" + canonical_key)[:8 bytes], big-endian) % buckets
    split  = the split whose [start, end) bucket range holds bucket

so an entity never spans splits, keeps its split as data grows, and anyone can recompute
it in plain Python (:func:`assign`) without Spark; :func:`spark_bucket` is the same
function as a Spark column expression. No ``randomSplit``: its result depends on
partitioning and ordering.

Canonical key: each key value is rendered by type and prefixed with its UTF-8 byte length
and a colon, so that no two different keys render alike (``("a|b", "c")`` vs
``("a", "b|c")``); a null is a bare ``\\x00``; the parts are joined with ``\\x1f``:

============  ==================================================
type          rendering
============  ==================================================
bool          ``true`` / ``false``
int           decimal digits, ``-`` for negatives
str           the string itself (UTF-8)
date          ``YYYY-MM-DD``
Decimal       plain notation with the column's scale (``10.50``)
============  ==================================================

Floats and timestamps are not allowed as entity keys: their text forms are not stable
across engines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import Column

BUCKETS = 10_000
SALT_SEPARATOR = "\x1e"
PART_SEPARATOR = "\x1f"
NULL = "\x00"


def render(value: Any) -> str:
    """One key value as canonical text (see the module docstring)."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        raise TypeError("timestamps are not allowed in entity keys")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} values are not allowed in entity keys")


def canonical_key(values: Sequence[Any]) -> str:
    # A value part is "<utf-8 byte length>:<text>"; a null is the bare NUL character,
    # which no value part can be (they all start with digits and a colon).
    return PART_SEPARATOR.join(
        NULL if v is None else f"{len(render(v).encode('utf-8'))}:{render(v)}" for v in values
    )


def bucket_of(values: Sequence[Any], salt: str, buckets: int = BUCKETS) -> int:
    digest = hashlib.sha256((salt + SALT_SEPARATOR + canonical_key(values)).encode("utf-8"))
    return int.from_bytes(digest.digest()[:8], "big") % buckets


@dataclass(frozen=True)
class SplitRanges:
    """Bucket ranges per split: ``{"train": (0, 8000), ...}``, covering [0, buckets)."""

    ranges: Mapping[str, tuple[int, int]]
    buckets: int = BUCKETS

    @classmethod
    def from_fractions(cls, fractions: Mapping[str, float], buckets: int = BUCKETS) -> SplitRanges:
        """Consecutive ranges in the given order; the last split takes any rounding rest."""
        total = sum(fractions.values())
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"split fractions must sum to 1 (got {total})")
        out: dict[str, tuple[int, int]] = {}
        start = 0
        names = list(fractions)
        for i, name in enumerate(names):
            end = buckets if i == len(names) - 1 else start + round(fractions[name] * buckets)
            out[name] = (start, end)
            start = end
        return cls(out, buckets)

    def __post_init__(self) -> None:
        covered = sorted(self.ranges.values())
        expected = 0
        for lo, hi in covered:
            if lo != expected or hi <= lo:
                raise ValueError(f"split ranges must tile [0, {self.buckets}) without gaps")
            expected = hi
        if expected != self.buckets:
            raise ValueError(f"split ranges must tile [0, {self.buckets}) without gaps")

    def split_of(self, bucket: int) -> str:
        for name, (lo, hi) in self.ranges.items():
            if lo <= bucket < hi:
                return name
        raise ValueError(f"bucket {bucket} outside [0, {self.buckets})")


def assign(values: Sequence[Any], salt: str, ranges: SplitRanges) -> str:
    """The split of one entity, in plain Python: what consumers use to check a published set."""
    return ranges.split_of(bucket_of(values, salt, ranges.buckets))


def _spark_render(column: Column, spark_type: str) -> Column:
    from pyspark.sql import functions as F

    t = spark_type.lower()
    if t == "boolean":
        text = F.when(column, F.lit("true")).otherwise(F.lit("false"))
    elif t in ("tinyint", "smallint", "int", "bigint", "string") or t.startswith("decimal"):
        text = column.cast("string")  # decimals keep their scale: 10.50
    elif t == "date":
        text = F.date_format(column, "yyyy-MM-dd")
    else:
        raise TypeError(f"{spark_type} columns are not allowed in entity keys")
    return text


def spark_bucket(
    columns: Sequence[tuple[Column, str]], salt: str, buckets: int = BUCKETS
) -> Column:
    """:func:`bucket_of` as a Spark expression over (column, Spark type name) pairs."""
    from pyspark.sql import functions as F

    parts = []
    for column, spark_type in columns:
        text = _spark_render(column, spark_type)
        part = F.concat(F.octet_length(text).cast("string"), F.lit(":"), text)
        parts.append(F.when(column.isNull(), F.lit(NULL)).otherwise(part))
    key = F.concat_ws(PART_SEPARATOR, *parts)
    digest = F.sha2(F.concat(F.lit(salt + SALT_SEPARATOR), key), 256)
    first8 = F.conv(F.substring(digest, 1, 16), 16, 10).cast("decimal(20,0)")
    return F.pmod(first8, F.lit(buckets)).cast("int")


def spark_split(columns: Sequence[tuple[Column, str]], salt: str, ranges: SplitRanges) -> Column:
    """The split name of each row (same result as :func:`assign`)."""
    from pyspark.sql import functions as F

    bucket = spark_bucket(columns, salt, ranges.buckets)
    expr = None
    for name, (lo, hi) in ranges.ranges.items():
        cond = (bucket >= lo) & (bucket < hi)
        expr = F.when(cond, F.lit(name)) if expr is None else expr.when(cond, F.lit(name))
    assert expr is not None
    return expr
