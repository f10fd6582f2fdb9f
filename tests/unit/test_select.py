"""Step selection (plan/select.py) on the retail example's plan, without a JVM: dbt-style
graph operators over the tables steps write, layers, unions, and a coded unknown."""

from __future__ import annotations

import contextlib

import pytest
from click.testing import CliRunner

from lakeforge.cli.main import cli
from lakeforge.errors import Code, PlanError
from lakeforge.plan.builder import build_plan
from lakeforge.plan.load import load_pipeline
from lakeforge.plan.select import select
from lakeforge.plan.steps import Plan
from tests.helpers import REPO


@pytest.fixture(scope="module")
def plan() -> Plan:
    with contextlib.chdir(REPO):
        return build_plan(load_pipeline(REPO / "jobs" / "retail" / "pipeline.yml", "local"))


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        (["silver.orders"], ["silver.orders"]),
        (
            ["silver.orders+"],
            ["silver.orders", "gold.daily_revenue", "gold.revenue_by_segment", "gold.customer_value"],
        ),
        (
            ["+gold.daily_revenue"],
            ["bronze.orders", "bronze.order_lines", "silver.orders", "silver.order_lines",
             "gold.daily_revenue"],
        ),
        (["+silver.customers+"], ["bronze.customers", "silver.customers",
                                  "gold.revenue_by_segment", "gold.customer_value"]),
        (["bronze"], ["bronze.customers", "bronze.orders", "bronze.order_lines"]),
        # A union keeps the plan's order, whatever the selectors' order.
        (["gold.customer_value", "BRONZE.Orders"], ["bronze.orders", "gold.customer_value"]),
        ([], None),
    ],
)  # fmt: skip
def test_selectors_pick_steps_in_plan_order(
    plan: Plan, selectors: list[str], expected: list[str] | None
) -> None:
    got = select(plan, selectors)
    assert [s.table for s in got.steps] == (expected or [s.table for s in plan.steps])
    assert got.config_hash == plan.config_hash  # the same pipeline, part of it


def test_an_unknown_selector_is_coded_and_lists_the_steps(plan: Plan) -> None:
    with pytest.raises(PlanError) as err:
        select(plan, ["silver.order+"])
    assert err.value.code == Code.SELECT_UNKNOWN
    assert "'silver.order'" in err.value.message and "silver.order_lines" in str(err.value)


def test_plan_and_run_take_select_before_any_jvm() -> None:
    runner = CliRunner()
    with contextlib.chdir(REPO):
        shown = runner.invoke(
            cli, ["plan", "jobs/retail/pipeline.yml", "-s", "+gold.daily_revenue"]
        )
        assert shown.exit_code == 0, shown.output
        assert "gold.daily_revenue" in shown.stdout and "customer_value" not in shown.stdout
        refused = runner.invoke(cli, ["run", "jobs/retail/pipeline.yml", "--select", "gold.nope"])
    assert refused.exit_code == 1 and "LF-PLAN-002" in refused.output
    assert "starting Spark" not in refused.output
