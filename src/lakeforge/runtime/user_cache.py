"""The per-user cache: what every clone of one user shares (like pip's cache).

``$LAKEFORGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/lakeforge``, else ``~/.cache/lakeforge``.
It holds the Maven repository the jar bundles resolve through (``m2/``: a second clone, or
a CI run on a machine that already ran one, fetches nothing) and the JVM class archive
(``cds/``, :mod:`lakeforge.runtime.cds`).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$LAKEFORGE_CACHE_DIR``, ``$XDG_CACHE_HOME/lakeforge`` or ``~/.cache/lakeforge``."""
    explicit = os.environ.get("LAKEFORGE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "lakeforge").resolve()


def maven_repo() -> Path:
    """The Maven repository jar bundles resolve through (shared by the user's clones)."""
    return cache_dir() / "m2"
