"""Where a pipeline may read from: the project folder plus the profile's ``allowed_roots``.

Sources and ``sql_file`` paths must resolve (symlinks followed) inside one of these
roots; anything else is a config error. URIs with a scheme other than ``file:``
(``s3a://bucket/...``) are not local paths and are checked against URI roots by prefix.
No pyspark import: ``validate`` uses this.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse


def _local(path: str) -> Path | None:
    """The local filesystem path of ``path`` (plain or ``file:``), or None for other schemes."""
    if "://" not in path and not path.startswith("file:"):
        return Path(path).expanduser()
    parsed = urlparse(path)
    if parsed.scheme != "file":
        return None
    return Path(parsed.path)


def resolve_roots(project_root: Path, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The allowed roots: the project root, then each extra one (relative = from the project).

    Local roots come back as resolved absolute paths (symlinks followed), URI roots as given
    without a trailing slash.
    """
    out = [str(project_root.resolve())]
    for root in extra:
        local = _local(root)
        if local is None:
            out.append(root.rstrip("/"))
            continue
        p = local if local.is_absolute() else project_root / local
        out.append(str(p.resolve()))
    return tuple(dict.fromkeys(out))


def is_inside(path: str, roots: Sequence[str], base: Path | None = None) -> bool:
    """Whether ``path`` (relative paths from ``base``) resolves inside one of ``roots``.

    Local paths are resolved with symlinks followed before the check, so a link inside the
    project that points outside it is outside. Glob characters are fine: the fixed part of
    the path before the first wildcard is what is resolved.
    """
    local = _local(path)
    if local is None:
        uri = path.rstrip("/")
        return any(uri == r or uri.startswith(r + "/") for r in roots if "://" in r)
    if not local.is_absolute():
        local = (base or Path.cwd()) / local
    fixed_parts = []
    for part in local.parts:
        if any(ch in part for ch in "*?[{"):
            break
        fixed_parts.append(part)
    resolved = os.path.realpath(Path(*fixed_parts)) if fixed_parts else os.path.realpath("/")
    return any(
        resolved == r or resolved.startswith(r.rstrip("/") + "/") for r in roots if "://" not in r
    )
