"""lakeforge: declarative lakehouse pipelines on Apache Spark and Delta Lake.

``lakeforge.run(path, env=...)`` runs a pipeline and returns a :class:`RunResult`;
``lakeforge.plan(path)`` returns its plan without starting Spark.
``lakeforge.publish(spec)``, ``lakeforge.reproduce(id)`` and
``lakeforge.training_set(name, split=...)`` publish, check and read training sets;
``lakeforge.log_to_mlflow(id)`` logs one on an MLflow run (extra ``[mlflow]``).
"""

from lakeforge.api import (
    log_to_mlflow,
    plan,
    publish,
    reproduce,
    run,
    training_manifest,
    training_set,
)
from lakeforge.errors import (
    ConfigError,
    LakeforgeError,
    PlanError,
    PublishError,
    RunError,
    RuntimeSetupError,
)
from lakeforge.results import RunResult, StepResult
from lakeforge.version import __version__

__all__ = [
    "ConfigError",
    "LakeforgeError",
    "PlanError",
    "PublishError",
    "RunError",
    "RunResult",
    "RuntimeSetupError",
    "StepResult",
    "__version__",
    "log_to_mlflow",
    "plan",
    "publish",
    "reproduce",
    "run",
    "training_manifest",
    "training_set",
]
