"""Small builders shared by the test layers (no pyspark import here)."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

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
