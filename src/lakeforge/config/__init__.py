"""Pipeline and profile configuration: YAML -> typed models, with located errors.

No pyspark, boto3 or great_expectations import anywhere in this package, and nothing from
the quality engine: a pipeline with its expectations resolved is loaded by
:func:`lakeforge.plan.load.load_pipeline`.
"""

from lakeforge.config.loader import PipelineConfig, load_pipeline_config, load_profile
from lakeforge.config.models import Pipeline, Profile

__all__ = ["Pipeline", "PipelineConfig", "Profile", "load_pipeline_config", "load_profile"]
