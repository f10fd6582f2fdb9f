"""Config rules for the medallion features: write modes, keys, sequence, pins, python gold."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeforge.errors import Code, ConfigError
from lakeforge.plan.builder import build_plan
from lakeforge.plan.load import load_pipeline
from tests.helpers import MINIMAL_PIPELINE, make_project


def codes_and_messages(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_pipeline(make_project(tmp_path, text))
    return [(i.code, i.message) for i in info.value.issues]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("keys: [order_id]", "mode: merge", "mode merge needs keys"),
        ("keys: [order_id]", "keys: [order_id]\n    mode: scd2", "needs sequence_by"),
        ("keys: [order_id]", "keys: [order_id]\n    sequence_by: amountt", "sequence_by 'amountt'"),
        (
            "keys: [order_id]",
            "keys: [order_id]\n    delete_when: op = 'D'",
            "delete_when applies to mode merge",
        ),
        (
            "keys: [order_id]",
            "keys: [order_id]\n    sequence_by: order_date\n    mode: scd2\n    scd2: {track: [nope]}",
            "scd2.track columns ['nope']",
        ),
        ("    sql: |", "    python: mod:func\n    sql: |", "exactly one of"),
    ],
)
def test_mode_rules(tmp_path: Path, old: str, new: str, message: str) -> None:
    found = codes_and_messages(tmp_path, MINIMAL_PIPELINE.replace(old, new))
    assert [c for c, _ in found] == [Code.BAD_VALUE]
    assert message in found[0][1]


def test_python_gold_needs_inputs_and_plans_them(tmp_path: Path) -> None:
    base = MINIMAL_PIPELINE.split("gold:")[0]
    found = codes_and_messages(tmp_path / "a", base + "gold:\n  x:\n    python: pkg.mod:build\n")
    assert found[0][0] == Code.BAD_VALUE and "depends_on" in found[0][1]
    path = make_project(
        tmp_path / "b",
        base + "gold:\n  x:\n    python: pkg.mod:build\n    depends_on: [silver.orders]\n",
    )
    plan = build_plan(load_pipeline(path))
    step = plan.writes("gold.x")
    assert step.reads == ("silver.orders",) and plan.tables[-1] == "gold.x"


def test_pinned_source_versions(tmp_path: Path) -> None:
    path = make_project(
        tmp_path, MINIMAL_PIPELINE.replace("from: bronze.orders", "from: bronze.orders@3")
    )
    step = build_plan(load_pipeline(path)).writes("silver.orders")
    assert step.reads == ("bronze.orders@3",)
    assert step.upstream == ("bronze.orders",)
    bad = MINIMAL_PIPELINE.replace("from: bronze.orders", "from: bronze.orders@-1")
    found = codes_and_messages(tmp_path / "bad", bad)
    assert found[0][0] == Code.BAD_VALUE


def test_bronze_options(tmp_path: Path) -> None:
    text = MINIMAL_PIPELINE.replace(
        "      format: csv\n",
        '      format: avro\n      schema: {order_id: bigint, amount: "decimal(10,2)"}\n',
    ).replace(
        "    source:\n",
        "    on_changed_file: reingest\n    schema_evolution: add_columns\n    source:\n",
    )
    loaded = load_pipeline(make_project(tmp_path, text))
    bronze = loaded.pipeline.bronze["orders"]
    assert bronze.source.format == "avro" and bronze.source.schema_ == {
        "order_id": "bigint",
        "amount": "decimal(10,2)",
    }
    assert (bronze.on_changed_file, bronze.schema_evolution) == ("reingest", "add_columns")
    found = codes_and_messages(
        tmp_path / "x", text.replace("on_changed_file: reingest", "on_changed_file: ignore")
    )
    assert found[0][0] == Code.BAD_VALUE
