"""The plan's vocabulary: frozen dataclasses that are pure data.

A plan says what will run, in which order, reading and writing what, with which write
mode, and where in the YAML each step was declared. Executing and explaining a plan are
separate visitors over the same data (``pipeline.executor``, ``plan.explain``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lakeforge.config.models import BronzeTable, GoldTable, S3Settings, SilverTable
from lakeforge.quality.spec import Expectation


@dataclass(frozen=True)
class SourceLocation:
    """Where a step was declared, so runtime errors point back at the YAML."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class IngestStep:
    """Raw files -> bronze (append-only)."""

    table: str
    source_path: str
    source_format: str
    spec: BronzeTable = field(repr=False, compare=False)
    location: SourceLocation
    kind: str = "ingest"
    layer: str = "bronze"
    allowed_roots: tuple[str, ...] = ()  # the profile's allowed_roots (besides the project)

    @property
    def reads(self) -> tuple[str, ...]:
        return (f"{self.source_format}:{self.source_path}",)

    @property
    def mode(self) -> str:
        return self.spec.mode

    @property
    def upstream(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class ConformStep:
    """bronze/silver -> silver with the declared schema enforced (failures quarantined)."""

    table: str
    source_table: str
    source_ref: str  # source_table, possibly pinned: bronze.orders@12
    spec: SilverTable = field(repr=False, compare=False)
    location: SourceLocation
    expectations: tuple[Expectation, ...] = ()
    kind: str = "conform"
    layer: str = "silver"

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.source_ref,)

    @property
    def mode(self) -> str:
        return self.spec.mode

    @property
    def upstream(self) -> tuple[str, ...]:
        return (self.source_table,)

    @property
    def quarantine_table(self) -> str:
        return f"{self.table}__quarantine"


@dataclass(frozen=True)
class TransformStep:
    """Tables -> gold by SQL or by a Python function."""

    table: str
    sql: str | None
    inputs: tuple[str, ...]
    spec: GoldTable = field(repr=False, compare=False)
    location: SourceLocation
    kind: str = "transform"
    layer: str = "gold"

    @property
    def reads(self) -> tuple[str, ...]:
        return self.inputs

    @property
    def mode(self) -> str:
        return self.spec.mode

    @property
    def upstream(self) -> tuple[str, ...]:
        return self.inputs


Step = IngestStep | ConformStep | TransformStep


@dataclass(frozen=True)
class Plan:
    """An ordered, side-effect-free description of one pipeline run."""

    pipeline: str
    env: str
    config_hash: str
    file: str
    steps: tuple[Step, ...]
    directory: str = "."  # the pipeline file's folder (python transforms import from it)
    # Where the tables live: an s3a:// warehouse makes a run hold a writer lease there.
    warehouse: str = ""
    s3: S3Settings | None = None

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(s.table for s in self.steps)

    def writes(self, table: str) -> Step:
        for step in self.steps:
            if step.table == table:
                return step
        raise KeyError(table)
