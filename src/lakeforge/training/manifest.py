"""The manifest of a published training set: what it is, where it came from, what is in it.

A manifest is plain JSON (format 1)::

    id, name, table, table_version, created_at, run_id
    spec, config_hash              the spec as data (defaults included) and its hash
    inputs                         [{role, table, version, commit_timestamp}]: the plan
    split_ranges, buckets          [[split, first bucket, end bucket]] of buckets
    code_version, versions         lakeforge (+ git sha), python, spark, delta
    columns                        keys, event_time, features, labels, split
    schema                         [{name, type, nullable}] of the published table
    checksum                       how the per-split checksums are computed
    splits.<name>
        rows, checksum
        columns.<col>              count (non-null), nulls, min, max; mean if numeric
        labels.<col>               distinct (approximate), distribution [{value, count}]
                                   (only when there are at most 100 distinct values)
        point_in_time.<role>       table, matched, match_rate, age_seconds
                                   {min, p25, p50, p75, p95, max}

Statistics cost one Spark job (one aggregation grouped by split, checksums included)
plus one per label column with few distinct values. Quantiles of feature age come from
``percentile_approx`` (accuracy 10000: exact below 10000 rows per split); min and max
are exact.
"""

from __future__ import annotations

import math
import platform
import re
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lakeforge.training.build import SPLIT, BuiltSet
from lakeforge.training.checksum import from_sum, spark_checksum_sum
from lakeforge.training.plan import TrainingPlan

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession
    from pyspark.sql.types import DataType

FORMAT = 1
MAX_DISTRIBUTION = 100
QUANTILES = {"p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
CHECKSUM_DOC = (
    "per row: sha256 of the canonical row text (values in schema order, split excluded, "
    "each '<utf-8 length>:<text>' or NUL for null, joined by U+001F), first 8 bytes "
    "big-endian; per split: sum of row hashes mod 2^64 as 16 hex digits. "
    "See lakeforge.training.checksum."
)


def _is_numeric(dtype: DataType) -> bool:
    from pyspark.sql.types import NumericType

    return isinstance(dtype, NumericType)


def _orderable(dtype: DataType) -> bool:
    from pyspark.sql.types import ArrayType, BinaryType, MapType, StructType, VariantType

    return not isinstance(dtype, ArrayType | MapType | StructType | VariantType | BinaryType)


def _is_timestamp(dtype: DataType) -> bool:
    from pyspark.sql.types import TimestampType

    return isinstance(dtype, TimestampType)


def json_value(value: Any) -> Any:
    """A statistic as JSON: exact decimals as text, non-finite floats as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _agg_columns(built: BuiltSet) -> list[Column]:
    from pyspark.sql import functions as F

    schema = built.frame.schema
    out: list[Column] = [
        F.count(F.lit(1)).alias("rows"),
        spark_checksum_sum(built.frame, built.content_columns).alias("checksum"),
    ]
    for i, name in enumerate(built.content_columns):
        dtype = schema[name].dataType
        c = F.col(f"`{name}`")
        out.append(F.count(c).alias(f"c{i}_count"))
        if _orderable(dtype):
            lo, hi = F.min(c), F.max(c)
            if _is_timestamp(dtype):
                # Text with the offset, made in Spark: PySpark would return local time.
                fmt = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"
                lo, hi = F.date_format(lo, fmt), F.date_format(hi, fmt)
            out += [lo.alias(f"c{i}_min"), hi.alias(f"c{i}_max")]
        if _is_numeric(dtype):
            out.append(F.avg(c.cast("double")).alias(f"c{i}_mean"))
    for i, name in enumerate(built.labels):
        out.append(F.approx_count_distinct(F.col(f"`{name}`")).alias(f"l{i}_distinct"))
    points = F.array(*[F.lit(q) for q in QUANTILES.values()])
    for j, src in enumerate(built.sources):
        age = F.col(src.age)
        out += [
            F.count(age).alias(f"s{j}_matched"),
            F.min(age).alias(f"s{j}_min"),
            F.max(age).alias(f"s{j}_max"),
            F.percentile_approx(age, points, 10000).alias(f"s{j}_q"),
        ]
    return out


def compute_stats(built: BuiltSet) -> dict[str, dict[str, Any]]:
    """Rows, checksum, column statistics, label distribution and point-in-time
    diagnostics of each split (splits without rows included, with zeros)."""
    from pyspark.sql import functions as F

    frame = built.frame
    rows = {r[SPLIT]: r for r in frame.groupBy(SPLIT).agg(*_agg_columns(built)).collect()}
    schema = frame.schema
    out: dict[str, dict[str, Any]] = {}
    for split in built.split_names:
        r = rows.get(split)
        n = int(r["rows"]) if r is not None else 0
        columns: dict[str, Any] = {}
        for i, name in enumerate(built.content_columns):
            dtype = schema[name].dataType
            count = int(r[f"c{i}_count"]) if r is not None else 0
            stat: dict[str, Any] = {"count": count, "nulls": n - count}
            if _orderable(dtype):
                stat["min"] = json_value(r[f"c{i}_min"]) if r is not None else None
                stat["max"] = json_value(r[f"c{i}_max"]) if r is not None else None
            if _is_numeric(dtype):
                stat["mean"] = json_value(r[f"c{i}_mean"]) if r is not None else None
            columns[name] = stat
        labels = {
            name: {
                "distinct": int(r[f"l{i}_distinct"]) if r is not None else 0,
                "distribution": None,
            }
            for i, name in enumerate(built.labels)
        }
        pit: dict[str, Any] = {}
        for j, src in enumerate(built.sources):
            matched = int(r[f"s{j}_matched"]) if r is not None else 0
            q = (r[f"s{j}_q"] if r is not None else None) or [None] * len(QUANTILES)
            ages = {"min": json_value(r[f"s{j}_min"]) if r is not None else None}
            ages |= {k: json_value(v) for k, v in zip(QUANTILES, q, strict=True)}
            ages["max"] = json_value(r[f"s{j}_max"]) if r is not None else None
            pit[src.role] = {
                "table": src.table,
                "features": list(src.features),
                "matched": matched,
                "match_rate": matched / n if n else None,
                "age_seconds": ages,
            }
        out[split] = {
            "rows": n,
            "checksum": from_sum(r["checksum"] if r is not None else 0),
            "columns": columns,
            "labels": labels,
            "point_in_time": pit,
        }

    # Label distributions: only for labels with few values in every split (classes, not
    # a regression target), so what reaches the driver stays small.
    for name in built.labels:
        if any(s["labels"][name]["distinct"] > MAX_DISTRIBUTION for s in out.values()):
            continue
        counts = frame.groupBy(SPLIT, F.col(f"`{name}`").alias("v")).count().collect()
        dist: dict[str, list[dict[str, Any]]] = {s: [] for s in out}
        for c in counts:
            dist.setdefault(c[SPLIT], []).append({"value": json_value(c["v"]), "count": c["count"]})
        for split, items in dist.items():
            if split in out:
                items.sort(key=lambda d: (d["value"] is not None, str(d["value"])))
                out[split]["labels"][name]["distribution"] = items
    return out


def library_versions(spark: SparkSession) -> dict[str, str | None]:
    """lakeforge, its git commit (source checkouts), Python, Spark and Delta versions."""
    from lakeforge.lineage.system_tables import code_version
    from lakeforge.version import __version__

    sha = re.search(r"\(([0-9a-f]+)\)", code_version())
    delta: str | None
    try:
        # The jar on the classpath is what runs (the pip package may differ).
        delta = str(spark._jvm.io.delta.package.VERSION())  # type: ignore[union-attr]
    except Exception:
        try:
            from importlib.metadata import version

            delta = version("delta-spark")
        except Exception:
            delta = None
    return {
        "lakeforge": __version__,
        "git_sha": sha.group(1) if sha else None,
        "python": platform.python_version(),
        "spark": spark.version,
        "delta": delta,
    }


def schema_of(built: BuiltSet) -> list[dict[str, Any]]:
    schema = built.frame.schema
    return [
        {
            "name": c,
            "type": schema[c].dataType.simpleString(),
            "nullable": schema[c].nullable,
        }
        for c in built.columns
    ]


def assemble(
    *,
    plan: TrainingPlan,
    built: BuiltSet,
    stats: dict[str, dict[str, Any]],
    set_id: str,
    table_version: int,
    created_at: str,
    run_id: str | None,
    code_version: str,
    versions: dict[str, str | None],
    raw_objects: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest as a JSON-ready dict (pure: everything comes in as arguments)."""
    return {
        "format": FORMAT,
        "id": set_id,
        "name": plan.name,
        "table": plan.table,
        "table_version": table_version,
        "created_at": created_at,
        "run_id": run_id,
        "spec": plan.spec,
        "config_hash": plan.config_hash,
        "inputs": [i.to_dict() for i in plan.inputs],
        "split_ranges": [list(r) for r in plan.split_ranges],
        "buckets": plan.buckets,
        "code_version": code_version,
        "versions": versions,
        "columns": {
            "keys": list(built.keys),
            "event_time": built.event_time,
            "features": [c for s in built.sources for c in s.features],
            "labels": list(built.labels),
            "split": SPLIT,
        },
        "schema": schema_of(built),
        "checksum": {
            "algorithm": "sha256-row-sum64",
            "columns": list(built.content_columns),
            "description": CHECKSUM_DOC,
        },
        "splits": stats,
        # The raw object versions the inputs came from (object storage; see
        # lakeforge.lineage.query.raw_objects_record): none for local files.
        "raw_objects": raw_objects or {"count": 0},
    }


def plan_of(manifest: dict[str, Any]) -> TrainingPlan:
    """The plan a manifest was built from (what reproduce rebuilds)."""
    return TrainingPlan.from_dict(manifest)
