"""The programmatic entry points: what ``import lakeforge`` offers orchestrators."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lakeforge.config.loader import DEFAULT_ENV, load_pipeline
from lakeforge.results import RunResult

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakeforge.plan.steps import Plan


def plan(path: str | Path, env: str = DEFAULT_ENV) -> Plan:
    """Load and plan a pipeline without Spark.

    Raises:
        ConfigError: invalid config (every problem, located).
        PlanError: e.g. a dependency cycle.
    """
    from lakeforge.plan.builder import build_plan

    return build_plan(load_pipeline(path, env))


def run(
    path: str | Path,
    env: str = DEFAULT_ENV,
    spark: SparkSession | None = None,
    data_env: str | None = None,
) -> RunResult:
    """Run a pipeline end to end and return its result (check ``result.ok``).

    Args:
        path: the pipeline YAML.
        env: the profile in ``conf/``.
        spark: an existing Delta-enabled session to use (default: start the profile's).
        data_env: data environment (``training`` / ``serving``) for environment-bound
            expectations; others are skipped.

    Raises:
        ConfigError, PlanError, RuntimeSetupError: before any step runs. Step failures do
        not raise; they are in the result.
    """
    from lakeforge.runtime.executor import run_pipeline

    return run_pipeline(load_pipeline(path, env), spark=spark, data_env=data_env)
