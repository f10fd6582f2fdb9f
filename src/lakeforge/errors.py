"""The one exception hierarchy of lakeforge, with stable error codes.

Every error a user can meet carries a code such as ``LF-CFG-002``. Tests and scripts
match on the code, never on the wording, so messages can improve without breaking them.
Config errors also carry where they come from (file, line, key path) and are collected,
so one ``validate`` shows every problem at once.
"""

from __future__ import annotations

from dataclasses import dataclass


class Code:
    """Stable error codes. Never renumber; add new ones at the end of a group."""

    YAML_SYNTAX = "LF-CFG-001"
    UNKNOWN_KEY = "LF-CFG-002"
    MISSING_KEY = "LF-CFG-003"
    BAD_VALUE = "LF-CFG-004"
    UNDEFINED_TABLE = "LF-CFG-005"
    DUPLICATE_KEY = "LF-CFG-006"
    UNRESOLVED_VARIABLE = "LF-CFG-007"
    FILE_NOT_FOUND = "LF-CFG-008"
    PROFILE_NOT_FOUND = "LF-CFG-009"
    BAD_EXPECTATION = "LF-CFG-010"
    GOLD_NOT_A_QUERY = "LF-CFG-011"  # a gold sql: is not one SELECT / WITH query
    PATH_OUTSIDE_ROOTS = "LF-CFG-012"  # a source or sql_file resolves outside allowed roots
    NOT_UTF8 = "LF-CFG-013"  # a config file is not valid UTF-8
    YAML_TOO_LARGE = "LF-CFG-014"  # a config file over the size / alias limits

    CYCLE = "LF-PLAN-001"
    SELECT_UNKNOWN = "LF-PLAN-002"  # a --select selector names no step of the pipeline

    JAVA_MISSING = "LF-RT-001"
    JARS_MISSING = "LF-RT-002"
    JAR_RESOLUTION_FAILED = "LF-RT-003"
    SPARK_START_FAILED = "LF-RT-004"
    OPTIONAL_DEPENDENCY_MISSING = "LF-RT-005"  # an optional extra (e.g. [mlflow]) is not installed
    METASTORE_LOCKED = "LF-RT-006"  # another process holds the embedded Derby metastore
    SPARK_FAILED = "LF-RT-007"  # a Spark failure, translated (error class + message)
    CLASS_ARCHIVE_FAILED = "LF-RT-008"  # `jars warm` could not make the JVM class archive
    METASTORE_UNREACHABLE = "LF-RT-009"  # a shared metastore's database refused or lacks its schema

    STEP_FAILED = "LF-RUN-001"
    ROW_ACCOUNTING = "LF-RUN-002"
    SOURCE_EMPTY = "LF-RUN-003"
    FILE_CHANGED = "LF-RUN-004"
    SCHEMA_CHANGED = "LF-RUN-005"
    INCREMENTAL_UNAVAILABLE = "LF-RUN-006"
    EXPECTATION_FAILED = "LF-RUN-007"  # an expectation with action fail did not hold
    GOLD_WRITE_REJECTED = "LF-RUN-008"  # a gold step tried to do more than read
    INGEST_LOG_MISMATCH = "LF-RUN-009"  # the ingestion log disagrees with bronze's history
    INGEST_FILE_UNKNOWN = "LF-RUN-010"  # an operator command names a file the log lacks
    PIPELINE_LOCKED = "LF-RUN-011"  # another run of the same pipeline holds its lock
    SYSTEM_TABLE_FAILED = (
        "LF-RUN-012"  # an append to (or read of) a lakeforge.* system table failed
    )

    SQL_FAILED = "LF-SQL-001"
    TABLE_NOT_FOUND = "LF-SQL-002"
    SQL_READ_ONLY = "LF-SQL-003"  # a write or DDL statement for the read-only fast engine
    SQL_SYNTAX = "LF-SQL-004"  # the query does not parse (line and column named)
    SQL_NOT_FAST = "LF-SQL-005"  # --engine fast, but the query needs Spark (the reason named)

    VERSION_NOT_FOUND = "LF-TT-001"
    BAD_TABLE_REF = "LF-TT-002"

    TRAINING_INPUT_GONE = "LF-TRN-001"  # a pinned input version can no longer be read
    CHECKSUM_MISMATCH = "LF-TRN-002"  # a rebuilt or exported split differs from its manifest
    TRAINING_SET_NOT_FOUND = "LF-TRN-003"
    TRAINING_ID_CONFLICT = "LF-TRN-004"  # the id a publish would get is already registered
    EXPORT_TARGET_EXISTS = "LF-TRN-005"

    STORAGE_UNREACHABLE = "LF-S3-001"  # the endpoint does not answer
    STORAGE_DENIED = "LF-S3-002"  # wrong or missing credentials, or no permission
    BUCKET_MISSING = "LF-S3-003"
    VERSIONING_OFF = "LF-S3-004"  # a raw zone's bucket keeps no object versions
    UPLOAD_CHECKSUM = "LF-S3-005"  # the stored object's checksum is not the local file's
    OBJECT_MISSING = "LF-S3-006"  # a key (or key version) that is not there
    STORAGE_FAILED = "LF-S3-007"  # any other object-storage error, translated


class LakeforgeError(Exception):
    """Base of every error lakeforge raises on purpose.

    Args:
        code: stable code from :class:`Code`.
        message: one line for humans.
        hint: optional next step ("run ./dev setup").
    """

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint

    def lines(self) -> list[str]:
        """The error as the lines the CLI prints (one per problem)."""
        line = f"{self.code} {self.message}"
        return [line + (f" (hint: {self.hint})" if self.hint else "")]

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a YAML file, located as precisely as we can.

    ``line`` is 1-based; 0 means "the file as a whole". ``key`` is a dotted key path
    such as ``silver.orders.columns.amount.type``.
    """

    code: str
    file: str
    line: int
    key: str
    message: str

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" [{self.key}]" if self.key else ""
        return f"{self.code} {where}{key}: {self.message}"


class ConfigError(LakeforgeError):
    """One or more config problems, reported together."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        if not issues:
            raise ValueError("ConfigError needs at least one issue")
        ordered = sorted(issues, key=lambda i: (i.file, i.line, i.key, i.code))
        super().__init__(ordered[0].code, ordered[0].render())
        self.issues = ordered

    @property
    def codes(self) -> list[str]:
        return [i.code for i in self.issues]

    def lines(self) -> list[str]:
        return [i.render() for i in self.issues]


class PlanError(LakeforgeError):
    """The pipeline is well-formed YAML but cannot be ordered (e.g. a cycle)."""


class RuntimeSetupError(LakeforgeError):
    """Java, jars or the SparkSession could not be set up."""


class RunError(LakeforgeError):
    """A step failed while running, or a run invariant did not hold."""


class SqlError(LakeforgeError):
    """An ad-hoc SQL statement failed."""


class TimeTravelError(LakeforgeError):
    """A table version could not be read, compared or restored (or its reference is malformed)."""


class StorageError(LakeforgeError):
    """Object storage (S3, MinIO, SeaweedFS) refused or failed a request."""


class PublishError(LakeforgeError):
    """A training set could not be published, found, reproduced or exported as recorded."""
