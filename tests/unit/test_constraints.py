"""The pinned set is the installed set: ``./dev setup`` installs with ``-c constraints.txt``,
which only constrains; a dependency nobody pinned floats to whatever PyPI has that day, and a
pin nothing needs hides that it is unused. Either way a fresh machine would not get the
environment the suite ran in."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

CONSTRAINTS = Path(__file__).resolve().parents[2] / "constraints.txt"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pinned() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[_norm(name)] = version.strip()
    return pins


def _installed() -> dict[str, str]:
    dists = {_norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
    # The project itself, and the installer's own tools, are not dependencies.
    for own in ("lakeforge", "pip", "setuptools", "wheel"):
        dists.pop(own, None)
    return dists


def test_every_installed_distribution_is_pinned_at_its_version() -> None:
    pinned, installed = _pinned(), _installed()
    unpinned = sorted(set(installed) - set(pinned))
    assert not unpinned, f"installed but not pinned in constraints.txt: {unpinned}"
    differ = {n: (pinned[n], v) for n, v in installed.items() if pinned.get(n) != v}
    assert not differ, f"pinned != installed: {differ}"


def test_every_pin_is_installed() -> None:
    unused = sorted(set(_pinned()) - set(_installed()))
    assert not unused, f"pinned in constraints.txt but not installed: {unused}"
