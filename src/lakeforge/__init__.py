"""lakeforge: declarative lakehouse pipelines on Apache Spark and Delta Lake.

``lakeforge.run(path, env=...)`` runs a pipeline and returns a :class:`RunResult`;
``lakeforge.plan(path)`` returns its plan without starting Spark.
"""

from lakeforge.api import plan, run
from lakeforge.errors import ConfigError, LakeforgeError, PlanError, RunError, RuntimeSetupError
from lakeforge.results import RunResult, StepResult

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "LakeforgeError",
    "PlanError",
    "RunError",
    "RunResult",
    "RuntimeSetupError",
    "StepResult",
    "__version__",
    "plan",
    "run",
]
