"""The training-set plan: every input pinned to one Delta version, as pure data.

:func:`resolve_plan` is the only step that asks the lakehouse anything: it turns each
input of a spec (the label table, each feature table) into a concrete Delta version and
that version's commit timestamp, once. Everything after (build, manifest, reproduce)
works from the :class:`TrainingPlan` alone, so a set built today and rebuilt next year
reads the same versions. "latest" is resolved here and never stored; an explicit
``@N`` (or ``@timestamp``) in the spec is honoured.

The plan is JSON-serialisable (:meth:`TrainingPlan.to_dict` / :meth:`from_dict`): the
manifest stores it, and :mod:`lakeforge.training.reproduce` reads it back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lakeforge.training.spec import TrainingSetSpec
from lakeforge.training.splits import SplitRanges

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PinnedInput:
    """One input table at one Delta version.

    ``role`` is ``labels`` or ``features[i]`` (the spec's position), so a table used twice
    (as labels and as features, or pinned differently) stays two inputs.
    """

    role: str
    table: str
    version: int
    commit_timestamp: str  # ISO 8601, UTC, of the version's commit

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "table": self.table,
            "version": self.version,
            "commit_timestamp": self.commit_timestamp,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PinnedInput:
        return cls(
            role=str(data["role"]),
            table=str(data["table"]),
            version=int(data["version"]),
            commit_timestamp=str(data["commit_timestamp"]),
        )


@dataclass(frozen=True)
class TrainingPlan:
    """What to build: the spec (as plain data), its hash and the pinned inputs."""

    name: str
    spec: dict[str, Any]
    config_hash: str
    labels: PinnedInput
    features: tuple[PinnedInput, ...]
    # (split, first bucket, end bucket) in spec order. Explicit because fractions are
    # turned into consecutive ranges in the order they are written, and JSON tools
    # (sort_keys, some databases) do not keep the order of an object's keys.
    split_ranges: tuple[tuple[str, int, int], ...]
    buckets: int

    @property
    def inputs(self) -> tuple[PinnedInput, ...]:
        return (self.labels, *self.features)

    @property
    def table(self) -> str:
        """The Delta table the set is published to."""
        return f"training.{self.name}"

    def typed_spec(self) -> TrainingSetSpec:
        return TrainingSetSpec.model_validate(self.spec)

    def ranges(self) -> SplitRanges:
        return SplitRanges({n: (lo, hi) for n, lo, hi in self.split_ranges}, self.buckets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec": self.spec,
            "config_hash": self.config_hash,
            "inputs": [i.to_dict() for i in self.inputs],
            "split_ranges": [list(r) for r in self.split_ranges],
            "buckets": self.buckets,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingPlan:
        inputs = [PinnedInput.from_dict(i) for i in data["inputs"]]
        return cls(
            name=str(data["name"]),
            spec=dict(data["spec"]),
            config_hash=str(data["config_hash"]),
            labels=inputs[0],
            features=tuple(inputs[1:]),
            split_ranges=tuple((str(n), int(lo), int(hi)) for n, lo, hi in data["split_ranges"]),
            buckets=int(data["buckets"]),
        )


def split_ranges(spec: TrainingSetSpec) -> tuple[tuple[str, int, int], ...]:
    ranges: SplitRanges = spec.splits.ranges()
    return tuple((name, lo, hi) for name, (lo, hi) in ranges.ranges.items())


def spec_dict(spec: TrainingSetSpec) -> dict[str, Any]:
    """The spec as JSON-ready data, defaults included (what the config hash covers)."""
    return spec.model_dump(mode="json")


def config_hash(spec: TrainingSetSpec) -> str:
    """sha256 of the spec's canonical JSON (sorted keys) and its split ranges, first 16
    hex digits.

    Computed from the parsed spec, not the file, so comments and key order do not count
    but every setting, defaults included, does; the split ranges are added because the
    order of ``fractions`` decides them.
    """
    data = {"spec": spec_dict(spec), "split_ranges": split_ranges(spec)}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def commit_timestamp(spark: SparkSession, table: str, version: int) -> str:
    """The commit time of ``table`` ``version`` from DESCRIBE HISTORY, ISO 8601 UTC.

    Raises:
        TimeTravelError: ``LF-TT-001`` if the history no longer holds the version.
    """
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from lakeforge.errors import Code, TimeTravelError
    from lakeforge.timetravel.versions import translate

    try:
        row = (
            DeltaTable.forName(spark, table)
            .history()
            .where(F.col("version") == version)
            # Microseconds, not a Python datetime: PySpark would hand back local time.
            .select(F.unix_micros("timestamp").alias("us"))
            .first()
        )
    except Exception as exc:
        raise translate(exc, table) from exc
    if row is None:
        raise TimeTravelError(
            Code.VERSION_NOT_FOUND, f"{table}: the Delta history has no version {version}"
        )
    return iso_micros(int(row["us"]))


def iso_micros(micros: int) -> str:
    return (EPOCH + timedelta(microseconds=micros)).isoformat().replace("+00:00", "Z")


def resolve_plan(spark: SparkSession, spec: TrainingSetSpec) -> TrainingPlan:
    """Pin every input of ``spec`` to a Delta version, reading only Delta logs.

    A table named without a version is resolved to its latest version once, even if
    several inputs name it, so they all see the same snapshot.

    Raises:
        RunError, TimeTravelError: a table or a pinned version does not exist.
    """
    from lakeforge.config.table_refs import parse_table_ref
    from lakeforge.steps.versions import resolve_version

    resolved: dict[str, int] = {}
    stamps: dict[tuple[str, int], str] = {}

    def pin(role: str, text: str) -> PinnedInput:
        ref = parse_table_ref(text)
        key = text.strip().lower() if not ref.is_latest else ref.name
        if key not in resolved:
            resolved[key] = resolve_version(spark, text)
        version = resolved[key]
        if (ref.name, version) not in stamps:
            stamps[(ref.name, version)] = commit_timestamp(spark, ref.name, version)
        return PinnedInput(role, ref.name, version, stamps[(ref.name, version)])

    labels = pin("labels", spec.labels.table)
    features = tuple(pin(f"features[{i}]", f.table) for i, f in enumerate(spec.features))
    return TrainingPlan(
        name=spec.name,
        spec=spec_dict(spec),
        config_hash=config_hash(spec),
        labels=labels,
        features=features,
        split_ranges=split_ranges(spec),
        buckets=spec.splits.ranges().buckets,
    )
