"""Find the tables a SQL text reads, without a SQL parser or a JVM.

Lakeforge tables live in the schemas ``bronze``, ``silver`` and ``gold`` (plus the system
schema ``lakeforge``), so a qualified name ``layer.table`` in the query is a dependency.
Comments and string literals are blanked first (newlines kept, so lines still count)
so that ``'gold.x'`` in a literal or ``-- silver.y`` in a comment is not a dependency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STRIP = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"", re.DOTALL)
_QUALIFIED = re.compile(
    r"(?<![\w.`])`?(bronze|silver|gold|lakeforge)`?\s*\.\s*`?([A-Za-z_][A-Za-z0-9_]*)`?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class TableRef:
    """A table named in SQL, and the 0-based line offset inside the SQL text."""

    name: str
    line_offset: int


def _blank(m: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", m.group(0))


def sql_table_refs(sql: str) -> list[TableRef]:
    """Qualified lakeforge table names referenced by ``sql``, first occurrence each, in order."""
    text = _STRIP.sub(_blank, sql)
    seen: dict[str, TableRef] = {}
    for m in _QUALIFIED.finditer(text):
        name = f"{m.group(1).lower()}.{m.group(2).lower()}"
        if name not in seen:
            seen[name] = TableRef(name, text.count("\n", 0, m.start()))
    return list(seen.values())
