"""``lakeforge suggest TABLE``: profile a table version and write a starter suite.

The idea of TFDV's schema inference: from one version of the data, propose what should
stay true of later ones (columns and types, which columns are never null, numeric and
date ranges, the value set of low-cardinality columns). Two Spark jobs whatever the
width: one aggregation for counts, nulls, min / max and distinct estimates, one
``collect_set`` over the low-cardinality columns only. The output is a Great Expectations
1.x suite (built with Great Expectations' own classes), every entry with
``meta.lakeforge.action: warn``: a person reviews it, tightens actions, and references it
from the pipeline with ``- suite: <path>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# lakeforge's own columns describe loading, not the data: never suggested.
SKIP_PREFIX = "_lf_"
SKIP = {"valid_from", "valid_to", "is_current"}
RANGE_TYPES = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal", "date")
SET_TYPES = ("string", "tinyint", "smallint", "int", "bigint", "boolean")


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    type: str  # Spark simple string: decimal(12,2)
    type_class: str  # Spark type class, as Great Expectations names Spark types: DecimalType
    rows: int
    nulls: int
    distinct_estimate: int
    min: Any
    max: Any
    values: tuple[Any, ...] | None  # the value set, for low-cardinality columns


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def profile(df: DataFrame, max_values: int) -> list[ColumnProfile]:
    """Per-column statistics of ``df`` in two jobs."""
    from pyspark.sql import functions as F

    fields = [
        f for f in df.schema.fields if not f.name.startswith(SKIP_PREFIX) and f.name not in SKIP
    ]
    aggs = [F.count(F.lit(1)).alias("__rows")]
    for j, f in enumerate(fields):
        c = F.col(f"`{f.name}`")
        aggs += [
            F.sum(F.when(c.isNull(), 1).otherwise(0)).alias(f"n{j}"),
            F.approx_count_distinct(c).alias(f"d{j}"),
        ]
        if f.dataType.simpleString().startswith(RANGE_TYPES):
            aggs += [F.min(c).alias(f"lo{j}"), F.max(c).alias(f"hi{j}")]
    row = df.agg(*aggs).first()
    assert row is not None
    stats = row.asDict()
    low = [
        (j, f)
        for j, f in enumerate(fields)
        if f.dataType.simpleString().startswith(SET_TYPES)
        and int(stats[f"d{j}"] or 0) <= max_values
        and int(stats[f"d{j}"] or 0) > 0
    ]
    sets: dict[str, list[Any]] = {}
    if low:
        got = df.agg(*[F.collect_set(F.col(f"`{f.name}`")).alias(f"s{j}") for j, f in low]).first()
        assert got is not None
        for j, f in low:
            values = list(got[f"s{j}"])
            if len(values) <= max_values:  # the estimate can undercount a little
                sets[f.name] = sorted(values, key=lambda v: (str(type(v)), v))
    out = []
    for j, f in enumerate(fields):
        out.append(
            ColumnProfile(
                name=f.name,
                type=f.dataType.simpleString(),
                type_class=type(f.dataType).__name__,
                rows=int(stats["__rows"] or 0),
                nulls=int(stats[f"n{j}"] or 0),
                distinct_estimate=int(stats[f"d{j}"] or 0),
                min=_plain(stats.get(f"lo{j}")),
                max=_plain(stats.get(f"hi{j}")),
                values=tuple(sets[f.name]) if f.name in sets else None,
            )
        )
    return out


def suggest_suite(table: str, version: int, profiles: list[ColumnProfile]) -> dict[str, Any]:
    """A Great Expectations 1.x suite (as JSON-ready dict) proposing what ``profiles`` show."""
    import great_expectations.expectations as gxe
    from great_expectations.core import ExpectationSuite

    meta = {"lakeforge": {"action": "warn"}}
    exps: list[Any] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[p.name for p in profiles], exact_match=False, meta=meta
        )
    ]
    for p in profiles:
        exps.append(gxe.ExpectColumnValuesToBeOfType(column=p.name, type_=p.type_class, meta=meta))
        if p.rows and p.nulls == 0:
            exps.append(gxe.ExpectColumnValuesToNotBeNull(column=p.name, meta=meta))
        if p.values is not None and not p.type.startswith(("float", "double", "decimal")):
            values = [_plain(v) for v in p.values]
            exps.append(gxe.ExpectColumnValuesToBeInSet(column=p.name, value_set=values, meta=meta))
        elif p.min is not None and p.max is not None:
            exps.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=p.name, min_value=p.min, max_value=p.max, meta=meta
                )
            )
    suite = ExpectationSuite(
        name=f"{table}.suggested",
        expectations=exps,
        meta={
            "generated_by": "lakeforge suggest",
            "table": table,
            "table_version": version,
            "rows_profiled": profiles[0].rows if profiles else 0,
        },
    )
    data: dict[str, Any] = suite.to_json_dict()
    # Ids are for Great Expectations' stores; a file in git reads better without them.
    data.pop("id", None)
    for e in data.get("expectations", []):
        e.pop("id", None)
        e.pop("rendered_content", None)
    return data


def dumps(suite: dict[str, Any]) -> str:
    return json.dumps(suite, indent=2, default=str) + "\n"
