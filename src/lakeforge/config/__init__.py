"""Pipeline and profile configuration: YAML -> typed models, with located errors.

No pyspark, boto3 or great_expectations import anywhere in this package.
"""

from lakeforge.config.loader import LoadedPipeline, load_pipeline, load_profile
from lakeforge.config.models import Pipeline, Profile

__all__ = ["LoadedPipeline", "Pipeline", "Profile", "load_pipeline", "load_profile"]
