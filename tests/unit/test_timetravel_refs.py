"""``table@version`` references: parsing, Delta SQL rendering and rewriting SQL text (no JVM)."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakeforge.config.table_refs import VersionedRef, parse_table_ref, rewrite_sql

# --- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("silver.orders", VersionedRef("silver.orders")),
        ("  Silver.Orders  ", VersionedRef("silver.orders")),
        ("silver.orders@3", VersionedRef("silver.orders", version=3)),
        ("silver.orders@v3", VersionedRef("silver.orders", version=3)),
        ("silver.orders@V0", VersionedRef("silver.orders", version=0)),
        ("silver.orders@007", VersionedRef("silver.orders", version=7)),
        ("`gold`.`Daily_Revenue`@12", VersionedRef("gold.daily_revenue", version=12)),
        ("raw_2.t_1@1", VersionedRef("raw_2.t_1", version=1)),
        ("silver.orders@2026-11-01", VersionedRef("silver.orders", timestamp="2026-11-01")),
        (
            "silver.orders@2026-11-01T10:00:00",
            VersionedRef("silver.orders", timestamp="2026-11-01 10:00:00"),
        ),
        (
            "silver.orders@2026-11-01 10:00:00",
            VersionedRef("silver.orders", timestamp="2026-11-01 10:00:00"),
        ),
        (
            "silver.orders@2026-11-01T10:00:00.123456Z",
            VersionedRef("silver.orders", timestamp="2026-11-01 10:00:00.123456Z"),
        ),
        (
            "silver.orders@2024-02-29T23:59:59Z",
            VersionedRef("silver.orders", timestamp="2024-02-29 23:59:59Z"),
        ),
    ],
)
def test_parse_good(text: str, expected: VersionedRef) -> None:
    assert parse_table_ref(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("orders", "not qualified"),
        ("orders@3", "not qualified"),
        ("@3", "missing table name"),
        ("a.b.c", "not schema.table"),
        ("silver.", "not schema.table"),
        ("silver.orders table", "not schema.table"),
        ("silver.1orders", "not schema.table"),
        ("silver.orders@", "nothing after '@'"),
        ("silver.orders@-1", ">= 0"),
        ("silver.orders@v-2", "not a version"),
        ("silver.orders@3.5", "not a version"),
        ("silver.orders@latest", "not a version"),
        ("silver.orders@3@4", "not a version"),
        ("silver.orders@2026-02-30", "day is out of range"),
        ("silver.orders@2026-13-01", "month must be in 1..12"),
        ("silver.orders@2026-11-01T24:00:00", "hour must be in 0..23"),
        ("silver.orders@2026-11-01T10:00", "bad timestamp"),
        ("silver.orders@2026-11-01Z", "bad timestamp"),
        ("silver.orders@2026-11-01T10:00:00+01:00", "bad timestamp"),
        ("silver.orders@2026-11-01T10:00:00.1234567", "bad timestamp"),
        ("silver.orders@26-11-01", "not a version"),
    ],
)
def test_parse_bad(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_table_ref(text)


def test_versioned_ref_renders_delta_sql() -> None:
    assert VersionedRef("silver.orders").sql() == "silver.orders"
    assert VersionedRef("silver.orders", version=3).sql() == "silver.orders VERSION AS OF 3"
    assert (
        VersionedRef("silver.orders", timestamp="2026-11-01T10:00:00").sql()
        == "silver.orders TIMESTAMP AS OF '2026-11-01 10:00:00'"
    )
    assert str(VersionedRef("silver.orders", timestamp="2026-11-01 10:00:00Z")) == (
        "silver.orders@2026-11-01T10:00:00Z"
    )
    assert str(VersionedRef("silver.orders", version=0)) == "silver.orders@0"
    assert VersionedRef("silver.orders").is_latest
    assert not VersionedRef("silver.orders", version=0).is_latest


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "silver.orders", "version": 1, "timestamp": "2026-11-01"},
        {"name": "silver.orders", "version": -1},
        {"name": "silver.orders", "version": True},
        {"name": "silver.orders", "timestamp": "2026-11-01'; DROP TABLE x; --"},
        {"name": "orders"},
        {"name": "silver.orders; DROP TABLE x"},
    ],
)
def test_versioned_ref_rejects_what_it_cannot_render_safely(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        VersionedRef(**kwargs)  # type: ignore[arg-type]


# --- rewriting SQL -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM silver.orders@3", "SELECT * FROM silver.orders VERSION AS OF 3"),
        ("SELECT * FROM silver.orders@v3;", "SELECT * FROM silver.orders VERSION AS OF 3;"),
        (
            "SELECT * FROM Silver.Orders@2026-11-01 o",
            "SELECT * FROM Silver.Orders TIMESTAMP AS OF '2026-11-01' o",
        ),
        (
            "SELECT * FROM silver.orders@2026-11-01T10:00:00Z WHERE x = 1",
            "SELECT * FROM silver.orders TIMESTAMP AS OF '2026-11-01 10:00:00Z' WHERE x = 1",
        ),
        (
            "SELECT * FROM silver.orders@2026-11-01 10:00:00.5 AS o",
            "SELECT * FROM silver.orders TIMESTAMP AS OF '2026-11-01 10:00:00.5' AS o",
        ),
        # Any schema, not only the lakeforge layers; backquoted parts kept as written.
        (
            "SELECT * FROM sales_mart.orders@1 JOIN `gold`.`daily revenue`@v2 USING (d)",
            "SELECT * FROM sales_mart.orders VERSION AS OF 1 "
            "JOIN `gold`.`daily revenue` VERSION AS OF 2 USING (d)",
        ),
        (
            "SELECT a.x, b.x FROM silver.orders@1 a, silver.orders@2 b WHERE a.id=b.id",
            "SELECT a.x, b.x FROM silver.orders VERSION AS OF 1 a, "
            "silver.orders VERSION AS OF 2 b WHERE a.id=b.id",
        ),
        (
            "SELECT count(*) FROM (SELECT * FROM gold.y@0)",
            "SELECT count(*) FROM (SELECT * FROM gold.y VERSION AS OF 0)",
        ),
        ("SELECT * FROM silver.orders", "SELECT * FROM silver.orders"),
    ],
)
def test_rewrite(sql: str, expected: str) -> None:
    assert rewrite_sql(sql) == expected


def test_rewrite_leaves_literals_comments_and_quoted_names_alone() -> None:
    sql = (
        "SELECT 'silver.orders@3' AS a, \"gold.x@1\" AS b, 'it''s silver.o@2' AS c,\n"
        "       'esc \\' silver.o@4' AS d, r'C:\\' AS e, `weird@name` -- silver.orders@5\n"
        "FROM /* silver.orders@6 /* nested gold.x@7 */ still comment silver.o@8 */\n"
        "     silver.orders@9 /*+ BROADCAST(silver.o@10) */"
    )
    out = rewrite_sql(sql)
    # Only the one reference in code changed; everything around it is byte-for-byte equal.
    assert out == sql.replace("silver.orders@9", "silver.orders VERSION AS OF 9")


def test_rewrite_handles_unterminated_literals_and_comments() -> None:
    for sql in ("SELECT 'silver.o@1", "SELECT 1 /* silver.o@1", "SELECT `silver.o@1", "-- x@"):
        assert rewrite_sql(sql) == sql


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM orders@3", "does not follow a schema.table"),
        ("SELECT * FROM cat.silver.orders@3", "does not follow a schema.table"),
        ("SELECT a @ b", "does not follow a schema.table"),
        ("SELECT 1\nFROM silver.orders@x", "bad table reference 'silver.orders@x' at line 2"),
        ("SELECT * FROM silver.orders@-1", "version must be >= 0"),
        ("SELECT * FROM silver.orders@2026-02-30", "day is out of range"),
        ("SELECT * FROM silver.orders@ WHERE 1", "nothing after '@'"),
    ],
)
def test_rewrite_rejects_stray_or_bad_references(sql: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        rewrite_sql(sql)


def test_refs_module_imports_no_spark() -> None:
    """Config code imports refs: it must not pull in pyspark (and with it the JVM side)."""
    code = (
        "import sys\n"
        "import lakeforge.config.table_refs\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j', 'delta')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --- properties --------------------------------------------------------------------------

identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)
names = st.builds(lambda s, t: f"{s}.{t}", identifiers, identifiers)
timestamps = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.builds(
        lambda dt, frac, zulu: dt.strftime("%Y-%m-%d %H:%M:%S") + frac + zulu,
        st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)),
        st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,6}", fullmatch=True)),
        st.sampled_from(["", "Z"]),
    ),
)
refs = st.one_of(
    st.builds(VersionedRef, names),
    st.builds(VersionedRef, names, version=st.integers(min_value=0, max_value=10**12)),
    st.builds(VersionedRef, names, timestamp=timestamps),
)


@given(st.text().filter(lambda s: "@" not in s))
def test_rewrite_is_identity_without_at_sign(sql: str) -> None:
    assert rewrite_sql(sql) == sql


@given(st.text(alphabet=st.characters(blacklist_characters="'\\\n")), st.sampled_from(["'", "--"]))
def test_rewrite_is_identity_when_at_signs_are_only_in_literals_or_comments(
    body: str, kind: str
) -> None:
    wrapped = f"SELECT '{body}@'" if kind == "'" else f"SELECT 1 -- {body}@"
    assert rewrite_sql(wrapped) == wrapped


@given(refs)
def test_parse_and_format_round_trip(ref: VersionedRef) -> None:
    text = str(ref)
    assert parse_table_ref(text) == ref
    # Names are case-insensitive: an upper-case spelling parses to the same reference.
    assert parse_table_ref(ref.name.upper() + text[len(ref.name) :]) == ref


@given(refs, refs)
def test_rewrite_matches_delta_sql_of_each_reference(a: VersionedRef, b: VersionedRef) -> None:
    sql = f"SELECT * FROM {a} x JOIN {b} y ON x.id = y.id -- {a}"
    assert rewrite_sql(sql) == f"SELECT * FROM {a.sql()} x JOIN {b.sql()} y ON x.id = y.id -- {a}"
