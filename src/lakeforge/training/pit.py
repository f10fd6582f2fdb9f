"""Point-in-time correct feature joins.

For each label row at time ``t`` (its ``label_time``), the feature row of the same entity
(keys equal, as typed columns; a null key never matches) with the greatest event time
``<= t - lag``, and, when set, ``>= t - ttl`` and ``created_at <= t`` (a late backfill that
did not exist at ``t`` is not visible). No value from the future can be picked: every
candidate satisfies those bounds before any ordering happens.

Ties (several candidates with the same event time) are broken by a total order:

1. event time, newest first;
2. ``created_at``, newest first, nulls last (when declared);
3. then each feature column in declaration order, ascending, nulls first.

Candidates equal in all of these are equal in every column the join returns, so the
result does not depend on how Spark orders rows. A label without a candidate keeps null
features (a left join: label rows are never lost or duplicated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

LABEL_ID = "__lf_label_id"


@dataclass(frozen=True)
class FeatureSource:
    frame: DataFrame
    keys: Sequence[str]  # same names as the label's entity keys
    event_time: str
    features: Sequence[str]
    lag: timedelta = timedelta(0)
    ttl: timedelta | None = None
    created_at: str | None = None
    prefix: str = ""  # output column = prefix + feature name


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


def point_in_time_join(
    labels: DataFrame, keys: Sequence[str], label_time: str, sources: Sequence[FeatureSource]
) -> DataFrame:
    """``labels`` with each source's features as of each row's ``label_time``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    out = labels.withColumn(LABEL_ID, F.monotonically_increasing_id())
    for j, src in enumerate(sources):
        f = src.frame
        tag = f"__lf_f{j}_"
        renamed = f.select(
            *[F.col(f"`{k}`").alias(f"{tag}k_{k}") for k in src.keys],
            F.col(f"`{src.event_time}`").alias(f"{tag}time"),
            *([F.col(f"`{src.created_at}`").alias(f"{tag}created")] if src.created_at else []),
            *[F.col(f"`{c}`").alias(f"{tag}v_{c}") for c in src.features],
        )
        t = F.col(f"`{label_time}`").cast("timestamp")
        ft = F.col(f"{tag}time").cast("timestamp")
        cond = None
        for k in src.keys:
            eq = F.col(f"`{k}`") == F.col(f"{tag}k_{k}")
            cond = eq if cond is None else cond & eq
        upper = t - F.expr(f"INTERVAL {_seconds(src.lag)} SECONDS")
        time_ok = ft <= upper
        if src.ttl is not None:
            time_ok = time_ok & (ft >= t - F.expr(f"INTERVAL {_seconds(src.ttl)} SECONDS"))
        if src.created_at:
            time_ok = time_ok & (F.col(f"{tag}created").cast("timestamp") <= t)
        assert cond is not None
        joined = out.join(renamed, on=cond & time_ok, how="left")
        order = [F.col(f"{tag}time").desc_nulls_last()]
        if src.created_at:
            order.append(F.col(f"{tag}created").desc_nulls_last())
        order += [F.col(f"{tag}v_{c}").asc_nulls_first() for c in src.features]
        rank = F.row_number().over(Window.partitionBy(LABEL_ID).orderBy(*order))
        kept = joined.withColumn("__lf_rank", rank).where(F.col("__lf_rank") == 1)
        drop = [c for c in renamed.columns if not c.startswith(f"{tag}v_")] + ["__lf_rank"]
        kept = kept.drop(*drop)
        for c in src.features:
            kept = kept.withColumnRenamed(f"{tag}v_{c}", f"{src.prefix}{c}")
        out = kept
    return out.drop(LABEL_ID)
