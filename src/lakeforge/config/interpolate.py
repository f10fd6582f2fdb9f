"""``${env:VAR}`` and ``${var:name}`` substitution in YAML string values.

Secrets come from the environment (``${env:AWS_SECRET_ACCESS_KEY}``), never from YAML.
Every value an ``${env:NAME}`` resolves to is registered as a secret
(:mod:`lakeforge.redaction`), so outputs print it as ``***``.
``${var:name}`` reads the pipeline's ``vars:`` with the profile's ``vars:`` layered on top,
which is how one job file runs unchanged against a local folder or an S3 bucket.
``$${`` escapes a literal ``${``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import lakeforge.redaction as secrets
from lakeforge.config.yaml_source import KeyPath

_TOKEN = re.compile(r"\$\$\{|\$\{(env|var):([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{([^}]*)\}")


class Unresolved(Exception):
    """A reference that has no value; carries a user-facing message."""


def interpolate_string(value: str, variables: Mapping[str, str], environ: Mapping[str, str]) -> str:
    """Substitute every token in ``value``.

    Args:
        value: the raw string.
        variables: merged pipeline + profile vars.
        environ: the process environment (a mapping, so tests can pass their own).

    A resolved ``${env:NAME}`` value is registered as a secret (see :mod:`lakeforge.redaction`).

    Raises:
        Unresolved: for an unknown var, an unset env var without default, or a bad token.
    """

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        if m.group(4) is not None:
            raise Unresolved(
                f"unknown reference '${{{m.group(4)}}}': use ${{env:NAME}} or ${{var:NAME}}"
            )
        kind, name, default = m.group(1), m.group(2), m.group(3)
        source = environ if kind == "env" else variables
        if name in source:
            resolved = str(source[name])
            if kind == "env":
                secrets.register(resolved)
            return resolved
        if default is not None:
            return default
        if kind == "env":
            raise Unresolved(f"environment variable '{name}' is not set")
        raise Unresolved(f"variable '{name}' is not defined in vars: (pipeline or profile)")

    return _TOKEN.sub(sub, value)


def interpolate_tree(
    data: Any,
    variables: Mapping[str, str],
    on_error: Callable[[KeyPath, str], None],
    environ: Mapping[str, str] | None = None,
    path: KeyPath = (),
    skip: Callable[[KeyPath], bool] = lambda _p: False,
) -> Any:
    """Return a copy of ``data`` with every string interpolated; errors go to ``on_error``."""
    env = os.environ if environ is None else environ
    if skip(path):
        return data
    if isinstance(data, dict):
        return {
            k: interpolate_tree(v, variables, on_error, env, (*path, k), skip)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [
            interpolate_tree(v, variables, on_error, env, (*path, i), skip)
            for i, v in enumerate(data)
        ]
    if isinstance(data, str) and "$" in data:
        try:
            return interpolate_string(data, variables, env)
        except Unresolved as exc:
            on_error(path, str(exc))
            return data
    return data
