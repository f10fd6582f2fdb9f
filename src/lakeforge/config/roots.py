"""Where a pipeline may read from: the project folder plus the profile's ``allowed_roots``.

Sources and ``sql_file`` paths must resolve (symlinks followed) inside one of these
roots; anything else is a config error. URIs with a scheme other than ``file:``
(``s3a://bucket/...``) are not local paths and are checked against URI roots by prefix.
No pyspark import: ``validate`` uses this.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

_GLOB = re.compile(r"[*?\[{]")
# ``..`` as a whole segment or a brace alternative: Hadoop expands ``{a,b}`` and then
# normalises the path, so ``raw/*/../../etc`` or ``raw/{x,../../etc}`` climbs out.
_PARENT = re.compile(r"(?:^|[/{,])\.\.(?:$|[/},])")


def _normalise_uri(uri: str) -> str | None:
    """``scheme://authority/path`` with a lower-case scheme and ``.``/``..`` resolved.

    None when the path climbs above the authority's root (``s3a://b/../x``).
    """
    parsed = urlparse(uri)
    parts: list[str] = []
    for seg in parsed.path.split("/"):
        if seg == "..":
            if not parts:
                return None
            parts.pop()
        elif seg not in ("", "."):
            parts.append(seg)
    norm = "".join("/" + p for p in parts)
    return f"{parsed.scheme.lower()}://{parsed.netloc}{norm}"


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

    Local roots come back as resolved absolute paths (symlinks followed), URI roots with a
    lower-case scheme, ``.``/``..`` resolved and no trailing slash (one that climbs above
    its bucket is dropped).
    """
    out = [str(project_root.resolve())]
    for root in extra:
        local = _local(root)
        if local is None:
            uri = _normalise_uri(root)
            if uri is not None:
                out.append(uri)
            continue
        p = local if local.is_absolute() else project_root / local
        out.append(str(p.resolve()))
    return tuple(dict.fromkeys(out))


def is_inside(path: str, roots: Sequence[str], base: Path | None = None) -> bool:
    """Whether ``path`` (relative paths from ``base``) resolves inside one of ``roots``.

    Local paths are resolved with symlinks followed before the check, so a link inside the
    project that points outside it is outside. Glob characters are fine: the fixed part of
    the path before the first wildcard is what is resolved, and a ``..`` after it (which
    Hadoop would resolve after matching) counts as outside. URIs are compared with ``.``
    and ``..`` resolved and the scheme lower-cased; a URI is inside only a URI root.
    """
    local = _local(path)
    if local is None:
        uri = _normalise_uri(path)
        if uri is None or (_GLOB.search(uri) and _PARENT.search(uri)):
            return False
        return any(uri == r or uri.startswith(r + "/") for r in roots if "://" in r)
    if not local.is_absolute():
        local = (base or Path.cwd()) / local
    fixed_parts: list[str] = []
    for i, part in enumerate(local.parts):
        if _GLOB.search(part):
            if _PARENT.search("/".join(local.parts[i:])):
                return False
            break
        fixed_parts.append(part)
    resolved = os.path.realpath(Path(*fixed_parts)) if fixed_parts else os.path.realpath("/")
    return any(
        resolved == r or resolved.startswith(r.rstrip("/") + "/") for r in roots if "://" not in r
    )
