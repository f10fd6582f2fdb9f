"""Typed models of the YAML a user writes: pipelines (``jobs/``) and profiles (``conf/``).

These are the boundary: pydantic v2 with ``extra="forbid"`` so a typo fails loudly with
its line. Inside lakeforge the plan works on frozen dataclasses built from these.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LAYERS = ("bronze", "silver", "gold")

# Spark SQL type names we accept in a declared schema. Checked without a JVM so that
# `validate` catches `bigintt` before Spark starts; Spark parses the same strings later.
_SIMPLE_TYPES = {
    "string",
    "boolean",
    "tinyint",
    "byte",
    "smallint",
    "short",
    "int",
    "integer",
    "bigint",
    "long",
    "float",
    "real",
    "double",
    "date",
    "timestamp",
    "timestamp_ntz",
    "timestamp_ltz",
    "binary",
}
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$|^decimal$")


def check_spark_type(value: str) -> str:
    """Normalise and check a Spark SQL simple type name (``decimal(p,s)`` included)."""
    t = value.strip().lower()
    if t in _SIMPLE_TYPES:
        return t
    m = _DECIMAL.match(t)
    if m:
        precision = int(m.group(1) or 10)
        scale = int(m.group(2) or 0)
        if not 1 <= precision <= 38 or scale > precision:
            raise ValueError(
                f"decimal({precision},{scale}) is out of range (precision 1..38, scale <= precision)"
            )
        return f"decimal({precision},{scale})"
    raise ValueError(
        f"unknown column type '{value}'; use one of {', '.join(sorted(_SIMPLE_TYPES))} or decimal(p,s)"
    )


Identifier = Annotated[str, Field(pattern=IDENTIFIER.pattern)]
JarBundle = Literal["delta"]


class Strict(BaseModel):
    """Base for every YAML-facing model: unknown keys are errors, values immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SourceSpec(Strict):
    """Raw files that feed a bronze table."""

    format: Literal["csv", "json", "parquet", "text"]
    path: str = Field(
        min_length=1, description="file, folder or glob; relative paths are from the project root"
    )
    options: dict[str, str] = Field(
        default_factory=dict, description="passed to Spark's reader as-is"
    )

    @field_validator("options", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # YAML turns `header: true` into a bool; Spark's reader options are strings.
        if isinstance(value, dict):
            return {
                k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()
            }
        return value


class BronzeTable(Strict):
    """Append-only landing of raw files, typed loosely (every CSV column a string)."""

    description: str | None = None
    source: SourceSpec
    mode: Literal["append"] = "append"


class ColumnSpec(Strict):
    """One declared silver column. ``amount: decimal(12,2)`` is shorthand for ``{type: ...}``."""

    type: str
    nullable: bool = True
    source: str | None = Field(default=None, description="input column name if it differs")
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return check_spark_type(value)


class SilverTable(Strict):
    """A conformed table: declared schema enforced; rows that fail go to quarantine."""

    description: str | None = None
    from_: str = Field(alias="from", description="upstream table, e.g. bronze.orders")
    columns: dict[Identifier, ColumnSpec] = Field(min_length=1)
    keys: list[str] = Field(default_factory=list, description="business keys (non-null)")
    mode: Literal["overwrite", "append"] = "overwrite"

    @model_validator(mode="after")
    def _keys_are_columns(self) -> SilverTable:
        missing = [k for k in self.keys if k not in self.columns]
        if missing:
            raise ValueError(f"keys {missing} are not declared in columns")
        return self


class GoldTable(Strict):
    """A mart built by SQL over other tables (referenced as ``layer.table``)."""

    description: str | None = None
    sql: str | None = None
    sql_file: str | None = Field(default=None, description="path relative to the pipeline file")
    mode: Literal["overwrite", "append"] = "overwrite"
    depends_on: list[str] = Field(default_factory=list, description="extra upstream tables")

    @model_validator(mode="after")
    def _one_query(self) -> GoldTable:
        if (self.sql is None) == (self.sql_file is None):
            raise ValueError("give exactly one of 'sql' or 'sql_file'")
        return self


class Pipeline(Strict):
    """A whole job file: ``jobs/<name>/pipeline.yml``."""

    name: Identifier
    description: str | None = None
    vars: dict[Identifier, str] = Field(default_factory=dict)
    bronze: dict[Identifier, BronzeTable] = Field(default_factory=dict)
    silver: dict[Identifier, SilverTable] = Field(default_factory=dict)
    gold: dict[Identifier, GoldTable] = Field(default_factory=dict)

    @field_validator("vars", mode="before")
    @classmethod
    def _stringify_vars(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: str(v) for k, v in value.items()}
        return value


class SparkSettings(Strict):
    master: str | None = Field(default="local[*]", description="None: leave it to spark-submit")
    app_name: str = "lakeforge"
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()
            }
        return value


class MetastoreSettings(Strict):
    """Where table names live. ``derby``: an embedded Hive metastore in a local folder."""

    kind: Literal["derby", "hive", "in-memory"] = "derby"
    path: str = "lakehouse/metastore_db"
    uri: str | None = Field(default=None, description="thrift:// URI when kind is 'hive'")


class Profile(Strict):
    """An environment profile: ``conf/<env>.yml``. Layered over every pipeline."""

    description: str | None = None
    spark: SparkSettings = Field(default_factory=SparkSettings)
    warehouse: str = "lakehouse/warehouse"
    metastore: MetastoreSettings = Field(default_factory=MetastoreSettings)
    jar_bundles: list[JarBundle] = Field(default_factory=lambda: list[JarBundle](["delta"]))
    jars_dir: str = ".lakeforge/jars"
    vars: dict[Identifier, str] = Field(default_factory=dict)

    @field_validator("vars", mode="before")
    @classmethod
    def _stringify_vars(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: str(v) for k, v in value.items()}
        return value
