"""The training-set registry: system table ``lakeforge.training_sets``, and manifest lookup.

The registry row holds the whole manifest, so a training set can be reproduced or
exported wherever the lakehouse's metastore is reachable; the JSON file written next
to the project (:mod:`lakeforge.training.publish`) is a copy for people and for git, and
is accepted too wherever an id is (a path ending in ``.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeforge.errors import Code, PublishError
from lakeforge.lineage.system_tables import TRAINING_SETS, append_training_set

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class Registered:
    """One registry row, without the manifest text."""

    id: str
    name: str
    table_version: int
    created_at: str
    config_hash: str
    run_id: str | None
    rows: dict[str, int]  # per split, from the manifest


def record(spark: SparkSession, manifest: dict[str, Any], manifest_path: str | None) -> None:
    """Append the published set's row (creates the system tables when missing)."""
    from lakeforge.lineage.system_tables import ensure_system_tables

    ensure_system_tables(spark)
    append_training_set(
        spark,
        (
            manifest["id"],
            manifest["name"],
            manifest["table"],
            manifest["table_version"],
            datetime.fromisoformat(manifest["created_at"].replace("Z", "+00:00")),
            manifest["config_hash"],
            manifest["run_id"],
            json.dumps(manifest),  # key order kept: splits stay in spec order
            manifest_path,
        ),
    )


def _registry_exists(spark: SparkSession) -> bool:
    return bool(spark.catalog.tableExists(TRAINING_SETS))


def id_taken(spark: SparkSession, set_id: str) -> bool:
    from pyspark.sql import functions as F

    if not _registry_exists(spark):
        return False
    return spark.table(TRAINING_SETS).where(F.col("id") == set_id).limit(1).count() > 0


def names_registered(spark: SparkSession, name: str) -> bool:
    from pyspark.sql import functions as F

    if not _registry_exists(spark):
        return False
    return spark.table(TRAINING_SETS).where(F.col("name") == name).limit(1).count() > 0


def load_manifest(spark: SparkSession | None, ref: str) -> dict[str, Any]:
    """The manifest of ``ref``: a registered id, or a path to a manifest JSON file.

    Raises:
        PublishError: ``LF-TRN-003`` no such id (or file).
    """
    if ref.endswith(".json"):
        path = Path(ref)
        if not path.is_file():
            raise PublishError(Code.TRAINING_SET_NOT_FOUND, f"no manifest file {ref}")
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    if spark is None:
        raise PublishError(Code.TRAINING_SET_NOT_FOUND, f"no manifest file {ref}")
    from pyspark.sql import functions as F

    row = None
    if _registry_exists(spark):
        row = spark.table(TRAINING_SETS).where(F.col("id") == ref).select("manifest").first()
    if row is None:
        raise PublishError(
            Code.TRAINING_SET_NOT_FOUND,
            f"no training set with id '{ref}'",
            "lakeforge training-sets lists the published ones",
        )
    found: dict[str, Any] = json.loads(row["manifest"])
    return found


def manifest_for_version(spark: SparkSession, name: str, version: int | None) -> dict[str, Any]:
    """The manifest of training set ``name`` at table ``version`` (None: the newest).

    Raises:
        PublishError: ``LF-TRN-003`` nothing registered for that name and version.
    """
    from pyspark.sql import functions as F

    row = None
    if _registry_exists(spark):
        rows = spark.table(TRAINING_SETS).where(F.col("name") == name)
        if version is not None:
            rows = rows.where(F.col("table_version") == version)
        row = rows.orderBy(F.col("table_version").desc()).select("manifest").first()
    if row is None:
        at = "" if version is None else f" at version {version}"
        raise PublishError(Code.TRAINING_SET_NOT_FOUND, f"no published training set '{name}'{at}")
    found: dict[str, Any] = json.loads(row["manifest"])
    return found


def list_sets(spark: SparkSession, name: str | None = None) -> list[Registered]:
    """Registered sets, newest first (the manifest text is parsed for row counts only)."""
    from pyspark.sql import functions as F

    if not _registry_exists(spark):
        return []
    rows = spark.table(TRAINING_SETS)
    if name is not None:
        rows = rows.where(F.col("name") == name)
    # One row per set: the registry is small (one row per publish).
    out = []
    for r in rows.orderBy(F.col("created_at").desc(), F.col("id")).collect():
        manifest = json.loads(r["manifest"])
        out.append(
            Registered(
                id=r["id"],
                name=r["name"],
                table_version=int(r["table_version"]),
                created_at=str(manifest["created_at"]),
                config_hash=r["config_hash"],
                run_id=r["run_id"],
                rows={s: int(v["rows"]) for s, v in manifest["splits"].items()},
            )
        )
    return out
