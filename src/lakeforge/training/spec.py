"""The training-set spec (``jobs/<job>/training/<name>.yml``): typed, checked without a JVM.

::

    name: late_delivery                    # output table training.late_delivery
    labels:
      table: silver.orders                 # read VERSION AS OF a version fixed at plan time
      keys: [customer_id]                  # entity keys (typed columns)
      event_time: order_ts
      columns: [is_late]                   # the label column(s)
      filter: "status IN ('completed', 'returned')"
    features:
      - table: gold.customer_value
        keys: [customer_id]                # same number as labels.keys, matched in order
        event_time: last_order_ts
        features: [orders, spend]
        lag: 1h                            # only values at least this old at label time
        ttl: 90d                           # ... and at most this old
        created_at: _lf_ingested_at        # hide rows that arrived after the label time
        defaults: {orders: 0}
        prefix: cv_
    splits:
      salt: "2026-q4"
      by: [customer_id]                    # default: labels.keys
      fractions: {train: 0.8, validation: 0.1, test: 0.1}   # or buckets: {train: [0, 8000], ...}

Durations are ``<n>s``, ``<n>m``, ``<n>h`` or ``<n>d``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from lakeforge.config.models import Identifier, Strict
from lakeforge.errors import ConfigError

DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
TABLE = r"^(bronze|silver|gold)\.[A-Za-z_][A-Za-z0-9_]*(@[^\s]+)?$"


def check_table_ref(value: str) -> str:
    """``layer.table[@version|@timestamp]``, checked like ``lakeforge sql`` reads it."""
    from lakeforge.config.table_refs import parse_table_ref

    parse_table_ref(value)  # ValueError: a malformed @version / @timestamp
    return value


def parse_duration(value: str) -> timedelta:
    m = DURATION.match(value)
    if not m:
        raise ValueError(f"'{value}' is not a duration like 30s, 15m, 1h or 90d")
    return timedelta(**{UNITS[m.group(2)]: int(m.group(1))})


class LabelSource(Strict):
    table: str = Field(pattern=TABLE, description="layer.table, optionally @version")
    keys: list[Identifier] = Field(min_length=1)
    event_time: Identifier
    columns: list[Identifier] = Field(min_length=1, description="the label column(s)")
    filter: str | None = Field(default=None, description="SQL condition on label rows")

    _table_ref = field_validator("table")(check_table_ref)


class FeatureSourceSpec(Strict):
    table: str = Field(pattern=TABLE)
    keys: list[Identifier] = Field(min_length=1)
    event_time: Identifier
    features: list[Identifier] = Field(min_length=1)
    lag: str = "0s"
    ttl: str | None = None
    created_at: Identifier | None = None
    defaults: dict[Identifier, Any] = Field(default_factory=dict)
    prefix: str = ""

    _table_ref = field_validator("table")(check_table_ref)

    @field_validator("lag", "ttl")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _defaults_known(self) -> FeatureSourceSpec:
        unknown = [k for k in self.defaults if k not in self.features]
        if unknown:
            raise ValueError(f"defaults for columns that are not features: {unknown}")
        return self

    @property
    def lag_delta(self) -> timedelta:
        return parse_duration(self.lag)

    @property
    def ttl_delta(self) -> timedelta | None:
        return None if self.ttl is None else parse_duration(self.ttl)


class SplitSpec(Strict):
    salt: str = Field(min_length=1, description="changes every assignment: keep it fixed")
    by: list[Identifier] = Field(default_factory=list, description="default: labels.keys")
    fractions: dict[Identifier, float] | None = None
    buckets: dict[Identifier, tuple[int, int]] | None = Field(
        default=None, description="bucket ranges [start, end) out of 10000"
    )

    @model_validator(mode="after")
    def _one_way(self) -> SplitSpec:
        if (self.fractions is None) == (self.buckets is None):
            raise ValueError("give either fractions or buckets")
        self.ranges()  # raises ValueError: gaps, overlaps, sums
        return self

    def ranges(self) -> Any:
        from lakeforge.training.splits import SplitRanges

        if self.fractions is not None:
            return SplitRanges.from_fractions(self.fractions)
        assert self.buckets is not None
        return SplitRanges(dict(self.buckets))


class TrainingSetSpec(Strict):
    name: Identifier
    description: str | None = None
    labels: LabelSource
    features: list[FeatureSourceSpec] = Field(min_length=1)
    splits: SplitSpec

    @model_validator(mode="after")
    def _consistent(self) -> TrainingSetSpec:
        n = len(self.labels.keys)
        for i, f in enumerate(self.features):
            if len(f.keys) != n:
                raise ValueError(
                    f"features[{i}] ({f.table}) has {len(f.keys)} keys, labels have {n}"
                )
        seen: dict[str, str] = {c: "labels" for c in (*self.labels.keys, *self.labels.columns)}
        seen[self.labels.event_time] = "labels"
        for f in self.features:
            for c in f.features:
                out = f.prefix + c
                if out in seen:
                    raise ValueError(
                        f"output column '{out}' of {f.table} clashes with {seen[out]}; set a prefix"
                    )
                seen[out] = f.table
        if "split" in seen:
            # The published table adds a column `split` (its partition column).
            raise ValueError(f"output column 'split' of {seen['split']} is reserved; rename it")
        unknown = [c for c in self.splits.by if c not in self.labels.keys]
        if unknown:
            raise ValueError(f"splits.by {unknown} must be among labels.keys")
        return self

    @property
    def split_keys(self) -> list[str]:
        return list(self.splits.by or self.labels.keys)


def load_training_spec(path: str | Path) -> TrainingSetSpec:
    """Parse and check a spec file; every problem with file:line (no Spark).

    Raises:
        ConfigError: the located problems.
    """
    from lakeforge.config.loader import _validate, display_path
    from lakeforge.config.yaml_source import load_yaml

    file = Path(path).resolve()
    doc, issues = load_yaml(file, display_path(file))
    spec = None
    if doc is not None:
        spec = _validate(TrainingSetSpec, doc.data, doc, issues)
    if issues or spec is None:
        raise ConfigError(issues)
    return spec
