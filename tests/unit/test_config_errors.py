"""Config errors: each names code, file, line and key; all are reported together."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeforge.errors import Code, ConfigError, PlanError
from lakeforge.plan.builder import build_plan
from lakeforge.plan.load import load_pipeline
from tests.helpers import MINIMAL_PIPELINE, make_project


def errors_of(path: Path, **kw: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_pipeline(path, **kw)  # type: ignore[arg-type]
    return info.value


def line_number(path: Path, needle: str) -> int:
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not in {path}")


def test_minimal_pipeline_loads(tmp_path: Path) -> None:
    loaded = load_pipeline(make_project(tmp_path))
    assert loaded.pipeline.name == "shop"
    assert loaded.pipeline.bronze["orders"].source.path == "data/raw/orders/*.csv"
    assert loaded.pipeline.silver["orders"].columns["amount"].type == "decimal(10,2)"
    assert loaded.env == "local"


def test_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    path = make_project(
        tmp_path, MINIMAL_PIPELINE.replace("    keys: [order_id]", "    keyz: [order_id]")
    )
    err = errors_of(path)
    assert err.codes == [Code.UNKNOWN_KEY]
    issue = err.issues[0]
    assert issue.line == line_number(path, "keyz:")
    assert issue.key == "silver.orders.keyz"
    assert "did you mean 'keys'" in issue.message
    assert str(path.name) in issue.file


def test_wrong_type_points_at_value(tmp_path: Path) -> None:
    path = make_project(
        tmp_path, MINIMAL_PIPELINE.replace("amount: decimal(10,2)", "amount: moneyy")
    )
    err = errors_of(path)
    assert err.codes == [Code.BAD_VALUE]
    assert err.issues[0].line == line_number(path, "amount: moneyy")
    assert err.issues[0].key.startswith("silver.orders.columns.amount")
    assert "moneyy" in err.issues[0].message


def test_wrong_scalar_type(tmp_path: Path) -> None:
    path = make_project(tmp_path, MINIMAL_PIPELINE.replace("keys: [order_id]", "keys: 42"))
    err = errors_of(path)
    assert err.codes == [Code.BAD_VALUE]
    assert err.issues[0].line == line_number(path, "keys: 42")


def test_missing_field_points_at_parent(tmp_path: Path) -> None:
    text = MINIMAL_PIPELINE.replace("      format: csv\n", "")
    path = make_project(tmp_path, text)
    err = errors_of(path)
    assert err.codes == [Code.MISSING_KEY]
    assert err.issues[0].key == "bronze.orders.source.format"
    assert err.issues[0].line == line_number(path, "source:")


def test_yaml_syntax_error_has_line_and_context(tmp_path: Path) -> None:
    path = make_project(tmp_path, MINIMAL_PIPELINE.replace("keys: [order_id]", "keys: [order_id"))
    err = errors_of(path)
    assert err.codes == [Code.YAML_SYNTAX]
    assert err.issues[0].line >= line_number(path, "keys: [order_id")
    assert "^" in err.issues[0].message  # caret under the problem


def test_undefined_table_in_from(tmp_path: Path) -> None:
    path = make_project(
        tmp_path, MINIMAL_PIPELINE.replace("from: bronze.orders", "from: bronze.ordrs")
    )
    err = errors_of(path)
    assert err.codes == [Code.UNDEFINED_TABLE]
    assert err.issues[0].line == line_number(path, "from: bronze.ordrs")
    assert "did you mean 'bronze.orders'" in err.issues[0].message


def test_undefined_table_in_sql_points_at_its_line(tmp_path: Path) -> None:
    path = make_project(
        tmp_path, MINIMAL_PIPELINE.replace("FROM silver.orders", "FROM silver.order_lines")
    )
    err = errors_of(path)
    assert err.codes == [Code.UNDEFINED_TABLE]
    assert err.issues[0].line == line_number(path, "FROM silver.order_lines")


def test_duplicate_key(tmp_path: Path) -> None:
    text = MINIMAL_PIPELINE.replace(
        "      order_date: date\n", "      order_date: date\n      amount: double\n"
    )
    path = make_project(tmp_path, text)
    err = errors_of(path)
    assert err.codes == [Code.DUPLICATE_KEY]
    assert err.issues[0].line == line_number(path, "amount: double")


def test_all_errors_reported_together_in_line_order(tmp_path: Path) -> None:
    text = (
        MINIMAL_PIPELINE.replace("format: csv", "format: csvv")
        .replace("keys: [order_id]", "keys: [order_id]\n    colour: blue")
        .replace("FROM silver.orders", "FROM silver.nope")
    )
    path = make_project(tmp_path, text)
    err = errors_of(path)
    assert sorted(err.codes) == sorted([Code.BAD_VALUE, Code.UNKNOWN_KEY])
    assert [i.line for i in err.issues] == sorted(i.line for i in err.issues)
    # References are only checked once the models are valid: fix the rest, then it shows.
    path.write_text(text.replace("csvv", "csv").replace("\n    colour: blue", ""))
    assert errors_of(path).codes == [Code.UNDEFINED_TABLE]


def test_env_var_interpolation(tmp_path: Path) -> None:
    text = MINIMAL_PIPELINE.replace("${var:raw_root}/orders", "${env:SHOP_RAW}/orders")
    # a URI source is allowed only under a URI root the profile lists
    path = make_project(tmp_path, text, {"local": "allowed_roots: ['s3a://raw-bucket']\n"})
    loaded = load_pipeline(path, environ={"SHOP_RAW": "s3a://raw-bucket"})
    assert loaded.pipeline.bronze["orders"].source.path == "s3a://raw-bucket/orders/*.csv"
    err = errors_of(path, environ={})
    assert err.codes == [Code.UNRESOLVED_VARIABLE]
    assert err.issues[0].line == line_number(path, "${env:SHOP_RAW}")
    assert "SHOP_RAW" in err.issues[0].message


def test_env_default_and_escape(tmp_path: Path) -> None:
    text = MINIMAL_PIPELINE.replace("${var:raw_root}/orders", "${env:SHOP_RAW:-local}/$${literal}")
    loaded = load_pipeline(make_project(tmp_path, text), environ={})
    assert loaded.pipeline.bronze["orders"].source.path == "local/${literal}/*.csv"


def test_profile_layers_vars_over_pipeline(tmp_path: Path) -> None:
    path = make_project(
        tmp_path,
        profiles={
            "s3": """\
        warehouse: s3a://lake/warehouse
        vars:
          raw_root: s3a://raw
        allowed_roots: ['s3a://raw']
        """
        },
    )
    assert load_pipeline(path).pipeline.bronze["orders"].source.path == "data/raw/orders/*.csv"
    loaded = load_pipeline(path, env="s3")
    assert loaded.pipeline.bronze["orders"].source.path == "s3a://raw/orders/*.csv"
    assert loaded.profile.warehouse == "s3a://lake/warehouse"


def test_missing_profile_lists_available(tmp_path: Path) -> None:
    path = make_project(
        tmp_path, profiles={"local": "warehouse: lh\n", "s3": "warehouse: s3a://x\n"}
    )
    err = errors_of(path, env="prod")
    assert err.codes == [Code.PROFILE_NOT_FOUND]
    assert "local, s3" in err.issues[0].message


def test_profile_errors_are_located_in_the_profile(tmp_path: Path) -> None:
    path = make_project(tmp_path, profiles={"local": "spark:\n  mastr: local[2]\n"})
    err = errors_of(path)
    assert err.codes == [Code.UNKNOWN_KEY]
    assert err.issues[0].file.endswith("local.yml")
    assert err.issues[0].line == 2


def test_gold_needs_exactly_one_query(tmp_path: Path) -> None:
    text = MINIMAL_PIPELINE.replace("    sql: |", "    sql_file: q.sql\n    sql: |")
    err = errors_of(make_project(tmp_path, text))
    assert err.codes == [Code.BAD_VALUE]
    assert "exactly one" in err.issues[0].message


def test_sql_file_is_read_and_checked(tmp_path: Path) -> None:
    text = MINIMAL_PIPELINE.split("gold:")[0] + "gold:\n  revenue:\n    sql_file: revenue.sql\n"
    path = make_project(tmp_path, text)
    err = errors_of(path)
    assert err.codes == [Code.FILE_NOT_FOUND]
    (path.parent / "revenue.sql").write_text("-- from silver.ghost\nSELECT * FROM silver.orders\n")
    loaded = load_pipeline(path)
    assert "silver.orders" in loaded.gold_sql["revenue"]


def test_keys_must_be_declared_columns(tmp_path: Path) -> None:
    err = errors_of(
        make_project(tmp_path, MINIMAL_PIPELINE.replace("keys: [order_id]", "keys: [id]"))
    )
    assert err.codes == [Code.BAD_VALUE]
    assert "['id']" in err.issues[0].message


def test_cycle_is_a_plan_error_with_path(tmp_path: Path) -> None:
    text = (
        MINIMAL_PIPELINE
        + """\
  a:
    sql: SELECT * FROM gold.b
  b:
    sql: SELECT * FROM gold.a JOIN gold.revenue USING (order_date)
"""
    )
    with pytest.raises(PlanError) as info:
        build_plan(load_pipeline(make_project(tmp_path, text)))
    assert info.value.code == Code.CYCLE
    msg = info.value.message
    assert "gold.a -> gold.b -> gold.a" in msg or "gold.b -> gold.a -> gold.b" in msg
    assert "pipeline.yml:" in msg
