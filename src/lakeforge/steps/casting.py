"""Strict casts: an input column -> its declared silver type, as Spark Column expressions.

Spark's ``try_cast`` is lenient with text: ``'2026-01-05 not-a-date'`` and ``'2026-01-05T99'``
become the date 2026-01-05, ``'99999-01-01'`` a date no client can read back, ``'10:00'`` a
timestamp of today, ``'12D'`` a double, ``'10.555'`` the decimal(10,2) 10.56 and Arabic-Indic
digits a decimal. A value that lands must mean what the text says, so text input must match
the whole of an accepted form (:func:`accepted_pattern`) before ``try_cast`` may type it;
dates and timestamps must also fall in years 1..9999, whatever the input type. Everything is
one Column expression (``rlike`` + ``try_cast``), evaluated in the conform step's single pass:
no UDF, no extra job.

Accepted text (leading and trailing spaces and tabs are ignored, as Spark ignores them):

- integers (tinyint .. bigint): ``[+-]digits``; out of range fails.
- decimal(p,s): ``[+-]digits[.digits]`` or ``[+-].digits``; fraction digits beyond the
  scale must be zeros (``10.50`` fits decimal(10,1), ``10.55`` does not: rounding would
  change the value); no exponent; too many integer digits fails.
- double / float: a decimal number with an optional exponent (``1e3``, ``-2.5E-4``), or
  ``NaN``, ``Infinity``, ``Inf`` with an optional sign (any case).
- boolean: Spark's own whole-word set (``true false t f yes no y n 1 0``, any case).
- date: ``yyyy-MM-dd``.
- timestamp / timestamp_ltz: ``yyyy-MM-dd``, ``yyyy-MM-dd[ T]HH:mm`` or
  ``yyyy-MM-dd[ T]HH:mm:ss[.f][zone]`` with 1 to 6 fraction digits (microseconds, Spark's
  precision: more would be truncated) and zone ``Z`` or ``+HH:mm`` / ``-HH:mm`` (only after
  the seconds, as Spark reads it); no zone means the session time zone.
- timestamp_ntz: the same without a zone (Spark would drop it silently).
- string and binary: anything (no cast).

Digits are ASCII ``0-9`` only. Inputs that are not text (a JSON number, a Parquet date) are
cast with ``try_cast`` as they are; dates and timestamps among them still need years 1..9999.

A value is not the only thing that can be wrong: the column itself can be absent from the
row's source file (a CSV file of the batch without that header name). Bronze lists such
columns per row in ``_lf_missing_columns``; :func:`absent_from_file` turns that into the
row's flag and its reason ``missing_column:<name>``, distinct from a NULL value. That test
is only built for the columns :func:`may_lack` names: those bronze's Delta log records as
missing from some file, or all of them when the log cannot say. Reading the array and
testing it per column on every row cost about 40% of a silver step (bench/RESULTS.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakeforge.io.files import META_MISSING_COLUMNS, recorded_lacks

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

MIN_YEAR, MAX_YEAR = 1, 9999
# Reason of a row whose source file lacked a declared column: ``missing_column:<name>``.
MISSING_COLUMN = "missing_column:"

_WS = "[ \t]*"
_INTEGER = "[+-]?[0-9]+"
_FLOAT = (
    "[+-]?(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:[+-]?(?:nan|inf|infinity))"
)
_BOOLEAN = "(?i:true|false|t|f|yes|no|y|n|1|0)"
_DATE = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
_SECONDS = "(?::[0-9]{2}(?:[.][0-9]{1,6})?)"
_ZONE = "(?:Z|[+-][0-9]{2}:[0-9]{2})"  # Spark reads a zone only after the seconds
_DECIMAL = re.compile(r"decimal\((\d+),(\d+)\)")

INTEGER_TYPES = ("tinyint", "byte", "smallint", "short", "int", "integer", "bigint", "long")
FLOAT_TYPES = ("float", "real", "double")
TIMESTAMP_TYPES = ("timestamp", "timestamp_ltz", "timestamp_ntz")
DATETIME_TYPES = ("date", *TIMESTAMP_TYPES)


def accepted_pattern(type_name: str) -> str | None:
    """The form text must have, whole, to be cast to ``type_name`` (a normalised Spark type
    name, as the config models give it); None when any text is accepted.

    The pattern is written in the common subset of Java and Python regular expressions,
    without anchors: Spark matches it with :func:`spark_regex`, tests with ``re.fullmatch``.
    """
    if type_name in INTEGER_TYPES:
        body = _INTEGER
    elif type_name in FLOAT_TYPES:
        body = _FLOAT
    elif type_name == "boolean":
        body = _BOOLEAN
    elif type_name == "date":
        body = _DATE
    elif type_name in ("timestamp", "timestamp_ltz"):
        body = f"{_DATE}(?:[ T][0-9]{{2}}:[0-9]{{2}}(?:{_SECONDS}{_ZONE}?)?)?"
    elif type_name == "timestamp_ntz":
        body = f"{_DATE}(?:[ T][0-9]{{2}}:[0-9]{{2}}{_SECONDS}?)?"
    elif (m := _DECIMAL.fullmatch(type_name)) is not None:
        scale = int(m.group(2))
        fraction = f"(?:[.][0-9]{{0,{scale}}}0*)?" if scale else "(?:[.]0*)?"
        only_fraction = f"|[+-]?[.][0-9]{{1,{scale}}}0*" if scale else ""
        body = f"[+-]?[0-9]+{fraction}{only_fraction}"
    else:
        return None
    return f"{_WS}(?:{body}){_WS}"


def spark_regex(pattern: str) -> str:
    """``pattern`` anchored for Spark's ``rlike`` (a Java ``find``): ``\\z`` and not ``$``,
    which would also match before a trailing newline."""
    return f"^(?:{pattern})\\z"


@dataclass(frozen=True)
class Cast:
    """A column cast strictly: its typed value (null when the cast fails) and whether it
    failed (a non-null input that did not give an accepted value)."""

    typed: Column
    failed: Column


def strict_cast(raw: Column, input_type: str, type_name: str) -> Cast:
    """Cast ``raw`` (of Spark type ``input_type``, as ``DataFrame.dtypes`` names it) to
    ``type_name`` under the rules of this module.

    Args:
        raw: the input column.
        input_type: its Spark type (``string`` for CSV columns).
        type_name: the declared type, normalised (``decimal(10,2)``, ``bigint``, ...).

    Returns:
        The typed column and the failure flag, both plain Column expressions.
    """
    from pyspark.sql import functions as F

    typed = raw.try_cast(type_name)
    accepted = typed.isNotNull()
    pattern = accepted_pattern(type_name)
    if input_type == "string" and pattern is not None:
        accepted = accepted & raw.rlike(spark_regex(pattern))
    if type_name in DATETIME_TYPES:
        accepted = accepted & F.year(typed).between(MIN_YEAR, MAX_YEAR)
    value = F.when(accepted, typed)
    return Cast(value, raw.isNotNull() & ~accepted)


@dataclass(frozen=True)
class Absent:
    """A declared column absent from the row's source file: the flag and the reason (null
    when the file had the column)."""

    flag: Column
    reason: Column


def missing_reason(name: str) -> str:
    """The quarantine reason of a row whose file lacked the declared column ``name``."""
    return f"{MISSING_COLUMN}{name}"


def absent_from_file(columns: Sequence[str], source: str, name: str) -> Absent | None:
    """Whether each row's source file lacked the input column ``source`` (declared as
    ``name``), from bronze's ``_lf_missing_columns``.

    Args:
        columns: the input's columns (``DataFrame.columns``).
        source: the input column the declared column reads.
        name: the declared column, named in the reason.

    Returns:
        None when the input does not carry ``_lf_missing_columns`` (not a bronze table of
        this version); otherwise the flag (false when the list is NULL: rows bronze wrote
        before it kept the list are taken as complete) and the reason.
    """
    from pyspark.sql import functions as F

    if META_MISSING_COLUMNS not in columns:
        return None
    flag = F.coalesce(F.array_contains(F.col(META_MISSING_COLUMNS), F.lit(source)), F.lit(False))
    return Absent(flag, F.when(flag, F.lit(missing_reason(name))))


def may_lack(df: DataFrame, table: str, sources: Sequence[str]) -> set[str]:
    """The input columns among ``sources`` that some row of ``df`` (read from ``table``)
    may have had absent from its file: only those need :func:`absent_from_file`.

    Asked of ``table``'s Delta log (:func:`lakeforge.io.files.recorded_lacks`: the newest
    bronze commit lists every column any row of the table lacks, so it covers whichever
    versions ``df`` read), compared without case as bronze compares names. When the log
    cannot say, every one of ``sources``: the rows decide.
    """
    if META_MISSING_COLUMNS not in df.columns:
        return set()
    recorded = recorded_lacks(df.sparkSession, table)
    if recorded is None:
        return set(sources)
    lower = {c.lower() for c in recorded}
    return {s for s in sources if s.lower() in lower}
