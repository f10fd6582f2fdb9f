"""Shared options and the project/profile lookup used by table-level commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from lakeforge.config.loader import DEFAULT_ENV, find_project_root, load_profile

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

F = TypeVar("F", bound=Callable[..., Any])


def env_option(func: F) -> F:
    return click.option(
        "--env",
        "-e",
        default=DEFAULT_ENV,
        show_default=True,
        envvar="LAKEFORGE_ENV",
        help="Environment profile: conf/<env>.yml.",
    )(func)


def project_root() -> Path:
    return find_project_root(Path.cwd()) or Path.cwd()


def session_for(env: str, app: str) -> SparkSession:
    """A session for commands that work on tables by name (sql, history)."""
    from lakeforge.runtime.session import build_session

    root = project_root()
    profile, _ = load_profile(env, root)
    return build_session(profile, root, app)
