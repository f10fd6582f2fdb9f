"""Typed models of the YAML a user writes: pipelines (``jobs/``) and profiles (``conf/``).

These are the boundary: pydantic v2 with ``extra="forbid"`` so a typo fails loudly with
its line. Inside lakeforge the plan works on frozen dataclasses built from these.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

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
JarBundle = Literal["delta", "avro", "s3", "postgres"]


class Strict(BaseModel):
    """Base for every YAML-facing model: unknown keys are errors, values immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Evolution = Literal["fail", "add_columns"]


class WriteMode(StrEnum):
    """How a silver or gold step writes its table: parsed once here, then each mode is one
    write strategy (``lakeforge.write.strategy_for``)."""

    OVERWRITE = "overwrite"
    APPEND = "append"
    MERGE = "merge"
    SCD2 = "scd2"


def _stringify_options(value: Any) -> Any:
    # YAML turns `header: true` into a bool; Spark's reader options are strings.
    if isinstance(value, dict):
        return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}
    return value


# Python's codec name -> the charset name Spark 4's CSV/JSON readers accept.
SPARK_CHARSETS = {
    "utf-8": "utf-8",
    "iso8859-1": "iso-8859-1",
    "ascii": "us-ascii",
    "utf-16": "utf-16",
    "utf-16-be": "utf-16be",
    "utf-16-le": "utf-16le",
    "utf-32": "utf-32",
}


class SourceSpec(Strict):
    """Raw files that feed a bronze table."""

    format: Literal["csv", "json", "parquet", "avro", "text"]
    path: str = Field(
        min_length=1, description="file, folder or glob; relative paths are from the project root"
    )
    options: dict[str, str] = Field(
        default_factory=dict, description="passed to Spark's reader as-is"
    )
    schema_: dict[Identifier, str] | None = Field(
        default=None,
        alias="schema",
        description="declared read schema (column: type); default: CSV all strings, others inferred",
    )
    encoding: str = Field(
        default="utf-8",
        description="text encoding of csv/json files (utf-8, latin1, us-ascii, utf-16...)",
    )
    versions: dict[str, str] = Field(
        default_factory=dict,
        description="s3a:// sources: object URI -> version id to ingest instead of the "
        "latest (also a version of a key deleted since)",
    )

    @field_validator("versions")
    @classmethod
    def _object_versions(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for uri, version in value.items():
            fixed = "s3a://" + uri[len("s3://") :] if uri.startswith("s3://") else uri
            if not fixed.startswith("s3a://") or "/" not in fixed[len("s3a://") :]:
                raise ValueError(f"versions: {uri!r} is not an s3a://bucket/key URI")
            if not str(version).strip():
                raise ValueError(f"versions: {uri!r} has an empty version id")
            out[fixed] = str(version).strip()
        return out

    @model_validator(mode="after")
    def _versions_need_object_storage(self) -> SourceSpec:
        if self.versions and not self.path.startswith("s3a://"):
            raise ValueError("versions: pins object versions, so the path must be s3a://")
        return self

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            name = codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        if name not in SPARK_CHARSETS:
            raise ValueError(
                f"encoding {value!r} is not one Spark's readers accept: "
                "utf-8, iso-8859-1 (latin1), us-ascii, utf-16, utf-16be, utf-16le, utf-32"
            )
        return value

    @field_validator("options", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return _stringify_options(value)

    @field_validator("schema_")
    @classmethod
    def _known_types(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        return {name: check_spark_type(t) for name, t in value.items()}


class BronzeTable(Strict):
    """Append-only landing of raw files, each file exactly once."""

    description: str | None = None
    source: SourceSpec
    mode: Literal["append"] = "append"
    on_changed_file: Literal["fail", "reingest"] = Field(
        default="fail",
        description="a file already ingested whose size or modification time changed",
    )
    schema_evolution: Evolution = Field(
        default="fail", description="new columns in arriving files: fail, or add them"
    )


class ColumnSpec(Strict):
    """One declared silver column. ``amount: decimal(12,2)`` is shorthand for ``{type: ...}``."""

    type: str
    nullable: bool = True
    source: str | None = Field(default=None, description="input column name if it differs")
    optional: bool = Field(
        default=False,
        description="the input may lack this column (e.g. added to the feed later): null then",
    )
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return check_spark_type(value)


class Scd2Spec(Strict):
    """Slowly changing dimension, type 2: a new row per change, old rows closed."""

    track: list[str] | None = Field(
        default=None, description="columns whose change opens a new version (default: all non-key)"
    )


class Action(StrEnum):
    """What a failed expectation does: record it, drop the row (kept in the quarantine,
    counted as dropped), quarantine the row, or stop the step before any commit."""

    WARN = "warn"
    DROP = "drop"
    QUARANTINE = "quarantine"
    FAIL = "fail"

    def __repr__(self) -> str:
        # As the bare string it replaced: a step's spec hash (which includes the
        # expectations' repr) stays the same, so existing tables are not rebuilt.
        return repr(self.value)

    @property
    def sets_aside(self) -> bool:
        """A failing row leaves the table (for the quarantine)."""
        return self in (Action.DROP, Action.QUARANTINE)


class ExpectationItem(Strict):
    """One entry of a table's ``expectations:`` list, in one of three shapes::

        - expect_column_values_to_be_between: {column: amount, min_value: 0}
          action: quarantine            # warn (default) | drop | quarantine | fail
          name: amount_not_negative     # default: the type and column
          environments: [training]      # default: every environment
        - {type: expect_column_values_to_not_be_null, kwargs: {column: id}}
        - suite: quality/orders.json    # a Great Expectations 1.x suite file
          action: warn                  # for its entries without meta.lakeforge.action

    Types and kwargs are checked against lakeforge's registry after parsing (the loader
    knows file and line); here only the shape is.
    """

    type: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    suite: str | None = Field(default=None, description="path relative to the pipeline file")
    action: Action | None = None
    name: Identifier | None = None
    environments: list[Identifier] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        types = [k for k in value if isinstance(k, str) and k.startswith("expect_")]
        if len(types) > 1:
            raise ValueError(f"one expectation per list item (found {', '.join(types)})")
        if types:
            rest = {k: v for k, v in value.items() if k != types[0]}
            if "type" in rest or "kwargs" in rest:
                raise ValueError("give `expect_...: {kwargs}` or `type:` + `kwargs:`, not both")
            return {**rest, "type": types[0], "kwargs": value[types[0]] or {}}
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ExpectationItem:
        if (self.type is None) == (self.suite is None):
            raise ValueError("an expectation item is `expect_<type>: {kwargs}` or `suite: path`")
        if self.suite is not None and (self.kwargs or self.name or self.meta):
            raise ValueError("a suite item takes only suite, action and environments")
        return self


class SilverTable(Strict):
    """A conformed table: declared schema enforced; rows that fail go to quarantine."""

    description: str | None = None
    from_: str = Field(
        alias="from", description="upstream table, e.g. bronze.orders (or bronze.orders@12)"
    )
    columns: dict[Identifier, ColumnSpec] = Field(min_length=1)
    keys: list[str] = Field(
        default_factory=list, description="business keys: non-null, one row per key"
    )
    sequence_by: str | None = Field(
        default=None,
        description="ordering column: the latest row per key wins; older (late) rows never "
        "overwrite newer ones",
    )
    mode: WriteMode = WriteMode.OVERWRITE
    delete_when: str | None = Field(
        default=None, description="merge only: SQL condition on a source row that deletes its key"
    )
    scd2: Scd2Spec | None = None
    schema_evolution: Evolution = "fail"
    expectations: list[ExpectationItem] = Field(
        default_factory=list,
        description="data quality checks on the conformed rows, each with an action",
    )
    verify_counts: bool = Field(
        default=False,
        description="also count landed / quarantined / deduplicated rows in a separate pass "
        "over the input and check them against the commits (costs one more read and shuffle)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SilverTable:
        missing = [k for k in self.keys if k not in self.columns]
        if missing:
            raise ValueError(f"keys {missing} are not declared in columns")
        if self.sequence_by is not None and self.sequence_by not in self.columns:
            raise ValueError(f"sequence_by '{self.sequence_by}' is not declared in columns")
        if self.mode in (WriteMode.MERGE, WriteMode.SCD2) and not self.keys:
            raise ValueError(f"mode {self.mode} needs keys")
        if self.mode is WriteMode.SCD2 and self.sequence_by is None:
            raise ValueError("mode scd2 needs sequence_by (the column that orders versions)")
        if self.delete_when is not None and self.mode is not WriteMode.MERGE:
            raise ValueError("delete_when applies to mode merge only")
        if self.scd2 is not None and self.mode is not WriteMode.SCD2:
            raise ValueError("scd2: settings apply to mode scd2 only")
        if self.scd2 is not None and self.scd2.track:
            unknown = [c for c in self.scd2.track if c not in self.columns]
            if unknown:
                raise ValueError(f"scd2.track columns {unknown} are not declared in columns")
        return self


class GoldTable(Strict):
    """A mart built by SQL over other tables (referenced as ``layer.table``), or by Python."""

    description: str | None = None
    sql: str | None = None
    sql_file: str | None = Field(default=None, description="path relative to the pipeline file")
    python: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="module:function(spark, inputs) -> DataFrame; inputs maps table name to "
        "DataFrame",
    )
    mode: WriteMode = WriteMode.OVERWRITE  # scd2 is refused below: silver only
    keys: list[str] = Field(default_factory=list, description="merge: upsert by these columns")
    depends_on: list[str] = Field(
        default_factory=list,
        description="upstream tables the SQL does not name (for python: its inputs)",
    )

    @model_validator(mode="after")
    def _one_query(self) -> GoldTable:
        given = [k for k in ("sql", "sql_file", "python") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'sql', 'sql_file' or 'python'")
        if self.mode is WriteMode.SCD2:
            raise ValueError("mode scd2 applies to silver tables; gold: overwrite, append or merge")
        if self.mode is WriteMode.MERGE and not self.keys:
            raise ValueError("mode merge needs keys")
        if self.python is not None and not self.depends_on:
            raise ValueError("a python transform lists its input tables in depends_on")
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
    class_archive: bool = Field(
        default=True,
        description="map the JVM class archive that `lakeforge jars warm` made, when there "
        "is one (a faster driver start; lakeforge.runtime.cds)",
    )

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()
            }
        return value


# Keys that would put a credential into YAML. Refused by name, with where credentials
# come from instead, rather than as just another unknown key.
CREDENTIAL_IN_YAML = "credential_in_yaml"
_CREDENTIAL_KEYS = re.compile(r"(?i)(secret|password|token|access[_.-]?key|credential|session)")


class MetastoreSettings(Strict):
    """Where table names live.

    ``derby``: an embedded Hive metastore in a local folder; one process at a time.
    ``postgres``: Spark's Hive metastore in a PostgreSQL database, shared by any number of
    processes (runs, ``lakeforge sql``, ``lakeforge serve``); the password comes from
    ``PGPASSWORD`` or a pgpass file (``PGPASSFILE``, ``~/.pgpass``), never from YAML.
    ``hive``: a running metastore service (``thrift://``). ``in-memory``: names last as
    long as the process.
    """

    kind: Literal["derby", "hive", "in-memory", "postgres"] = "derby"
    path: str = "lakehouse/metastore_db"
    uri: str | None = Field(default=None, description="thrift:// URI when kind is 'hive'")
    host: str | None = Field(default=None, description="PostgreSQL host when kind is 'postgres'")
    port: int = Field(default=5432, ge=1, le=65535)
    database: str = "metastore"
    user: str | None = Field(default=None, description="PostgreSQL role when kind is 'postgres'")

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if _CREDENTIAL_KEYS.search(str(key)) or str(key).lower() in ("password", "pass"):
                    raise PydanticCustomError(
                        CREDENTIAL_IN_YAML,
                        "'{key}': credentials are never read from YAML; the metastore "
                        "database's password comes from PGPASSWORD or a pgpass file "
                        "(PGPASSFILE, ~/.pgpass)",
                        {"key": str(key)},
                    )
        return data

    @model_validator(mode="after")
    def _postgres_needs_where(self) -> MetastoreSettings:
        if self.kind == "postgres" and not (self.host and self.user):
            raise ValueError("metastore kind 'postgres' needs host and user")
        return self


class S3Settings(Strict):
    """How Spark (S3A) and boto3 reach an S3-compatible store: MinIO, SeaweedFS or AWS.

    TLS follows the endpoint's scheme (https:// on, http:// off; AWS always https); a
    private CA goes where the JVM and boto3 look for one (a trust store, AWS_CA_BUNDLE).
    Credentials are never part of it: they come from ``AWS_ACCESS_KEY_ID`` /
    ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``), an AWS profile
    (``AWS_PROFILE``) or the default provider chain (instance or container roles), in
    the driver JVM and in boto3 alike.
    """

    endpoint: str | None = Field(
        default=None,
        description="http(s)://host:port of MinIO / SeaweedFS; None: AWS's regional endpoint",
    )
    region: str = "us-east-1"
    path_style: bool = Field(
        default=False, description="bucket in the path (MinIO, SeaweedFS), not the host name"
    )
    multipart_threshold_mb: int = Field(
        default=64, ge=5, le=5120, description="`lakeforge land` uploads larger files in parts"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if _CREDENTIAL_KEYS.search(str(key)):
                    # Its own error type, so the loader can point at the key's line.
                    raise PydanticCustomError(
                        CREDENTIAL_IN_YAML,
                        "'{key}': credentials are never read from YAML; set "
                        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use "
                        "the default provider chain (instance or container role)",
                        {"key": str(key)},
                    )
        return data

    @field_validator("endpoint")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None  # AWS: ${env:LAKEFORGE_S3_ENDPOINT:-} left empty
        if not re.match(r"^https?://[^/\s]+/?$", value):
            raise ValueError(f"endpoint {value!r} must be http://host:port or https://host:port")
        return value.rstrip("/")

    @property
    def tls(self) -> bool:
        """True unless the endpoint is plain http://."""
        return not (self.endpoint or "").startswith("http://")


class Profile(Strict):
    """An environment profile: ``conf/<env>.yml``. Layered over every pipeline."""

    description: str | None = None
    spark: SparkSettings = Field(default_factory=SparkSettings)
    warehouse: str = "lakehouse/warehouse"
    metastore: MetastoreSettings = Field(default_factory=MetastoreSettings)
    jar_bundles: list[JarBundle] = Field(default_factory=lambda: list[JarBundle](["delta", "avro"]))
    jars_dir: str = ".lakeforge/jars"
    s3: S3Settings | None = Field(
        default=None,
        description="object storage for s3a:// warehouses and raw zones (needs jar bundle s3)",
    )
    vars: dict[Identifier, str] = Field(default_factory=dict)
    allowed_roots: list[str] = Field(
        default_factory=list,
        description="where sources and sql_file may be besides the project folder: local "
        "folders (relative = from the project root) or URI prefixes such as s3a://bucket/raw",
    )

    @field_validator("vars", mode="before")
    @classmethod
    def _stringify_vars(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: str(v) for k, v in value.items()}
        return value

    @model_validator(mode="before")
    @classmethod
    def _postgres_needs_its_driver(cls, data: Any) -> Any:
        # A PostgreSQL metastore means PostgreSQL's JDBC driver, listed or not.
        if not isinstance(data, dict) or not isinstance(data.get("metastore"), dict):
            return data
        if data["metastore"].get("kind") != "postgres":
            return data
        bundles = data.get("jar_bundles", ["delta", "avro"])
        if isinstance(bundles, list) and "postgres" not in bundles:
            data = {**data, "jar_bundles": [*bundles, "postgres"]}
        return data

    @model_validator(mode="before")
    @classmethod
    def _object_storage_needs_s3(cls, data: Any) -> Any:
        # s3a:// anywhere means S3A: AWS's defaults when the profile says nothing more,
        # and the jar bundle that provides it, whether or not the profile lists it.
        if not isinstance(data, dict):
            return data
        values = [data.get("warehouse")]
        if isinstance(data.get("vars"), dict):
            values.extend(data["vars"].values())
        if isinstance(data.get("allowed_roots"), list):
            values.extend(data["allowed_roots"])
        uses = any(isinstance(v, str) and v.startswith("s3a://") for v in values)
        if not uses and data.get("s3") is None:
            return data
        data = dict(data)
        if data.get("s3") is None:
            data["s3"] = {}
        bundles = data.get("jar_bundles", ["delta", "avro"])
        if isinstance(bundles, list) and "s3" not in bundles:
            data["jar_bundles"] = [*bundles, "s3"]
        return data
