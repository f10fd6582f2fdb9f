"""Load a pipeline for planning: its config (:mod:`lakeforge.config.loader`) plus its
expectations resolved against the quality registry (:mod:`lakeforge.quality.resolve`).

Config issues and expectation issues are collected into one list and raised together as
one :class:`ConfigError`, each with file, line and key path. No pyspark import: this is
what ``validate`` and ``plan`` run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lakeforge.config.loader import (
    DEFAULT_ENV,
    PipelineConfig,
    collect_pipeline_config,
    config_digest,
    display_path,
)
from lakeforge.errors import ConfigError
from lakeforge.quality.resolve import resolve_expectations
from lakeforge.quality.spec import Expectation


@dataclass(frozen=True)
class LoadedPipeline(PipelineConfig):
    """A pipeline with its profile layered on and its expectations resolved, ready to be
    planned. ``config_hash`` also covers the expectations (suite files are config)."""

    # silver.<name> -> its expectations (suite files expanded), in declaration order
    expectations: Mapping[str, tuple[Expectation, ...]] = field(default_factory=dict)


def load_pipeline(
    path: str | Path,
    env: str = DEFAULT_ENV,
    conf_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedPipeline:
    """Parse, interpolate, validate and cross-check a pipeline file, and resolve its
    expectations.

    Args:
        path: the pipeline YAML.
        env: name of the profile in ``conf/`` to layer on top.
        conf_dir: explicit profile folder (default: ``conf/`` of the project root).
        environ: environment for ``${env:...}`` (default: ``os.environ``).

    Returns:
        The loaded pipeline.

    Raises:
        ConfigError: every problem found (config and expectations), located.
    """
    config, doc, issues = collect_pipeline_config(path, env, conf_dir, environ)
    if config is None or doc is None:
        raise ConfigError(issues)
    expectations = resolve_expectations(config.pipeline, config.file, doc, issues, display_path)
    if issues:
        raise ConfigError(issues)
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(PipelineConfig)}
    fields["config_hash"] = config_digest(
        config.file,
        config.profile_file,
        config.gold_sql,
        (repr(expectations[name]).encode() for name in sorted(expectations)),
    )
    return LoadedPipeline(**fields, expectations=expectations)
