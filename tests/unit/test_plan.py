"""Plans: order, reads/writes/modes, and the DAG's guarantees (property-tested)."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from lakeforge.config.references import sql_table_refs
from lakeforge.plan.builder import build_plan
from lakeforge.plan.dag import DAG, CycleError
from lakeforge.plan.explain import plan_text
from lakeforge.plan.load import load_pipeline
from lakeforge.plan.steps import ConformStep, IngestStep, TransformStep
from tests.helpers import REPO, make_project

DIAMOND = """\
name: diamond
gold:
  report:
    sql: SELECT * FROM gold.left_side JOIN gold.right_side USING (k)
  left_side:
    sql: SELECT k, SUM(v) AS l FROM silver.facts GROUP BY k
  right_side:
    sql: SELECT k, MAX(v) AS r FROM silver.facts GROUP BY k
silver:
  facts:
    from: bronze.facts
    columns: {k: int, v: double}
bronze:
  facts:
    source: {format: json, path: raw/facts}
"""


def test_plan_orders_upstream_first_regardless_of_declaration(tmp_path: Path) -> None:
    plan = build_plan(load_pipeline(make_project(tmp_path, DIAMOND)))
    order = [s.table for s in plan.steps]
    assert order.index("bronze.facts") < order.index("silver.facts") < order.index("gold.left_side")
    assert order.index("gold.left_side") < order.index("gold.report")
    assert order.index("gold.right_side") < order.index("gold.report")
    # Stable: among ready steps, declaration order (left before right).
    assert order.index("gold.left_side") < order.index("gold.right_side")


def test_plan_steps_carry_reads_writes_mode_location(tmp_path: Path) -> None:
    path = make_project(tmp_path, DIAMOND)
    plan = build_plan(load_pipeline(path))
    ingest, conform = plan.writes("bronze.facts"), plan.writes("silver.facts")
    report = plan.writes("gold.report")
    assert (
        isinstance(ingest, IngestStep)
        and ingest.reads == ("json:raw/facts",)
        and ingest.mode == "append"
    )
    assert isinstance(conform, ConformStep) and conform.reads == ("bronze.facts",)
    assert conform.mode == "overwrite" and conform.quarantine_table == "silver.facts__quarantine"
    assert isinstance(report, TransformStep) and report.reads == (
        "gold.left_side",
        "gold.right_side",
    )
    lines = path.read_text().splitlines()
    assert lines[report.location.line - 1].strip() == "report:"
    text = plan_text(plan)
    assert "gold.report" in text and "failures -> silver.facts__quarantine" in text


def test_flagship_example_plans() -> None:
    plan = build_plan(load_pipeline(REPO / "jobs" / "retail" / "pipeline.yml"))
    assert [s.layer for s in plan.steps] == ["bronze"] * 3 + ["silver"] * 3 + ["gold"] * 3
    assert plan.writes("gold.revenue_by_segment").reads == ("silver.orders", "silver.customers")
    assert plan.writes("gold.customer_value").reads == ("silver.orders", "silver.customers")
    assert plan.writes("silver.customers").mode == "scd2"


def test_sql_refs_ignore_comments_and_literals() -> None:
    sql = """-- silver.commented
SELECT 'gold.literal' AS x, "silver.quoted" AS y
FROM Silver.Orders o /* bronze.block */
JOIN `gold`.`dims` d ON d.k = o.k
"""
    refs = sql_table_refs(sql)
    assert [r.name for r in refs] == ["silver.orders", "gold.dims"]
    assert [r.line_offset for r in refs] == [2, 3]


@st.composite
def dags(draw: st.DrawFn) -> dict[int, list[int]]:
    n = draw(st.integers(1, 12))
    # Edges only from lower to higher index: acyclic by construction; then shuffle labels.
    labels = draw(st.permutations(list(range(n))))
    edges: dict[int, list[int]] = {labels[i]: [] for i in range(n)}
    for i in range(n):
        ups = draw(st.lists(st.integers(0, max(i - 1, 0)), max_size=3)) if i else []
        edges[labels[i]] = [labels[u] for u in ups]
    return edges


@given(dags())
def test_topological_respects_every_edge(edges: dict[int, list[int]]) -> None:
    dag: DAG[int] = DAG()
    for node, ups in edges.items():
        dag.add(node, ups)
    order = dag.topological()
    assert sorted(order) == sorted(edges)
    pos = {n: i for i, n in enumerate(order)}
    for node, ups in edges.items():
        assert all(pos[u] < pos[node] for u in ups)


@given(dags(), st.data())
def test_any_back_edge_is_reported_as_a_real_cycle(
    edges: dict[int, list[int]], data: st.DataObject
) -> None:
    dag: DAG[int] = DAG()
    for node, ups in edges.items():
        dag.add(node, ups)
    order = dag.topological()
    if len(order) < 2:
        return
    i = data.draw(st.integers(0, len(order) - 2))
    j = data.draw(st.integers(i + 1, len(order) - 1))
    # Make an earlier node depend on a later one that (transitively) may depend on it.
    dag.add(order[i], [order[j]])
    cycle = dag.find_cycle()
    if cycle is None:
        dag.topological()  # must then succeed
        return
    assert cycle[0] == cycle[-1]
    for upstream, downstream in itertools.pairwise(cycle):
        assert upstream in dag.upstream[downstream]
    try:
        dag.topological()
    except CycleError as exc:
        assert exc.path[0] == exc.path[-1]
    else:
        raise AssertionError("topological() accepted a cyclic graph")
