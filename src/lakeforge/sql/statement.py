"""A ``lakeforge sql`` query, read for the fast engine: read-only, its tables, its dialect.

The query is written in Spark SQL (with lakeforge's ``table@3`` / ``table@2026-11-01``
references). :func:`prepare` parses it with sqlglot's Spark dialect, and returns it as
DataFusion SQL over one registered name per table reference, or says why the fast engine
must not answer it (:class:`NotFast`: then Spark does, as before).

Safety over reach. Two SQL engines differ in more than syntax: ``to_char`` formats,
rounding, integer overflow, what ``1/0`` gives. A query whose meaning could differ must
not get a quick wrong answer, so the fast engine takes only the constructs in
:data:`_FAST_NODES`, each of which ``tests/integration/test_sql_engines.py`` runs on both
engines and compares (aggregates, joins, set operations, CASE, casts, dates, timestamps,
decimals, nulls, ordering, window ranking, time travel). Anything else, a function
outside the list included, goes to Spark.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from lakeforge.config.table_refs import VersionedRef, rewrite_sql
from lakeforge.errors import Code, SqlError, TimeTravelError


class NotFast(Exception):
    """The fast engine does not answer this query; ``reason`` says why (Spark does)."""

    def __init__(self, reason: str, code: str = Code.SQL_NOT_FAST) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class TableUse:
    """One table reference of the query and the name it is registered under."""

    ref: VersionedRef
    registered: str


@dataclass(frozen=True)
class FastStatement:
    sql: str  # DataFusion SQL over the registered names
    tables: tuple[TableUse, ...]


# Expression nodes whose meaning is the same on Spark and on DataFusion (with sqlglot's
# Postgres output, which DataFusion reads) for lakeforge's column types: the rest of
# sqlglot's ~900 node types go to Spark. Left out on purpose: `/` (Spark divides integers
# as doubles, decimals with its own result scale, and a zero divisor is an error under
# ANSI mode), CONCAT and || (NULL in Spark, ignored by DataFusion), ROUND (rounding
# modes), casts to STRING (how a double or a time is spelled).
_FAST_NODES: tuple[type[exp.Expr], ...] = (
    # structure
    exp.Select, exp.From, exp.Join, exp.Where, exp.Group, exp.Having, exp.Order,
    exp.Ordered, exp.Limit, exp.Offset, exp.Distinct, exp.Subquery, exp.With, exp.CTE,
    exp.Union, exp.Intersect, exp.Except, exp.Table, exp.TableAlias, exp.Alias,
    exp.Column, exp.Identifier, exp.Star, exp.Paren, exp.Tuple, exp.Var,
    # values and logic
    exp.Literal, exp.Null, exp.Boolean, exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ,
    exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In, exp.Between, exp.Like,
    exp.Case, exp.If, exp.Coalesce, exp.Cast, exp.DataType, exp.DataTypeParam,
    exp.Add, exp.Sub, exp.Mul, exp.Neg, exp.Abs, exp.Lower, exp.Upper, exp.Length,
    exp.Trim, exp.Exists,
    # aggregates and ranking
    exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Window, exp.RowNumber,
    exp.WindowSpec,
    # dates
    exp.Year, exp.Month, exp.Day, exp.Extract, exp.TsOrDsToDate,
)  # fmt: skip
# Types a CAST may name on the fast path (Spark's meaning = DataFusion's). Not STRING: each
# engine spells a double, a decimal or a time as text its own way.
_FAST_TYPES = {
    exp.DataType.Type.BIGINT, exp.DataType.Type.INT, exp.DataType.Type.SMALLINT,
    exp.DataType.Type.DOUBLE, exp.DataType.Type.DECIMAL, exp.DataType.Type.DATE,
    exp.DataType.Type.BOOLEAN, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ,
    exp.DataType.Type.TIMESTAMPNTZ,
}  # fmt: skip
# Nodes that write or change the catalog or session: refused on the read-only engine.
_WRITES = (
    exp.Insert, exp.Delete, exp.Update, exp.Merge, exp.Create, exp.Drop, exp.Alter,
    exp.TruncateTable, exp.Command, exp.Set, exp.Cache, exp.Uncache, exp.LoadData,
    exp.Use, exp.Refresh, exp.Analyze,
)  # fmt: skip


def prepare(query: str) -> FastStatement:
    """The query as DataFusion SQL over registered table names.

    Raises:
        SqlError: ``LF-SQL-004`` it does not parse (line and column named);
            ``LF-TT-002`` a malformed ``@`` reference.
        NotFast: ``LF-SQL-003`` it writes or changes something; ``LF-SQL-005`` anything
            else the fast engine does not take (the reason named).
    """
    try:
        spark_sql = rewrite_sql(query)
    except ValueError as exc:
        raise TimeTravelError(Code.BAD_TABLE_REF, str(exc)) from None
    try:
        trees = [t for t in sqlglot.parse(spark_sql, read="spark") if t is not None]
    except ParseError as exc:
        raise SqlError(Code.SQL_SYNTAX, _syntax(exc)) from None
    if len(trees) != 1:
        raise NotFast("the fast engine answers one statement", Code.SQL_READ_ONLY)
    tree = trees[0]
    if isinstance(tree, _WRITES) or any(tree.find_all(*_WRITES)):
        raise NotFast("the fast engine is read-only (SELECT and WITH)", Code.SQL_READ_ONLY)
    if not isinstance(tree, exp.Query):
        raise NotFast(f"{tree.key.upper()} is not a query", Code.SQL_READ_ONLY)
    tables = _register_tables(tree)  # time travel becomes a registered name here
    if not tables:
        raise NotFast("the query reads no lakeforge table")
    _decimal_literals(tree)
    for node in tree.walk():
        if not isinstance(node, _FAST_NODES):
            raise NotFast(f"{_name(node)} is not on the fast engine's list")
        if isinstance(node, exp.DataType) and node.this not in _FAST_TYPES:
            raise NotFast(f"CAST to {node.sql('spark')} is not on the fast engine's list")
    return FastStatement(tree.sql(dialect="postgres"), tables)


def _decimal_literals(tree: exp.Expr) -> None:
    """``1.5`` is DECIMAL(2,1) in Spark and a double in DataFusion: spell it as Spark
    reads it. (``1e10`` is a double in both and stays.)"""
    for literal in list(tree.find_all(exp.Literal)):
        text = str(literal.this)
        if literal.is_string or "." not in text or any(c in text for c in "eE"):
            continue
        whole, _, frac = text.lstrip("-+").partition(".")
        digits = len(whole.lstrip("0")) + len(frac)
        precision, scale = max(digits, len(frac), 1), len(frac)
        literal.replace(
            exp.cast(exp.Literal.string(text), exp.DataType.build(f"DECIMAL({precision}, {scale})"))
        )


def _register_tables(tree: exp.Expr) -> tuple[TableUse, ...]:
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    uses: dict[VersionedRef, TableUse] = {}
    for table in list(tree.find_all(exp.Table)):
        if not table.db and table.name.lower() in ctes:
            continue
        if not table.db or table.catalog:
            raise NotFast(f"table {table.sql('spark')} is not schema.table")
        ref = _ref(table)
        use = uses.get(ref)
        if use is None:
            use = TableUse(ref, _registered_name(ref))
            uses[ref] = use
        # Keep the name a column may be qualified with (orders.amount) as the alias.
        alias = table.alias or table.name
        table.replace(exp.Table(this=exp.to_identifier(use.registered), alias=alias))
    return tuple(uses.values())


def _ref(table: exp.Table) -> VersionedRef:
    name = f"{table.db}.{table.name}".lower()
    try:
        VersionedRef(name)  # plain identifiers only: a name becomes a path under the warehouse
    except ValueError:
        raise NotFast(f"table name {table.sql('spark')} is not plain schema.table") from None
    version = table.args.get("version")
    if version is None:
        return VersionedRef(name)
    value = version.expression
    if not isinstance(value, exp.Literal):
        raise NotFast(f"time travel to {value.sql('spark')} (not a literal)")
    try:
        if str(version.this).upper() == "VERSION":
            return VersionedRef(name, version=int(value.this))
        return VersionedRef(name, timestamp=str(value.this))
    except ValueError as exc:
        raise TimeTravelError(Code.BAD_TABLE_REF, str(exc)) from None


def _registered_name(ref: VersionedRef) -> str:
    base = ref.name.replace(".", "__")
    if ref.version is not None:
        return f"{base}__v{ref.version}"
    if ref.timestamp is not None:
        return f"{base}__t{hashlib.sha256(ref.timestamp.encode()).hexdigest()[:8]}"
    return base


def _name(node: exp.Expr) -> str:
    if isinstance(node, exp.Func):
        return f"function {node.sql_name()}"
    if isinstance(node, exp.Anonymous):
        return f"function {node.name}"
    return node.key.upper()


def _syntax(exc: ParseError) -> str:
    first = exc.errors[0] if exc.errors else {}
    line, col = first.get("line"), first.get("col")
    what = first.get("description") or str(exc).splitlines()[0]
    where = f" at line {line}, column {col}" if line else ""
    return f"SQL syntax error{where}: {what}"
