"""Expectations, config side (no JVM): the registry against Great Expectations 1.x, inline
items and suite files resolved into the loaded pipeline, errors located by file, line and
key, data environments, and `validate` staying free of pyspark and great_expectations."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from lakeforge.config.models import ExpectationItem, SilverTable
from lakeforge.errors import Code, ConfigError, ConfigIssue
from lakeforge.plan.load import LoadedPipeline, load_pipeline
from lakeforge.quality.registry import (
    IGNORED,
    KINDS,
    ROW_ACTIONS,
    TABLE_ACTIONS,
    check_kwargs,
    columns_of,
)
from lakeforge.quality.resolve import check_data_env
from lakeforge.quality.spec import Expectation, default_name
from tests.helpers import MINIMAL_PIPELINE, REPO, make_project

# Fields every Great Expectations expectation has, whatever it checks.
GX_GENERIC = {
    "id",
    "meta",
    "notes",
    "result_format",
    "description",
    "catch_exceptions",
    "rendered_content",
    "severity",
    "windows",
    "batch_id",
    "row_condition",
    "condition_parser",
}

# A valid kwargs set per type, for both lakeforge's check and Great Expectations' constructor.
EXAMPLES: dict[str, dict[str, Any]] = {
    "expect_column_values_to_be_between": {
        "column": "amount",
        "min_value": 0,
        "max_value": 100,
        "strict_min": True,
        "mostly": 0.95,
    },
    "expect_column_values_to_be_in_set": {"column": "status", "value_set": ["open", "closed"]},
    "expect_column_values_to_match_regex": {"column": "status", "regex": "^[a-z]+$"},
    "expect_column_value_lengths_to_equal": {"column": "status", "value": 4},
    "expect_column_pair_values_a_to_be_greater_than_b": {
        "column_A": "amount",
        "column_B": "order_id",
        "or_equal": True,
        "ignore_row_if": "either_value_is_missing",
    },
    "expect_table_row_count_to_equal": {"value": 10},
    "expect_table_row_count_to_be_between": {"min_value": 1, "max_value": None},
    "expect_compound_columns_to_be_unique": {"column_list": ["order_id", "order_date"]},
    "expect_column_quantile_values_to_be_between": {
        "column": "amount",
        "quantile_ranges": {"quantiles": [0.5, 0.9], "value_ranges": [[0, 10], [None, 100]]},
    },
    "expect_table_columns_to_match_set": {
        "column_set": ["order_id", "amount"],
        "exact_match": False,
    },
    "expect_column_values_to_be_of_type": {"column": "amount", "type_": "DecimalType"},
    "expect_column_distinct_values_to_equal_set": {"column": "status", "value_set": ["open"]},
}

COLUMNS_END = "      order_date: date\n"


def pipeline_with(expectations: str) -> str:
    """MINIMAL_PIPELINE plus a ``status`` column and ``expectations`` (list items, written
    from column 0) under ``silver.orders``."""
    items = textwrap.indent(textwrap.dedent(expectations).strip("\n") + "\n", "      ")
    block = "      status: string\n    expectations:\n" + items
    assert COLUMNS_END in MINIMAL_PIPELINE
    return MINIMAL_PIPELINE.replace(COLUMNS_END, COLUMNS_END + block)


def errors_of(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    return info.value


def lines_with(path: Path, needle: str) -> list[int]:
    return [n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line]


def line_of(path: Path, needle: str) -> int:
    found = lines_with(path, needle)
    assert len(found) == 1, f"{needle!r} is on lines {found} of {path}"
    return found[0]


def same_file(issue: ConfigIssue, path: Path) -> bool:
    return Path(issue.file).resolve() == path.resolve()


def gx_class(type_: str) -> Any:
    import great_expectations.expectations as gxe

    name = "".join(part.capitalize() for part in type_.split("_"))
    cls = getattr(gxe, name, None)
    assert cls is not None, f"great_expectations.expectations has no {name} (for {type_})"
    return cls


def write_gx_suite(path: Path, name: str, expectations: list[Any]) -> str:
    """A suite file exactly as Great Expectations serialises it."""
    from great_expectations.core import ExpectationSuite

    data = ExpectationSuite(name=name, expectations=expectations).to_json_dict()
    text = json.dumps(data, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def json_entry_line(path: Path, type_: str) -> int:
    """Line of the ``{`` that opens the (only) suite entry of ``type_``."""
    rows = path.read_text().splitlines()
    at = line_of(path, f'"type": "{type_}"')
    for n in range(at, 0, -1):
        if rows[n - 1].strip() == "{":
            return n
    raise AssertionError(f"no entry opening before line {at}")


# --- the registry against Great Expectations -------------------------------------------


@pytest.mark.parametrize("type_", sorted(KINDS))
def test_registry_agrees_with_great_expectations(type_: str) -> None:
    cls = gx_class(type_)
    assert cls.expectation_type == type_
    fields = cls.__fields__
    kind = KINDS[type_]
    not_in_gx = sorted(set(kind.kwargs) - set(fields))
    assert not not_in_gx, f"lakeforge allows kwargs Great Expectations lacks: {not_in_gx}"
    gx_required = {n for n, f in fields.items() if f.required and n not in GX_GENERIC}
    assert gx_required <= set(kind.required), (
        f"Great Expectations requires {sorted(gx_required - set(kind.required))}"
    )
    # The kwargs lakeforge accepts and ignores must be real ones too.
    assert set(IGNORED) <= set(fields)


def test_registry_levels_decide_actions() -> None:
    assert KINDS["expect_column_values_to_be_between"].actions == ROW_ACTIONS
    assert KINDS["expect_column_values_to_be_unique"].actions == TABLE_ACTIONS
    assert "drop" not in TABLE_ACTIONS and "quarantine" not in TABLE_ACTIONS
    for kind in KINDS.values():
        assert kind.type.startswith("expect_")
        assert set(kind.required).isdisjoint(kind.optional)


@pytest.mark.parametrize("type_", sorted(EXAMPLES))
def test_valid_example_passes_lakeforge_and_builds_in_great_expectations(type_: str) -> None:
    kwargs = EXAMPLES[type_]
    assert check_kwargs(type_, kwargs) == []
    exp = gx_class(type_)(**kwargs)
    config = exp.configuration.to_json_dict()
    assert config["type"] == type_
    # (Great Expectations leaves None-valued kwargs out of its configuration.)
    assert {k for k, v in kwargs.items() if v is not None} <= set(config["kwargs"])


@pytest.mark.parametrize("type_", sorted(EXAMPLES))
def test_dropping_a_required_kwarg_is_reported(type_: str) -> None:
    for key in KINDS[type_].required:
        kwargs = {k: v for k, v in EXAMPLES[type_].items() if k != key}
        messages = [p.message for p in check_kwargs(type_, kwargs)]
        assert f"{type_} needs kwarg '{key}'" in messages


def test_check_kwargs_problems() -> None:
    between = "expect_column_values_to_be_between"
    unknown = check_kwargs(between, {"column": "a", "min_value": 0, "mostli": 0.5})
    assert [p.key for p in unknown] == ["mostli"]
    assert "unknown kwarg 'mostli'" in unknown[0].message
    assert "mostly" in unknown[0].message  # the allowed ones are listed
    assert check_kwargs(between, {"column": "a", "min_value": 0, "result_format": "BASIC"}) == []
    row_condition = check_kwargs(between, {"column": "a", "min_value": 0, "row_condition": "x"})
    assert [p.key for p in row_condition] == ["row_condition"]
    assert "not supported" in row_condition[0].message
    no_bounds = check_kwargs(between, {"column": "a"})
    assert [p.key for p in no_bounds] == [None]
    assert "needs min_value or max_value" in no_bounds[0].message
    wrong = check_kwargs(between, {"column": "a", "min_value": True, "mostly": 2})
    assert sorted(str(p.key) for p in wrong) == ["min_value", "mostly"]
    bad_quantiles = check_kwargs(
        "expect_column_quantile_values_to_be_between",
        {"column": "a", "quantile_ranges": {"quantiles": [0.5], "value_ranges": []}},
    )
    assert [p.key for p in bad_quantiles] == ["quantile_ranges"]
    assert check_kwargs("expect_table_row_count_to_equal", {"value": -1})[0].key == "value"


def test_columns_of_names_the_columns_read() -> None:
    assert columns_of(
        "expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "a", "column_B": "b"}
    ) == [("column_A", "a"), ("column_B", "b")]
    assert columns_of("expect_compound_columns_to_be_unique", {"column_list": ["a", "b"]}) == [
        ("column_list", "a"),
        ("column_list", "b"),
    ]
    # A schema check names columns that may not exist: they are not "read".
    assert columns_of("expect_table_columns_to_match_set", {"column_set": ["zz"]}) == []
    assert columns_of("expect_table_row_count_to_be_between", {"min_value": 1}) == []


def test_default_names() -> None:
    assert (
        default_name("expect_column_values_to_be_between", {"column": "amount"})
        == "column_values_to_be_between:amount"
    )
    assert (
        default_name("expect_compound_columns_to_be_unique", {"column_list": ["a", "b"]})
        == "compound_columns_to_be_unique:a:b"
    )
    assert (
        default_name("expect_table_row_count_to_equal", {"value": 3}) == "table_row_count_to_equal"
    )


# --- the item model --------------------------------------------------------------------


def test_expectation_item_shapes() -> None:
    short = ExpectationItem.model_validate(
        {"expect_column_values_to_not_be_null": {"column": "id"}, "action": "drop"}
    )
    assert (short.type, short.kwargs, short.action) == (
        "expect_column_values_to_not_be_null",
        {"column": "id"},
        "drop",
    )
    long = ExpectationItem.model_validate(
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}
    )
    assert (long.type, long.kwargs, long.action) == (short.type, short.kwargs, None)
    no_kwargs = ExpectationItem.model_validate({"expect_table_row_count_to_be_between": None})
    assert no_kwargs.kwargs == {}
    suite = ExpectationItem.model_validate({"suite": "q.json", "environments": ["training"]})
    assert (suite.type, suite.suite, suite.environments) == (None, "q.json", ["training"])
    for bad, message in [
        ({"expect_a": {}, "expect_b": {}}, "one expectation per list item"),
        ({"expect_a": {}, "type": "expect_b"}, "not both"),
        ({"suite": "q.json", "name": "x"}, "a suite item takes only"),
        ({"action": "warn"}, "an expectation item is"),
        ({"expect_a": {}, "action": "explode"}, "action"),
        ({"expect_a": {}, "name": "not an identifier"}, "name"),
    ]:
        with pytest.raises(ValidationError, match=message):
            ExpectationItem.model_validate(bad)


def test_silver_table_expectations_default_empty() -> None:
    table = SilverTable.model_validate({"from": "bronze.x", "columns": {"a": "int"}})
    assert table.expectations == []


# --- inline expectations ---------------------------------------------------------------


def test_inline_expectations_load(tmp_path: Path) -> None:
    path = make_project(
        tmp_path,
        pipeline_with(
            """
            - expect_column_values_to_be_between: {column: amount, min_value: 0}
              action: quarantine
            - type: expect_column_values_to_be_in_set
              kwargs: {column: status, value_set: [open, closed]}
              name: known_status
              action: fail
            - expect_column_values_to_not_be_null:
                column: order_id
              environments: [training, nightly]
            - expect_table_row_count_to_be_between: {min_value: 1}
            """
        ),
    )
    loaded = load_pipeline(path)
    assert set(loaded.expectations) == {"silver.orders"}
    exps = loaded.expectations["silver.orders"]
    assert [e.name for e in exps] == [
        "column_values_to_be_between:amount",
        "known_status",
        "column_values_to_not_be_null:order_id",
        "table_row_count_to_be_between",
    ]
    assert [e.type for e in exps] == [
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_null",
        "expect_table_row_count_to_be_between",
    ]
    assert [e.action for e in exps] == ["quarantine", "fail", "warn", "warn"]
    assert [e.level for e in exps] == ["row", "row", "row", "table"]
    assert exps[0].kwargs == {"column": "amount", "min_value": 0}
    assert exps[1].kwargs == {"column": "status", "value_set": ["open", "closed"]}
    assert [e.suite for e in exps] == ["inline"] * 4
    assert exps[2].environments == ("training", "nightly")
    assert exps[2].applies("training") and not exps[2].applies(None)
    assert exps[0].environments == () and exps[0].applies("training") and exps[0].applies(None)
    display = loaded.display
    assert exps[0].origin == f"{display}:{line_of(path, 'expect_column_values_to_be_between')}"
    assert exps[1].origin == f"{display}:{line_of(path, 'type: expect_column_values_to_be_in')}"
    # The parsed model keeps the items as written.
    items = loaded.pipeline.silver["orders"].expectations
    assert [i.action for i in items] == ["quarantine", "fail", None, None]


def test_no_expectations_is_an_empty_tuple(tmp_path: Path) -> None:
    loaded = load_pipeline(make_project(tmp_path))
    assert dict(loaded.expectations) == {"silver.orders": ()}


def test_repeated_default_name_gets_a_suffix(tmp_path: Path) -> None:
    path = make_project(
        tmp_path,
        pipeline_with(
            """
            - expect_column_values_to_be_between: {column: amount, min_value: 0}
            - expect_column_values_to_be_between: {column: amount, max_value: 100}
            - expect_column_values_to_be_between: {column: amount, max_value: 1000}
              action: drop
            """
        ),
    )
    exps = load_pipeline(path).expectations["silver.orders"]
    assert [e.name for e in exps] == [
        "column_values_to_be_between:amount",
        "column_values_to_be_between:amount_2",
        "column_values_to_be_between:amount_3",
    ]
    assert [e.kwargs for e in exps] == [
        {"column": "amount", "min_value": 0},
        {"column": "amount", "max_value": 100},
        {"column": "amount", "max_value": 1000},
    ]
    assert exps[2].action == "drop"


def test_suffixed_names_never_collide(tmp_path: Path) -> None:
    """A generated ``_2`` that is already taken moves on; a given name that a generated one
    took is an error, never two expectations with one name."""
    pipeline = MINIMAL_PIPELINE.replace(
        "      order_date: date\n",
        "      order_date: date\n      amount_2: int\n    expectations:\n"
        "      - expect_column_values_to_not_be_null: {column: amount}\n"
        "      - expect_column_values_to_not_be_null: {column: amount}\n"
        "      - expect_column_values_to_not_be_null: {column: amount_2}\n",
    )
    names = [
        e.name
        for e in load_pipeline(make_project(tmp_path / "a", pipeline)).expectations["silver.orders"]
    ]
    assert len(set(names)) == 3, names
    clash = pipeline_with(
        """
        - expect_table_row_count_to_be_between: {min_value: 1}
        - expect_table_row_count_to_be_between: {min_value: 2}
        - expect_table_row_count_to_be_between: {min_value: 3}
          name: table_row_count_to_be_between_2
        """
    )
    err = errors_of(make_project(tmp_path / "b", clash))
    assert any("two expectations are named" in i.message for i in err.issues)


def test_suite_json_numbers_are_read_as_json(tmp_path: Path) -> None:
    """YAML 1.1 would read 1e-05 as a string; a suite's values come from a JSON parser."""
    path = make_project(tmp_path, pipeline_with("\n- suite: quality/s.json\n"))
    suite = {
        "name": "s",
        "expectations": [
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "amount", "mostly": 1e-05},
            },
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "amount", "max_value": 1e16},
            },
        ],
    }
    (path.parent / "quality").mkdir()
    (path.parent / "quality" / "s.json").write_text(json.dumps(suite, indent=2))
    exps = load_pipeline(path).expectations["silver.orders"]
    assert exps[0].kwargs["mostly"] == 1e-05 and exps[1].kwargs["max_value"] == 1e16


# --- errors ----------------------------------------------------------------------------


def test_expectation_errors_are_located_and_reported_together(tmp_path: Path) -> None:
    path = make_project(
        tmp_path,
        pipeline_with(
            """
            - expect_column_values_to_be_betwen: {column: amount, min_value: 0}
            - expect_column_values_to_not_be_null:
                column: amount
                mostli: 0.9
            - expect_column_values_to_be_in_set: {column: status}
            - expect_column_values_to_be_between:
                column: amount
                min_value: 0
                mostly: 1.5
            - expect_column_values_to_not_be_null: {column: amout}
            - expect_table_row_count_to_be_between: {min_value: 1}
              action: drop
            - expect_column_values_to_be_unique: {column: order_id}
              name: dup
            - expect_column_values_to_not_be_null: {column: order_id}
              name: dup
            - expect_column_values_to_not_be_null:
                column: status
                row_condition: 'status == "open"'
            """
        ),
    )
    err = errors_of(path)
    assert set(err.codes) == {Code.BAD_EXPECTATION}
    assert all(same_file(i, path) for i in err.issues)
    items = "silver.orders.expectations"
    assert len(lines_with(path, "name: dup")) == 2
    expected = {
        (line_of(path, "to_be_betwen"), f"{items}.0.expect_column_values_to_be_betwen"),
        (line_of(path, "mostli:"), f"{items}.1.expect_column_values_to_not_be_null.mostli"),
        (line_of(path, "{column: status}"), f"{items}.2.expect_column_values_to_be_in_set"),
        (line_of(path, "mostly: 1.5"), f"{items}.3.expect_column_values_to_be_between.mostly"),
        (line_of(path, "amout"), f"{items}.4.expect_column_values_to_not_be_null.column"),
        (line_of(path, "action: drop"), f"{items}.5.action"),
        (line_of(path, "expectations:"), items),
        (
            line_of(path, "row_condition:"),
            f"{items}.8.expect_column_values_to_not_be_null.row_condition",
        ),
    }
    assert {(i.line, i.key) for i in err.issues} == expected
    assert len(err.issues) == len(expected)
    by_key = {i.key: i.message for i in err.issues}
    assert (
        "did you mean expect_column_values_to_be_between?"
        in by_key[f"{items}.0.expect_column_values_to_be_betwen"]
    )
    assert (
        "unknown kwarg 'mostli'" in by_key[f"{items}.1.expect_column_values_to_not_be_null.mostli"]
    )
    assert "needs kwarg 'value_set'" in by_key[f"{items}.2.expect_column_values_to_be_in_set"]
    assert "fraction" in by_key[f"{items}.3.expect_column_values_to_be_between.mostly"]
    undeclared = by_key[f"{items}.4.expect_column_values_to_not_be_null.column"]
    assert "column 'amout' is not declared" in undeclared
    assert "did you mean 'amount'" in undeclared
    assert "table-level" in by_key[f"{items}.5.action"]
    assert "two expectations are named 'dup'" in by_key[items]
    second_dup = line_of(path, "to_not_be_null: {column: order_id}")
    assert by_key[items].endswith(f"pipeline.yml:{second_dup})")  # names the second one
    assert "not supported" in by_key[f"{items}.8.expect_column_values_to_not_be_null.row_condition"]
    # The rendered lines carry file:line [key] too.
    assert any(f"pipeline.yml:{line_of(path, 'amout')} [" in line for line in err.lines())


def test_type_and_kwargs_form_errors_point_at_kwargs(tmp_path: Path) -> None:
    path = make_project(
        tmp_path,
        pipeline_with(
            """
            - type: expect_column_values_to_not_be_null
              kwargs:
                column: amout
            """
        ),
    )
    err = errors_of(path)
    assert [(i.code, i.line, i.key) for i in err.issues] == [
        (
            Code.BAD_EXPECTATION,
            line_of(path, "column: amout"),
            "silver.orders.expectations.0.kwargs.column",
        )
    ]


def test_bad_item_shape_is_a_located_bad_value(tmp_path: Path) -> None:
    path = make_project(
        tmp_path,
        pipeline_with(
            """
            - expect_column_values_to_not_be_null: {column: amount}
              action: explode
            """
        ),
    )
    err = errors_of(path)
    assert err.codes == [Code.BAD_VALUE]
    assert err.issues[0].line == line_of(path, "action: explode")
    assert err.issues[0].key == "silver.orders.expectations.0.action"


# --- Great Expectations suite files ----------------------------------------------------


def test_gx_suite_file_expands_in_order(tmp_path: Path) -> None:
    import great_expectations.expectations as gxe

    path = make_project(
        tmp_path,
        pipeline_with(
            """
            - expect_column_values_to_not_be_null: {column: order_id}
              action: fail
            - suite: quality/orders.json
              action: drop
              environments: [nightly]
            - expect_table_row_count_to_be_between: {min_value: 1}
            """
        ),
    )
    suite_path = path.parent / "quality" / "orders.json"
    write_gx_suite(
        suite_path,
        "orders",
        [
            gxe.ExpectColumnValuesToBeBetween(
                column="amount",
                min_value=0,
                meta={"lakeforge": {"action": "quarantine", "name": "amount_not_negative"}},
            ),
            gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["open", "closed"]),
            gxe.ExpectColumnMeanToBeBetween(
                column="amount",
                max_value=1000,
                meta={"lakeforge": {"action": "fail", "environments": ["training"]}},
            ),
            gxe.ExpectColumnValuesToNotBeNull(column="order_id"),
        ],
    )
    loaded = load_pipeline(path)
    exps = loaded.expectations["silver.orders"]
    assert [(e.name, e.action, e.environments, e.suite) for e in exps] == [
        ("column_values_to_not_be_null:order_id", "fail", (), "inline"),
        ("amount_not_negative", "quarantine", ("nightly",), "orders"),
        ("column_values_to_be_in_set:status", "drop", ("nightly",), "orders"),
        ("column_mean_to_be_between:amount", "fail", ("training",), "orders"),
        ("column_values_to_not_be_null:order_id_2", "drop", ("nightly",), "orders"),
        ("table_row_count_to_be_between", "warn", (), "inline"),
    ]
    assert exps[1].type == "expect_column_values_to_be_between"
    assert exps[1].kwargs == {"column": "amount", "min_value": 0}
    assert exps[1].meta["lakeforge"]["name"] == "amount_not_negative"
    assert exps[2].kwargs == {"column": "status", "value_set": ["open", "closed"]}
    assert exps[3].level == "table"
    origin_file, origin_line = exps[2].origin.rsplit(":", 1)
    assert Path(origin_file).resolve() == suite_path.resolve()
    assert int(origin_line) == json_entry_line(suite_path, "expect_column_values_to_be_in_set")
    item = loaded.pipeline.silver["orders"].expectations[1]
    assert (item.suite, item.action, item.environments) == (
        "quality/orders.json",
        "drop",
        ["nightly"],
    )

    # The suite is part of the config: changing it changes the config hash.
    before = loaded.config_hash
    suite_path.write_text(suite_path.read_text().replace('"max_value": 1000', '"max_value": 999'))
    after = load_pipeline(path)
    assert after.expectations["silver.orders"][3].kwargs["max_value"] == 999
    assert after.config_hash != before


def test_gx_0x_suite_with_expectation_type_loads(tmp_path: Path) -> None:
    path = make_project(tmp_path, pipeline_with("- suite: legacy.json\n"))
    suite = {
        "expectation_suite_name": "old",
        "expectations": [
            {
                "expectation_type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "amount"},
            }
        ],
    }
    (path.parent / "legacy.json").write_text(json.dumps(suite, indent=2))
    exps = load_pipeline(path).expectations["silver.orders"]
    assert [(e.type, e.suite, e.action) for e in exps] == [
        ("expect_column_values_to_not_be_null", "legacy", "warn")
    ]


def test_gx_suite_errors_name_the_json_file_and_line(tmp_path: Path) -> None:
    import great_expectations.expectations as gxe

    path = make_project(
        tmp_path,
        pipeline_with(
            """
            - suite: quality/orders.json
            - expect_column_values_to_not_be_null: {column: statuss}
            """
        ),
    )
    suite_path = path.parent / "quality" / "orders.json"
    write_gx_suite(
        suite_path,
        "orders",
        [
            gxe.ExpectColumnValuesToNotBeNull(column="order_id"),
            gxe.ExpectColumnValuesToBeBetween(column="amout", min_value=0),
            gxe.ExpectColumnValuesToNotBeNull(
                column="status", meta={"lakeforge": {"action": "explode"}}
            ),
            gxe.ExpectTableRowCountToBeBetween(
                min_value=1, meta={"lakeforge": {"action": "quarantine"}}
            ),
        ],
    )
    err = errors_of(path)
    assert set(err.codes) == {Code.BAD_EXPECTATION}
    in_suite = [i for i in err.issues if same_file(i, suite_path)]
    in_pipeline = [i for i in err.issues if same_file(i, path)]
    assert len(in_suite) + len(in_pipeline) == len(err.issues)
    assert {(i.line, i.key) for i in in_suite} == {
        (line_of(suite_path, '"column": "amout"'), "expectations.1.kwargs.column"),
        (line_of(suite_path, '"action": "explode"'), "expectations.2.meta.lakeforge.action"),
        # no "action" key in the entry itself: the entry's opening line
        (
            json_entry_line(suite_path, "expect_table_row_count_to_be_between"),
            "expectations.3.action",
        ),
    }
    messages = {i.key: i.message for i in in_suite}
    assert "did you mean 'amount'" in messages["expectations.1.kwargs.column"]
    assert "explode" in messages["expectations.2.meta.lakeforge.action"]
    assert "table-level" in messages["expectations.3.action"]
    assert [(i.line, i.key) for i in in_pipeline] == [
        (
            line_of(path, "statuss"),
            "silver.orders.expectations.1.expect_column_values_to_not_be_null.column",
        )
    ]
    assert all(i.file.endswith("orders.json") for i in in_suite)


def test_missing_suite_file_is_file_not_found_at_the_pipeline_line(tmp_path: Path) -> None:
    path = make_project(tmp_path, pipeline_with("- suite: quality/nope.json\n  action: warn\n"))
    err = errors_of(path)
    assert err.codes == [Code.FILE_NOT_FOUND]
    issue = err.issues[0]
    assert same_file(issue, path)
    assert issue.line == line_of(path, "suite: quality/nope.json")
    assert issue.key == "silver.orders.expectations.0.suite"
    assert "nope.json" in issue.message


def test_a_json_without_expectations_is_not_a_suite(tmp_path: Path) -> None:
    path = make_project(tmp_path, pipeline_with("- suite: quality/orders.json\n"))
    suite_path = path.parent / "quality" / "orders.json"
    suite_path.parent.mkdir()
    suite_path.write_text('{"name": "orders"}\n')
    err = errors_of(path)
    assert err.codes == [Code.BAD_EXPECTATION]
    assert same_file(err.issues[0], suite_path)
    assert "no 'expectations' list" in err.issues[0].message


# --- data environments -----------------------------------------------------------------


def _loaded_with_environments(tmp_path: Path) -> LoadedPipeline:
    path = make_project(
        tmp_path,
        pipeline_with(
            """
            - expect_column_values_to_not_be_null: {column: order_id}
              environments: [training]
            - suite: orders.json
              environments: [nightly]
            """
        ),
    )
    suite = {
        "name": "orders",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount"}}
        ],
    }
    (path.parent / "orders.json").write_text(json.dumps(suite, indent=2))
    return load_pipeline(path)


def test_check_data_env_rejects_unknown_environment(tmp_path: Path) -> None:
    loaded = _loaded_with_environments(tmp_path)
    with pytest.raises(ConfigError) as info:
        check_data_env(loaded, "trainig")
    assert info.value.codes == [Code.BAD_EXPECTATION]
    issue = info.value.issues[0]
    assert issue.key == "--data-env"
    assert "'trainig'" in issue.message
    assert "nightly, training" in issue.message


def test_check_data_env_accepts_none_and_known(tmp_path: Path) -> None:
    loaded = _loaded_with_environments(tmp_path)
    check_data_env(loaded, None)
    check_data_env(loaded, "training")
    check_data_env(loaded, "nightly")  # named only in the suite item


def test_check_data_env_without_environments_says_none(tmp_path: Path) -> None:
    loaded = load_pipeline(make_project(tmp_path))
    with pytest.raises(ConfigError, match="environments in this pipeline: none"):
        check_data_env(loaded, "training")


# --- no heavy imports ------------------------------------------------------------------


def test_validate_with_expectations_imports_neither_spark_nor_gx(tmp_path: Path) -> None:
    """`validate` checks suites with lakeforge's registry, not by importing the library."""
    path = make_project(
        tmp_path,
        pipeline_with(
            """
            - expect_column_values_to_be_between: {column: amount, min_value: 0}
              action: quarantine
            - suite: quality/orders.json
            """
        ),
    )
    suite = {
        "name": "orders",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "order_id"}},
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
        ],
    }
    (path.parent / "quality").mkdir()
    (path.parent / "quality" / "orders.json").write_text(json.dumps(suite, indent=2))
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from lakeforge.cli.main import cli\n"
        "from lakeforge.plan.load import load_pipeline\n"
        f"loaded = load_pipeline({str(path)!r})\n"
        "print(len(loaded.expectations['silver.orders']))\n"
        f"r = CliRunner().invoke(cli, ['validate', {str(path)!r}])\n"
        "print(r.exit_code)\n"
        "print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('pyspark', 'py4j', 'great_expectations')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["3", "0", "[]"], proc.stdout + proc.stderr


def test_expectation_is_hashable_and_carries_meta() -> None:
    exp = Expectation(
        name="n",
        type="expect_column_values_to_not_be_null",
        kwargs_json='{"column": "a"}',
        action="warn",
        meta_json='{"notes": "x"}',
    )
    assert hash(exp) == hash(Expectation(**{**exp.__dict__, "meta_json": "{}"}))
    assert exp.meta == {"notes": "x"} and exp.kwargs == {"column": "a"}
    assert exp.level == "row"
