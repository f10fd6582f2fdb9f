"""Gold SQL is one read-only query: checked here without a JVM, again at run time by Spark.

``spark.sql`` executes commands eagerly, so a gold ``sql: DELETE FROM bronze.t`` would
delete rows while the step was still "building" its DataFrame. :func:`query_problem` parses
the text with sqlglot (Spark dialect) and accepts exactly one statement that is a query:
SELECT, ``FROM t SELECT``, WITH ... SELECT, a set operation (UNION / INTERSECT / EXCEPT)
or VALUES. Lakeforge's ``table@3`` / ``table@2026-11-01`` references are rewritten to
Delta's ``VERSION AS OF`` / ``TIMESTAMP AS OF`` first (pure Python), which sqlglot reads.

sqlglot does not know every corner of Spark's grammar (``TABLE t``, new pipe syntax, ...).
A query it cannot parse must not be rejected at validate time, so a parse failure falls
back to a token-level check that rejects only what is clearly not a query (a statement
that starts with another keyword, several statements, a DML keyword at the top level);
anything else passes here and is decided at run time by Spark's own parser
(``steps.transform``), which sees exactly what would be executed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

from lakeforge.config.table_refs import rewrite_sql

QUERY_HINT = "gold SQL must be one read-only query: SELECT, WITH ... SELECT, UNION/INTERSECT/EXCEPT or VALUES"

_QUERY_NODES = (exp.Select, exp.SetOperation, exp.Values)
# Nodes that write, change the catalog or the session, wherever they sit in the tree.
_NOT_READ_ONLY = (
    exp.Insert,
    exp.Delete,
    exp.Update,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Command,
    exp.Set,
    exp.Cache,
    exp.Uncache,
    exp.LoadData,
    exp.Use,
    exp.Refresh,
    exp.Describe,
    exp.Analyze,
)
# Keywords a query may start with (after opening parentheses) in the fallback check.
_QUERY_START = {TokenType.SELECT, TokenType.WITH, TokenType.VALUES, TokenType.FROM, TokenType.TABLE}
# Keywords that cannot appear at parenthesis depth 0 of a query.
_DML = {
    TokenType.INSERT,
    TokenType.DELETE,
    TokenType.UPDATE,
    TokenType.MERGE,
    TokenType.DROP,
    TokenType.CREATE,
    TokenType.ALTER,
    TokenType.TRUNCATE,
}


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    # sqlglot logs "falling back to parsing as a Command" warnings; the verdict says it all.
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _kind(node: exp.Expr) -> str:
    """A statement's kind for messages (never the SQL text itself)."""
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()


def _statements(tokens: list[Token]) -> list[list[Token]]:
    """Tokens split into statements at semicolons outside parentheses (empty ones dropped)."""
    out: list[list[Token]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth = max(0, depth - 1)
        if tok.token_type == TokenType.SEMICOLON and depth == 0:
            out.append([])
        else:
            out[-1].append(tok)
    return [s for s in out if s]


def _fallback(sql: str) -> str | None:
    """Token-level verdict for SQL that sqlglot cannot parse: reject only clear non-queries."""
    try:
        tokens = sqlglot.tokenize(sql, read="spark")
    except SqlglotError:
        return None  # cannot even tokenize: Spark's parser decides at run time
    statements = _statements(tokens)
    if len(statements) > 1:
        return f"{len(statements)} statements; give exactly one query"
    if not statements:
        return "no SQL statement"
    body = statements[0]
    first = next((t for t in body if t.token_type != TokenType.L_PAREN), body[0])
    if first.token_type not in _QUERY_START:
        return f"{first.text.upper()} statement, not a query"
    depth = 0
    for tok in body:
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and tok.token_type in _DML:
            return f"contains {tok.text.upper()}, not only a query"
    return None


def query_problem(sql: str) -> str | None:
    """Why ``sql`` is not one read-only query, or None when it is.

    Args:
        sql: gold SQL as written, ``table@version`` references allowed.

    Returns:
        None for one query; otherwise a short reason naming the statement kind (never
        echoing the SQL).

    Raises:
        ValueError: a malformed ``table@...`` reference (from :func:`rewrite_sql`).
    """
    text = rewrite_sql(sql)
    with _quiet_sqlglot():
        try:
            parsed = sqlglot.parse(text, read="spark")
        except SqlglotError:
            return _fallback(text)
    # A comment after the last semicolon comes back as an empty Semicolon statement.
    statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    if not statements:
        return "no SQL statement"
    if len(statements) > 1:
        kinds = ", ".join(_kind(s) for s in statements)
        return f"{len(statements)} statements ({kinds}); give exactly one query"
    stmt = statements[0]
    node = stmt
    while isinstance(node, exp.Subquery):  # (SELECT ...)
        node = node.this
    if isinstance(node, _NOT_READ_ONLY):
        return f"{_kind(stmt)} statement, not a query"
    if not isinstance(node, _QUERY_NODES):
        # sqlglot read it as something odd (``TABLE t`` comes back as an alias): the
        # tokens decide, so a valid Spark query is not rejected for sqlglot's sake.
        return _fallback(text)
    bad = stmt.find(*_NOT_READ_ONLY)
    if bad is not None:
        return f"contains {_kind(bad)}, not only a query"
    if any(s.args.get("into") for s in stmt.find_all(exp.Select)):
        return "SELECT ... INTO writes a table, not only a query"
    return None


def strip_trailing_semicolons(sql: str) -> str:
    """``sql`` without the semicolons (and comments) after its last real token.

    Spark's query-only parser rejects ``SELECT 1;`` although ``spark.sql`` runs it; the run
    time check strips what follows the statement first. Text that cannot be tokenized is
    returned as given.
    """
    try:
        tokens = sqlglot.tokenize(sql, read="spark")
    except SqlglotError:
        return sql
    while tokens and tokens[-1].token_type == TokenType.SEMICOLON:
        tokens.pop()
    return sql[: tokens[-1].end + 1] if tokens else sql
