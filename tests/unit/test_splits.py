"""Stable hash splits in plain Python (issue 6, point 4): one split per entity, no entity
moves when data grows, proportions at 100k entities, and canonical keys never collide."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakeforge.training.splits import (
    SplitRanges,
    assign,
    bucket_of,
    canonical_key,
)

RANGES = SplitRanges.from_fractions({"train": 0.8, "validation": 0.1, "test": 0.1})
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=12),
    st.dates(),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-1e6, max_value=1e6),
)
keys = st.lists(values, min_size=1, max_size=3).map(tuple)


def test_ranges_from_fractions_tile_the_buckets() -> None:
    assert RANGES.ranges == {"train": (0, 8000), "validation": (8000, 9000), "test": (9000, 10000)}
    with pytest.raises(ValueError, match="sum to 1"):
        SplitRanges.from_fractions({"train": 0.8, "test": 0.1})
    with pytest.raises(ValueError, match="without gaps"):
        SplitRanges({"train": (0, 5000), "test": (6000, 10000)})


def test_the_documented_formula() -> None:
    """The docstring's recipe, written out independently: what a consumer would code."""
    key = ("c-001", 42, None, date(2026, 11, 22), Decimal("10.50"), True)
    canonical = "5:c-001\x1f2:42\x1f\x00\x1f10:2026-11-22\x1f5:10.50\x1f4:true"
    assert canonical_key(key) == canonical
    digest = hashlib.sha256(("salt-1" + "\x1e" + canonical).encode()).hexdigest()
    assert bucket_of(key, "salt-1") == int(digest[:16], 16) % 10_000


@given(keys, st.text(max_size=8))
def test_an_entity_always_lands_in_one_split(key: tuple[object, ...], salt: str) -> None:
    first = assign(key, salt, RANGES)
    assert first in RANGES.ranges
    assert all(assign(key, salt, RANGES) == first for _ in range(3))


@settings(max_examples=50)
@given(st.sets(st.text(max_size=10), max_size=200), st.sets(st.text(max_size=10), max_size=200))
def test_adding_data_never_moves_an_entity(old: set[str], new: set[str]) -> None:
    before = {k: assign((k,), "s", RANGES) for k in old}
    after = {k: assign((k,), "s", RANGES) for k in old | new}
    assert all(after[k] == split for k, split in before.items())


def test_proportions_within_one_percent_at_100k_entities() -> None:
    counts = {name: 0 for name in RANGES.ranges}
    n = 100_000
    for i in range(n):
        counts[assign((f"customer-{i}",), "2026-q4", RANGES)] += 1
    assert abs(counts["train"] / n - 0.8) < 0.01
    assert abs(counts["validation"] / n - 0.1) < 0.01
    assert abs(counts["test"] / n - 0.1) < 0.01


def test_the_salt_changes_the_assignment() -> None:
    a = [assign((i,), "a", RANGES) for i in range(2000)]
    b = [assign((i,), "b", RANGES) for i in range(2000)]
    assert a != b


@given(keys, keys)
def test_different_keys_never_share_a_canonical_form(
    a: tuple[object, ...], b: tuple[object, ...]
) -> None:
    def typed(key: tuple[object, ...]) -> tuple[object, ...]:
        # Keys are typed columns: compare (type, value), as the columns would hold them.
        return tuple((type(v).__name__, str(v)) for v in key)

    if typed(a) != typed(b) and canonical_key(a) == canonical_key(b):
        # Same text is only acceptable for values a typed column cannot tell apart.
        assert [str(v) for v in a] == [str(v) for v in b]


def test_length_prefix_separates_ambiguous_joins() -> None:
    assert canonical_key(("a\x1fb", "c")) != canonical_key(("a", "b\x1fc"))
    assert canonical_key((None,)) != canonical_key(("\x00",))


def test_floats_and_timestamps_are_refused() -> None:
    from datetime import datetime

    with pytest.raises(TypeError):
        canonical_key((1.5,))
    with pytest.raises(TypeError):
        canonical_key((datetime(2026, 1, 1),))
