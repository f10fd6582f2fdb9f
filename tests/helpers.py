"""Small builders shared by the test layers (no pyspark import here)."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyspark.sql import SparkSession

    from lakeforge.results import RunResult

REPO = Path(__file__).resolve().parents[1]

MINIMAL_PIPELINE = """\
name: shop
vars:
  raw_root: data/raw
bronze:
  orders:
    source:
      format: csv
      path: ${var:raw_root}/orders/*.csv
silver:
  orders:
    from: bronze.orders
    keys: [order_id]
    columns:
      order_id: bigint
      amount: decimal(10,2)
      order_date: date
gold:
  revenue:
    sql: |
      SELECT order_date, SUM(amount) AS revenue
      FROM silver.orders
      GROUP BY order_date
"""


def make_project(
    root: Path,
    pipeline: str = MINIMAL_PIPELINE,
    profiles: dict[str, str] | None = None,
    name: str = "pipeline.yml",
) -> Path:
    """A project folder with ``conf/`` and ``jobs/shop/<name>``; returns the pipeline path."""
    (root / "conf").mkdir(parents=True, exist_ok=True)
    for env, text in (profiles or {}).items():
        (root / "conf" / f"{env}.yml").write_text(textwrap.dedent(text))
    job = root / "jobs" / "shop"
    job.mkdir(parents=True, exist_ok=True)
    path = job / name
    path.write_text(textwrap.dedent(pipeline))
    return path


def load_script(path: Path, name: str) -> ModuleType:
    """Import an example's script (``jobs/<job>/*.py``, not a package) under ``name``:
    the examples' generators share a file name, so each gets its own module name."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


TINY = REPO / "tests" / "data" / "tiny"


def new_tiny_project(root: Path, suffix: str = "") -> Path:
    """The tiny pipeline (tests/data/tiny: one CSV source, bronze, silver MERGE + SCD2,
    gold, a training set) copied into a scratch project, its table and set names ending
    in ``suffix``; no raw file delivered yet (:func:`deliver_tiny`). Returns ``root``."""
    for path in TINY.rglob("*.yml"):
        target = root / path.relative_to(TINY)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text().replace("__sfx__", suffix))
    return root


def tiny_tables(suffix: str) -> list[str]:
    """The data tables a run of the tiny pipeline named with ``suffix`` writes."""
    orders = f"orders{suffix}"
    return [
        f"bronze.{orders}",
        f"silver.{orders}",
        f"silver.{orders}__quarantine",
        f"silver.customers{suffix}",
        f"silver.customers{suffix}__quarantine",
        f"gold.customer_value{suffix}",
    ]


def deliver_tiny(root: Path, batch: int) -> list[Path]:
    """Copy the tiny pipeline's raw batch ``batch`` (1 or 2) into the project's
    ``data/raw``; returns the files delivered."""
    delivered = []
    for path in sorted((TINY / "raw" / str(batch)).rglob("*.csv")):
        target = root / "data" / "raw" / path.relative_to(TINY / "raw" / str(batch))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
        delivered.append(target)
    return delivered


def run_together(spark: SparkSession, pipelines: Sequence[Path], root: Path) -> list[RunResult]:
    """Run several scratch projects' pipelines as ONE pipeline run and return each one's
    share of it, as its own run would have returned it (its steps, in its plan's order).

    A run has a fixed cost (lock, system tables, run records) that is paid once here instead
    of once per project. Each pipeline is loaded and planned from its own file; its steps run
    project after project, each ingest reading the path its own project resolves, so every
    project must lie under ``root`` (the shared run's project root) and the projects must
    write different tables. State is kept per table (ingestion log, consumed versions), so
    a project's own later runs carry on from here. The run stops at its first failed step:
    a pipeline after a failed one shares that failure (put one expected to fail last).
    """
    from dataclasses import replace

    from lakeforge.io.files import resolve_source_path
    from lakeforge.pipeline.executor import execute
    from lakeforge.plan.builder import build_plan
    from lakeforge.plan.load import load_pipeline
    from lakeforge.plan.steps import IngestStep, Plan
    from lakeforge.results import RunResult

    plans, steps = [], []
    for path in pipelines:
        loaded = load_pipeline(path)
        assert loaded.project_root.resolve().is_relative_to(root.resolve()), path
        plan = build_plan(loaded)
        plans.append(plan)
        for step in plan.steps:
            if isinstance(step, IngestStep):
                where = resolve_source_path(step.source_path, loaded.project_root)
                step = replace(step, source_path=where)
            steps.append(step)
    tables = [s.table for s in steps]
    assert len(tables) == len(set(tables)), f"projects share a table: {tables}"
    together = Plan(
        pipeline="run_together",
        env=plans[0].env,
        config_hash="run_together",
        file=str(root),
        steps=tuple(steps),
        directory=str(root),
    )
    run = execute(together, spark, root)
    shares = []
    for plan in plans:
        own = [s for s in run.steps if s.table in set(plan.tables)]
        failed = any(s.status != "ok" for s in own)
        shares.append(
            RunResult(
                run_id=run.run_id,
                pipeline=plan.pipeline,
                env=run.env,
                config_hash=plan.config_hash,
                status="failed" if failed else "succeeded",
                started_at=run.started_at,
                ended_at=run.ended_at,
                seconds=run.seconds,
                steps=own,
                error=run.error if failed else None,
                error_code=run.error_code if failed else None,
            )
        )
    return shares
