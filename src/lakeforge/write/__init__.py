"""Delta writes by mode: one strategy per ``WriteMode``, chosen once from the spec.

Like dbt looking a materialization up by name, or SQLMesh's snapshot evaluator picking
an ``EvaluationStrategy`` per model kind: silver (``steps.conform``) and gold
(``steps.transform``) ask :func:`strategy_for` once and then call the strategy, which owns
the mode's txn ids, schema evolution, observation and commit metrics. Adding a mode is a
new module here and one line in :data:`STRATEGIES`.
"""

from __future__ import annotations

from lakeforge.config.models import WriteMode
from lakeforge.write.append import Append
from lakeforge.write.base import Target, WriteStrategy, spec_hash
from lakeforge.write.merge import Merge
from lakeforge.write.overwrite import Overwrite
from lakeforge.write.scd2 import Scd2

STRATEGIES: dict[WriteMode, type[WriteStrategy]] = {
    WriteMode.OVERWRITE: Overwrite,
    WriteMode.APPEND: Append,
    WriteMode.MERGE: Merge,
    WriteMode.SCD2: Scd2,
}


def strategy_for(mode: WriteMode | str) -> WriteStrategy:
    """The strategy that writes a table of ``mode``.

    Raises:
        ValueError: an unknown mode (config parsing refuses those first).
    """
    return STRATEGIES[WriteMode(mode)]()


def aside_for(strategy: WriteStrategy) -> WriteStrategy:
    """The strategy of a step's quarantine: rebuilt with a rebuild, else appended."""
    return strategy_for(strategy.aside_mode)


__all__ = ["STRATEGIES", "Target", "WriteStrategy", "aside_for", "spec_hash", "strategy_for"]
