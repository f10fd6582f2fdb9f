"""Plans: the pipeline as ordered, pure data (no Spark, no side effects)."""

from lakeforge.plan.builder import build_plan
from lakeforge.plan.steps import ConformStep, IngestStep, Plan, SourceLocation, Step, TransformStep

__all__ = [
    "ConformStep",
    "IngestStep",
    "Plan",
    "SourceLocation",
    "Step",
    "TransformStep",
    "build_plan",
]
