"""Object-storage URIs in config: ``s3://`` read as ``s3a://``, with a note.

Hadoop 3 has no FileSystem for ``s3://`` (that scheme is EMR's EMRFS); its S3
connector is S3A, ``s3a://``. People write ``s3://`` by habit (boto3, the AWS CLI,
Databricks), so a config value that starts with ``s3://`` is read as ``s3a://`` and the
change is reported once, with file, line and key, on the ``lakeforge.config`` logger
(stderr), instead of failing later inside Spark with "No FileSystem for scheme s3".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from lakeforge.config.yaml_source import KeyPath

log = logging.getLogger("lakeforge.config")

S3 = "s3://"
S3A = "s3a://"


def to_s3a(value: str) -> str:
    """``s3://bucket/key`` -> ``s3a://bucket/key``; anything else unchanged."""
    return S3A + value[len(S3) :] if value.startswith(S3) else value


def correct_s3_schemes(
    tree: Any, where: Callable[[KeyPath], str], path: KeyPath = ()
) -> tuple[Any, list[str]]:
    """``tree`` with every string value that starts with ``s3://`` read as ``s3a://``.

    Args:
        tree: interpolated YAML data (dicts, lists, scalars).
        where: renders a key path as ``file:line [key]`` for the note.

    Returns:
        The corrected tree (a copy where something changed) and one note per change,
        each also logged as a warning.
    """
    notes: list[str] = []

    def walk(node: Any, at: KeyPath) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*at, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*at, i)) for i, v in enumerate(node)]
        if isinstance(node, str) and node.startswith(S3):
            fixed = to_s3a(node)
            notes.append(
                f"{where(at)}: {node} is read as {fixed} (Hadoop's S3 connector is s3a://)"
            )
            return fixed
        return node

    fixed = walk(tree, path)
    for note in notes:
        log.warning("note: %s", note)
    return fixed, notes
