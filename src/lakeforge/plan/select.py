"""Part of a pipeline: the steps a selector names, for one orchestrator task per step or
per layer (``lakeforge run FILE --select silver.orders+``).

Selectors follow dbt's graph operators, over the tables steps write:

``TABLE``      that step only
``TABLE+``     it and every step downstream of it (steps that read it, transitively)
``+TABLE``     every step upstream of it (transitively), and it
``+TABLE+``    both
``bronze`` / ``silver`` / ``gold``   every step of that layer

Several selectors select their union; the steps keep the plan's order (dependencies
first). A step whose upstream tables are not selected reads them as they are in the
lakehouse (their latest versions), as a full run would after they were written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from lakeforge.errors import Code, PlanError
from lakeforge.plan.steps import Plan, Step

LAYERS = ("bronze", "silver", "gold")


def _closure(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def selected_tables(steps: Iterable[Step], selectors: Iterable[str]) -> set[str]:
    """The tables (of ``steps``) the ``selectors`` name.

    Raises:
        PlanError: ``LF-PLAN-002`` for a selector naming no step (the steps listed).
    """
    steps = list(steps)
    tables = {s.table for s in steps}
    upstream: dict[str, set[str]] = {s.table: set(s.upstream) & tables for s in steps}
    downstream: dict[str, set[str]] = {t: set() for t in tables}
    for table, ups in upstream.items():
        for up in ups:
            downstream[up].add(table)
    chosen: set[str] = set()
    for raw in selectors:
        selector = raw.strip().lower()
        if selector in LAYERS:
            chosen |= {s.table for s in steps if s.layer == selector}
            continue
        with_up, with_down = selector.startswith("+"), selector.endswith("+")
        table = selector.strip("+")
        if table not in tables:
            raise PlanError(
                Code.SELECT_UNKNOWN,
                f"--select {raw!r}: no step writes {table!r}",
                "steps: "
                + ", ".join(s.table for s in steps)
                + "; or a layer: "
                + ", ".join(LAYERS),
            )
        chosen.add(table)
        if with_up:
            chosen |= _closure(table, upstream)
        if with_down:
            chosen |= _closure(table, downstream)
    return chosen


def select(plan: Plan, selectors: Iterable[str]) -> Plan:
    """``plan`` with only the selected steps (all of them when ``selectors`` is empty)."""
    selectors = [s for s in selectors if s.strip()]
    if not selectors:
        return plan
    chosen = selected_tables(plan.steps, selectors)
    return replace(plan, steps=tuple(s for s in plan.steps if s.table in chosen))
