"""The pure parts of publishing (no JVM): the plain-Python checksum, the plan's JSON
round trip, the config hash and ids."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lakeforge.training.checksum import _java_hex, checksum, render, row_text
from lakeforge.training.plan import PinnedInput, TrainingPlan, config_hash, split_ranges
from lakeforge.training.publish import set_id
from lakeforge.training.spec import TrainingSetSpec

SPEC: dict[str, Any] = {
    "name": "late",
    "labels": {
        "table": "silver.orders",
        "keys": ["customer_id"],
        "event_time": "order_ts",
        "columns": ["is_late"],
    },
    "features": [
        {"table": "gold.cv@3", "keys": ["customer_id"], "event_time": "t", "features": ["n"]}
    ],
    "splits": {"salt": "s", "fractions": {"train": 0.8, "test": 0.2}},
}


def test_java_hex_matches_double_to_hex_string() -> None:
    # Expected values printed by Spark 4.2 on Java 17: format_string('%a', x).
    cases = [
        (0.1, "0x1.999999999999ap-4"),
        (1.0, "0x1.0p0"),
        (-0.0, "-0x0.0p0"),
        (0.0, "0x0.0p0"),
        (1e10, "0x1.2a05f2p33"),
        (5e-324, "0x0.0000000000001p-1022"),
        (1e-310, "0x0.012688b70e62bp-1022"),
        (1e23, "0x1.52d02c7e14af6p76"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
    ]
    for value, text in cases:
        assert _java_hex(value) == text


def test_render_by_type() -> None:
    assert render(True, "boolean") == "true"
    assert render(-12, "bigint") == "-12"
    assert render(Decimal("10.5"), "decimal(10,2)") == "10.50"
    assert render(date(2026, 1, 2), "date") == "2026-01-02"
    assert render(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), "timestamp") == "1000000"
    assert render(datetime(2026, 1, 1, 1, 2, 3, 500000), "timestamp_ntz") == (
        "2026-01-01T01:02:03.500000"
    )
    assert render(b"\x00\xff", "binary") == "00ff"
    # Length prefixes keep separators inside values from colliding; null is bare NUL.
    assert row_text(["a\x1fb", "c"], ["string", "string"]) != row_text(
        ["a", "b\x1fc"], ["string", "string"]
    )
    assert row_text([None, ""], ["string", "string"]) == "\x00\x1f0:"


ROWS = st.lists(
    st.tuples(st.integers(-(2**63), 2**63 - 1), st.one_of(st.none(), st.text(max_size=5))),
    max_size=30,
)


@given(ROWS, st.randoms())
def test_checksum_is_order_independent(rows: list[tuple[Any, ...]], rnd: random.Random) -> None:
    types = ["bigint", "string"]
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    assert checksum(shuffled, types) == checksum(rows, types)


@given(ROWS.filter(bool), st.data())
def test_checksum_changes_with_any_value_and_counts_duplicates(
    rows: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    types = ["bigint", "string"]
    i = data.draw(st.integers(0, len(rows) - 1))
    k, s = rows[i]
    changed = [*rows[:i], (k ^ 1, s), *rows[i + 1 :]]
    assert checksum(changed, types) != checksum(rows, types)
    assert checksum([*rows, rows[i]], types) != checksum(rows, types)
    assert len(checksum(rows, types)) == 16


def test_plan_round_trips_through_json() -> None:
    spec = TrainingSetSpec.model_validate(SPEC)
    plan = TrainingPlan(
        name="late",
        spec=spec.model_dump(mode="json"),
        config_hash=config_hash(spec),
        labels=PinnedInput("labels", "silver.orders", 4, "2026-11-22T08:00:00.000000Z"),
        features=(PinnedInput("features[0]", "gold.cv", 3, "2026-11-21T08:00:00.000000Z"),),
        split_ranges=split_ranges(spec),
        buckets=10_000,
    )
    back = TrainingPlan.from_dict(json.loads(json.dumps(plan.to_dict(), sort_keys=True)))
    assert back == plan
    assert back.ranges().ranges == {"train": (0, 8000), "test": (8000, 10_000)}
    assert back.typed_spec() == spec
    assert all(i.version != "latest" for i in back.inputs)


def test_config_hash_sees_settings_and_split_order_not_key_order() -> None:
    base = config_hash(TrainingSetSpec.model_validate(SPEC))
    reordered = dict(reversed(list(SPEC.items())))
    assert config_hash(TrainingSetSpec.model_validate(reordered)) == base
    other_salt = json.loads(json.dumps(SPEC))
    other_salt["splits"]["salt"] = "t"
    assert config_hash(TrainingSetSpec.model_validate(other_salt)) != base
    # The same fractions in another order give other ranges, hence another hash.
    swapped = json.loads(json.dumps(SPEC))
    swapped["splits"]["fractions"] = {"test": 0.2, "train": 0.8}
    assert config_hash(TrainingSetSpec.model_validate(swapped)) != base


def test_set_id_is_name_and_table_version() -> None:
    assert set_id("late_delivery", 3) == "late_delivery-v3"
