"""Build a training set's rows from a plan: pinned reads, label filter, point-in-time
join, defaults and the split column. Lazy: nothing runs until the caller acts.

Output columns, in order: the label keys, the label event time, each feature source's
features (prefixed, sources in spec order), the label columns, then ``split``.

The frame also carries one hidden column per feature source, the age in seconds of the
feature row the join picked (label time - feature event time; null when no row
matched). The manifest's point-in-time diagnostics aggregate it; publishing writes only
:attr:`BuiltSet.columns`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakeforge.training.plan import PinnedInput, TrainingPlan

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

SPLIT = "split"
AGE = "__lf_age"  # + source index: hidden diagnostics column


@dataclass(frozen=True)
class SourceColumns:
    """Where one feature source's results are in the built frame."""

    role: str
    table: str
    features: tuple[str, ...]  # output names (prefixed)
    age: str  # the hidden age column


@dataclass(frozen=True)
class BuiltSet:
    """The lazily built set: ``frame`` holds :attr:`columns` plus the hidden age columns."""

    frame: DataFrame
    columns: tuple[str, ...]
    keys: tuple[str, ...]
    event_time: str
    labels: tuple[str, ...]
    sources: tuple[SourceColumns, ...]
    split_names: tuple[str, ...]

    @property
    def content_columns(self) -> tuple[str, ...]:
        """The columns the checksum covers: all but ``split`` (constant within a split)."""
        return tuple(c for c in self.columns if c != SPLIT)

    @property
    def output(self) -> DataFrame:
        """What gets published: the set without its diagnostics columns."""
        return self.frame.select(*[_col(c) for c in self.columns])


def _col(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(f"`{name}`")


def read_pinned(spark: SparkSession, pinned: PinnedInput) -> DataFrame:
    """``pinned.table`` ``VERSION AS OF`` ``pinned.version``; never the latest.

    Raises:
        TimeTravelError: the Delta log does not hold the version (analysis is eager).
    """
    from lakeforge.timetravel.versions import read_ref

    return read_ref(spark, pinned.table, pinned.version)


def build(spark: SparkSession, plan: TrainingPlan) -> BuiltSet:
    """The training set described by ``plan``, read at the plan's pinned versions.

    Raises:
        TimeTravelError: a pinned version is not in its table's Delta log.
        SqlError: ``LF-SQL-001`` the spec names a column an input lacks, its label
            filter does not parse, or a key has a type splits cannot hash (Spark's
            analysis is eager, so this happens here, before any data is read).
        SparkError: ``LF-RT-007`` another Spark failure (its error class and cause).
    """
    from lakeforge.errors import Code, SqlError
    from lakeforge.runtime.spark_errors import is_spark_error, translate

    try:
        return _build(spark, plan)
    except Exception as exc:
        if is_spark_error(exc):  # error class and real cause, not py4j's call site
            raise translate(exc, context=f"training set {plan.name}") from exc
        if isinstance(exc, TypeError):  # splits: a key type that has no canonical form
            raise SqlError(Code.SQL_FAILED, f"training set {plan.name}: {exc}") from exc
        raise


def _build(spark: SparkSession, plan: TrainingPlan) -> BuiltSet:
    from pyspark.sql import functions as F

    from lakeforge.training.pit import FeatureSource, point_in_time_join
    from lakeforge.training.splits import spark_split

    spec = plan.typed_spec()
    lab = spec.labels
    keys = tuple(lab.keys)
    labels = read_pinned(spark, plan.labels)
    if lab.filter:
        # Before the projection: the filter may use columns the set does not keep.
        labels = labels.where(F.expr(lab.filter))
    labels = labels.select(*[_col(c) for c in (*keys, lab.event_time, *lab.columns)])

    sources: list[FeatureSource] = []
    layout: list[SourceColumns] = []
    for j, (fspec, pinned) in enumerate(zip(spec.features, plan.features, strict=True)):
        raw = read_pinned(spark, pinned)
        # Internal names: a feature may share its name with a key, the event time or a
        # feature of another source; the join's output is renamed below.
        frame = raw.select(
            *[_col(fk).alias(lk) for fk, lk in zip(fspec.keys, keys, strict=True)],
            _col(fspec.event_time).alias("__lf_t"),
            *([_col(fspec.created_at).alias("__lf_c")] if fspec.created_at else []),
            *[_col(c).alias(f"__lf_v{i}") for i, c in enumerate(fspec.features)],
            # The picked row's event time, to tell "no match" from a null feature value
            # and to measure feature age. Last in the tie order; ties share it anyway.
            _col(fspec.event_time).alias("__lf_seen"),
        )
        sources.append(
            FeatureSource(
                frame=frame,
                keys=keys,
                event_time="__lf_t",
                features=[*[f"__lf_v{i}" for i in range(len(fspec.features))], "__lf_seen"],
                lag=fspec.lag_delta,
                ttl=fspec.ttl_delta,
                created_at="__lf_c" if fspec.created_at else None,
                prefix=f"__lf_s{j}_",
            )
        )
        layout.append(
            SourceColumns(
                role=pinned.role,
                table=pinned.table,
                features=tuple(fspec.prefix + c for c in fspec.features),
                age=f"{AGE}{j}",
            )
        )

    joined = point_in_time_join(labels, keys, lab.event_time, sources)

    label_time = F.unix_micros(_col(lab.event_time).cast("timestamp"))
    selected: list[Column] = [_col(c) for c in (*keys, lab.event_time)]
    ages: list[Column] = []
    for j, (fspec, cols) in enumerate(zip(spec.features, layout, strict=True)):
        seen = F.col(f"__lf_s{j}___lf_seen")
        for i, (name, out) in enumerate(zip(fspec.features, cols.features, strict=True)):
            value = F.col(f"__lf_s{j}___lf_v{i}")
            if name in fspec.defaults:
                # Only labels without a feature row get the default; a matched row's null
                # is data and stays null.
                dtype = joined.schema[f"__lf_s{j}___lf_v{i}"].dataType
                default = F.lit(fspec.defaults[name]).cast(dtype)
                value = F.when(seen.isNull(), default).otherwise(value)
            selected.append(value.alias(out))
        age = (label_time - F.unix_micros(seen.cast("timestamp"))) / F.lit(1_000_000.0)
        ages.append(age.alias(cols.age))
    selected += [_col(c) for c in lab.columns]

    ranges = plan.ranges()  # not the spec's: see TrainingPlan.split_ranges
    types = {f.name: f.dataType.simpleString() for f in labels.schema.fields}
    split = spark_split(
        [(_col(k), types[k]) for k in spec.split_keys], spec.splits.salt, ranges
    ).alias(SPLIT)
    frame = joined.select(*selected, split, *ages)
    feature_names = tuple(c for s in layout for c in s.features)
    return BuiltSet(
        frame=frame,
        columns=(*keys, lab.event_time, *feature_names, *lab.columns, SPLIT),
        keys=keys,
        event_time=lab.event_time,
        labels=tuple(lab.columns),
        sources=tuple(layout),
        split_names=tuple(ranges.ranges),
    )
