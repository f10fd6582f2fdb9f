"""A resolved expectation: what the plan carries. Pure data, no Spark, no Great Expectations.

Inline YAML items and suite-file entries both end up as :class:`Expectation`, with the
file and line they came from, so run-time messages point back at the config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lakeforge.config.models import Action
from lakeforge.quality.registry import KINDS, Level


@dataclass(frozen=True)
class Expectation:
    name: str  # unique within the table; used in quarantine reasons and results
    type: str  # a Great Expectations expectation type, e.g. expect_column_values_to_be_between
    kwargs_json: str  # canonical JSON of the kwargs (frozen dataclasses want hashable fields)
    action: Action
    environments: tuple[str, ...] = ()  # empty: every environment
    origin: str = ""  # file:line
    suite: str = "inline"  # the suite file it came from, or "inline"
    meta_json: str = field(default="{}", compare=False)

    def __post_init__(self) -> None:
        # Parsed once: whoever builds one with the action's name gets the enum.
        object.__setattr__(self, "action", Action(self.action))

    @property
    def kwargs(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.kwargs_json)
        return value

    @property
    def meta(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.meta_json)
        return value

    @property
    def level(self) -> Level:
        return KINDS[self.type].level

    def applies(self, environment: str | None) -> bool:
        """Environment-restricted expectations run only when that environment is chosen."""
        return not self.environments or environment in self.environments


def default_name(type_: str, kwargs: dict[str, Any]) -> str:
    """A readable, stable name: the type without ``expect_`` plus the column(s)."""
    base = type_.removeprefix("expect_")
    cols = [kwargs[k] for k in ("column", "column_A", "column_B") if isinstance(kwargs.get(k), str)]
    if isinstance(kwargs.get("column_list"), list):
        cols += [str(c) for c in kwargs["column_list"]]
    return ":".join([base, *cols]) if cols else base
