"""``schema.table@version`` references: parsing, rendering as Delta SQL, rewriting SQL text.

``silver.orders@3`` (or ``@v3``) is version 3; ``silver.orders@2026-11-01`` and
``silver.orders@2026-11-01T10:00:00`` (space instead of ``T``, fractional seconds and a
trailing ``Z`` allowed) are the table as of that instant, in the session time zone
(lakeforge sessions use UTC). Delta spells these ``VERSION AS OF 3`` and
``TIMESTAMP AS OF '...'``; Spark's parser does not know ``@`` at all, so
:func:`rewrite_sql` can translate every reference without clashing with other syntax.

Pure Python on purpose: config code imports this module, and it must not start a JVM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(rf"^(?:`({_IDENT})`|({_IDENT}))\.(?:`({_IDENT})`|({_IDENT}))$")
_PLAIN_NAME = re.compile(rf"^{_IDENT}\.{_IDENT}$")
_VERSION = re.compile(r"^[vV]?(\d+)$")
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z)?)?$"
)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Inside SQL text: a reference is two identifiers (plain or backquoted) joined by a dot and
# followed directly by '@'. What follows '@' runs to the next character that cannot be part
# of a version or timestamp; a date may be followed by " HH:MM..." (the space form).
_QUOTED_PART = r"`(?:[^`]|``)+`"
_SQL_REF = re.compile(rf"(?:{_QUOTED_PART}|{_IDENT})\.(?:{_QUOTED_PART}|{_IDENT})@")
_SPEC_TOKEN = re.compile(r"[\w.:+\-]*")
_SPACE_TIME = re.compile(r" \d{2}:\d{2}[\w.:+\-]*")

_SPEC_HELP = "a version (3, v3) or a timestamp (2026-11-01, 2026-11-01T10:00:00)"


@dataclass(frozen=True)
class VersionedRef:
    """A table, optionally pinned to a Delta version or to a point in time.

    ``version`` and ``timestamp`` are mutually exclusive; neither means the latest version.
    ``timestamp`` is normalised to ``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM:SS[.ffffff][Z]``.

    Raises:
        ValueError: the name is not ``schema.table``, both pins are set, the version is
            negative, or the timestamp is malformed.
    """

    name: str
    version: int | None = None
    timestamp: str | None = None

    def __post_init__(self) -> None:
        # The name is rendered into SQL unquoted, so only plain identifiers are allowed.
        if not _PLAIN_NAME.match(self.name):
            raise ValueError(f"table name '{self.name}' is not schema.table")
        if self.version is not None and self.timestamp is not None:
            raise ValueError("a table reference takes a version or a timestamp, not both")
        if self.version is not None and (
            isinstance(self.version, bool) or not isinstance(self.version, int)
        ):
            raise ValueError(f"version must be an integer, got {self.version!r}")
        if self.version is not None and self.version < 0:
            raise ValueError(f"version must be >= 0, got {self.version}")
        if self.timestamp is not None:
            object.__setattr__(self, "timestamp", _normalise_timestamp(self.timestamp))

    @property
    def is_latest(self) -> bool:
        """True when neither a version nor a timestamp pins the reference."""
        return self.version is None and self.timestamp is None

    def sql(self) -> str:
        """The reference as Delta SQL, e.g. ``silver.orders VERSION AS OF 3``."""
        return self.name + _clause(self.version, self.timestamp)

    def __str__(self) -> str:
        """The ``@`` form :func:`parse_table_ref` reads back, e.g. ``silver.orders@3``."""
        if self.version is not None:
            return f"{self.name}@{self.version}"
        if self.timestamp is not None:
            return f"{self.name}@{self.timestamp.replace(' ', 'T')}"
        return self.name


def parse_table_ref(text: str) -> VersionedRef:
    """Parse ``schema.table``, ``schema.table@3``, ``@v3``, ``@2026-11-01[T10:00:00[.f][Z]]``.

    Args:
        text: the reference; surrounding whitespace is ignored, the name is lower-cased
            (metastore names are case-insensitive) and may be backquoted per part.

    Returns:
        The reference; version and timestamp both None means the latest version.

    Raises:
        ValueError: empty text, a name that is not ``schema.table``, a negative version,
            an impossible date or time, or anything else after ``@``.
    """
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty table reference: expected schema.table[@version|@timestamp]")
    name_text, at, spec = stripped.partition("@")
    name = _parse_name(name_text.strip())
    if not at:
        return VersionedRef(name)
    version, timestamp = _parse_spec(spec)
    return VersionedRef(name, version, timestamp)


def rewrite_sql(sql: str) -> str:
    """Replace every ``schema.table@...`` in ``sql`` with Delta's ``VERSION/TIMESTAMP AS OF``.

    String literals, comments (``--``, nested ``/* */``) and backquoted identifiers are
    left alone; so is every byte outside the ``@...`` suffixes, including the table
    name as written. Any schema is accepted, not only the lakeforge layers.

    Args:
        sql: the SQL text.

    Returns:
        The text with references rewritten (identical when it has none).

    Raises:
        ValueError: an ``@`` outside literals and comments that is not a valid
            ``schema.table@version|timestamp`` (Spark would reject it with a vaguer error).
    """
    out: list[str] = []
    copied = 0  # sql[copied:i] is still to be copied verbatim
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif sql.startswith("/*", i):
            i = _end_of_block_comment(sql, i)
        elif c in "'\"":
            raw = i > 0 and sql[i - 1] in "rR" and (i < 2 or not _is_word(sql[i - 2]))
            i = _end_of_string(sql, i, raw)
        elif c == "`" or _is_word(c):
            match = _SQL_REF.match(sql, i) if i == 0 or sql[i - 1] != "." else None
            if match is None:
                i = _end_of_backquoted(sql, i) if c == "`" else _end_of_word(sql, i)
                continue
            spec, end = _spec_at(sql, match.end())
            try:
                version, timestamp = _parse_spec(spec)
            except ValueError as exc:
                raise ValueError(
                    f"bad table reference '{sql[i:end]}' at line {_line(sql, i)}: {exc}"
                ) from None
            out.append(sql[copied : match.end() - 1])
            out.append(_clause(version, timestamp))
            copied = i = end
        elif c == "@":
            raise ValueError(
                f"'@' at line {_line(sql, i)} does not follow a schema.table name "
                f"(write e.g. silver.orders@3 or silver.orders@2026-11-01)"
            )
        else:
            i += 1
    out.append(sql[copied:])
    return "".join(out)


def _parse_name(text: str) -> str:
    m = _NAME.match(text)
    if m:
        schema = m.group(1) or m.group(2)
        table = m.group(3) or m.group(4)
        return f"{schema}.{table}".lower()
    if not text:
        raise ValueError("missing table name before '@': expected schema.table")
    if "." not in text:
        raise ValueError(
            f"table name '{text}' is not qualified: write schema.table (e.g. silver.{text})"
        )
    raise ValueError(f"table name '{text}' is not schema.table (letters, digits, _)")


def _parse_spec(spec: str) -> tuple[int | None, str | None]:
    """The version or the normalised timestamp written after ``@``."""
    if not spec:
        raise ValueError(f"nothing after '@': expected {_SPEC_HELP}")
    m = _VERSION.match(spec)
    if m:
        return int(m.group(1)), None
    if re.match(r"^-[vV]?\d+$", spec):
        raise ValueError(f"version must be >= 0, got {spec}")
    if re.match(r"^\d{4}-", spec):
        return None, _normalise_timestamp(spec)
    raise ValueError(f"'{spec}' is not {_SPEC_HELP}")


def _normalise_timestamp(text: str) -> str:
    m = _TIMESTAMP.match(text)
    if not m:
        raise ValueError(
            f"bad timestamp '{text}': expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.ffffff][Z]"
        )
    year, month, day, hour, minute, second, fraction, zulu = m.groups()
    try:
        date(int(year), int(month), int(day))
        if hour is not None:
            time(int(hour), int(minute), int(second))
    except ValueError as exc:
        raise ValueError(f"bad timestamp '{text}': {exc}") from None
    normalised = f"{year}-{month}-{day}"
    if hour is not None:
        normalised += f" {hour}:{minute}:{second}"
        normalised += f".{fraction}" if fraction else ""
        normalised += "Z" if zulu else ""
    return normalised


def _clause(version: int | None, timestamp: str | None) -> str:
    if version is not None:
        return f" VERSION AS OF {version}"
    if timestamp is not None:
        # Validated by _normalise_timestamp: digits, '-', ':', '.', ' ', 'Z' only, so the
        # literal needs no escaping.
        return f" TIMESTAMP AS OF '{timestamp}'"
    return ""


def _spec_at(sql: str, start: int) -> tuple[str, int]:
    """The text after '@' that belongs to the reference, and where it ends."""
    token = _SPEC_TOKEN.match(sql, start)
    end = token.end() if token else start
    if _DATE_ONLY.match(sql[start:end]):
        more = _SPACE_TIME.match(sql, end)
        if more:
            end = more.end()
    return sql[start:end], end


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _end_of_word(sql: str, start: int) -> int:
    i = start
    while i < len(sql) and _is_word(sql[i]):
        i += 1
    return i


def _line(sql: str, pos: int) -> int:
    return sql.count("\n", 0, pos) + 1


def _end_of_string(sql: str, start: int, raw: bool) -> int:
    # Backslash escapes the next character except in raw literals (r'...'); an
    # unterminated literal runs to the end, as Spark's lexer would see it.
    quote, i, n = sql[start], start + 1, len(sql)
    while i < n:
        c = sql[i]
        if c == "\\" and not raw:
            i += 2
        elif c == quote:
            return i + 1
        else:
            i += 1
    return n


def _end_of_block_comment(sql: str, start: int) -> int:
    # Spark's bracketed comments nest: /* a /* b */ c */ is one comment.
    depth, i, n = 1, start + 2, len(sql)
    while i < n:
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


def _end_of_backquoted(sql: str, start: int) -> int:
    i, n = start + 1, len(sql)
    while i < n:
        if sql[i] == "`":
            if sql.startswith("``", i):
                i += 2
                continue
            return i + 1
        i += 1
    return n
