"""What every step executor receives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakeforge.config.models import S3Settings


@dataclass(frozen=True)
class StepContext:
    spark: SparkSession
    run_id: str
    project_root: Path
    pipeline_dir: Path
    pipeline: str = ""
    data_env: str | None = None  # training / serving: which environment-bound expectations run
    reports_dir: Path | None = None  # where expectation reports go (None: not written)
    s3: S3Settings | None = None  # the profile's object store (pinned object versions)
