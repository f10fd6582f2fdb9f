"""Compare two versions of a Delta table: schema changes and row counts, computed in Spark.

With business keys, rows pair up by key (a null-safe full outer join) and each key is
added, removed, changed or unchanged. Without keys, the versions are compared as
multisets of whole rows (``exceptAll`` both ways). Either way Spark does the counting;
only the counts and a few sample rows (at most :data:`SAMPLE_SIZE` per category) reach
the driver.

Rows are compared on the columns both versions have. Lakeforge's own ``_lf_*`` columns
(run id, ingestion time, source file) are left out: they differ on every run, and a
rerun that lands the same data is not a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING, Any

from lakeforge.config.table_refs import VersionedRef
from lakeforge.errors import Code, TimeTravelError
from lakeforge.timetravel.versions import as_ref, read_ref, require_table, resolve_version

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

SAMPLE_SIZE = 10
METADATA_PREFIX = "_lf_"


@dataclass(frozen=True)
class ColumnChange:
    """A column added, removed or retyped between two versions (types as Spark prints them)."""

    name: str
    old_type: str | None  # None: added in the new version
    new_type: str | None  # None: removed in the new version

    @property
    def kind(self) -> str:
        if self.old_type is None:
            return "added"
        if self.new_type is None:
            return "removed"
        return "retyped"


@dataclass(frozen=True)
class TableDiff:
    """What changed in ``table`` from ``old_version`` to ``new_version``.

    ``keys`` empty means a whole-row comparison: ``changed`` is then None (a modified row
    counts as one removed and one added) and the samples are whole rows. With keys,
    ``rows_old == removed + changed + unchanged`` and ``rows_new == added + changed +
    unchanged`` (keys must be unique in each version); the samples are key values,
    ordered by key.
    """

    table: str
    old_version: int
    new_version: int
    keys: tuple[str, ...]
    schema_changes: tuple[ColumnChange, ...]
    compared_columns: tuple[str, ...]
    rows_old: int
    rows_new: int
    added: int
    removed: int
    changed: int | None
    unchanged: int
    sample_columns: tuple[str, ...]
    added_sample: tuple[tuple[Any, ...], ...] = ()
    removed_sample: tuple[tuple[Any, ...], ...] = ()
    changed_sample: tuple[tuple[Any, ...], ...] = ()

    @property
    def columns_added(self) -> tuple[ColumnChange, ...]:
        return tuple(c for c in self.schema_changes if c.kind == "added")

    @property
    def columns_removed(self) -> tuple[ColumnChange, ...]:
        return tuple(c for c in self.schema_changes if c.kind == "removed")

    @property
    def columns_retyped(self) -> tuple[ColumnChange, ...]:
        return tuple(c for c in self.schema_changes if c.kind == "retyped")

    @property
    def has_changes(self) -> bool:
        return bool(self.schema_changes or self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output (sample values stay Python objects: use ``default=str``)."""

        def rows(sample: tuple[tuple[Any, ...], ...]) -> list[dict[str, Any]]:
            return [dict(zip(self.sample_columns, r, strict=True)) for r in sample]

        return {
            "table": self.table,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "keys": list(self.keys),
            "schema": {
                "added": [{"name": c.name, "type": c.new_type} for c in self.columns_added],
                "removed": [{"name": c.name, "type": c.old_type} for c in self.columns_removed],
                "retyped": [
                    {"name": c.name, "old_type": c.old_type, "new_type": c.new_type}
                    for c in self.columns_retyped
                ],
            },
            "compared_columns": list(self.compared_columns),
            "rows": {
                "old": self.rows_old,
                "new": self.rows_new,
                "added": self.added,
                "removed": self.removed,
                "changed": self.changed,
                "unchanged": self.unchanged,
            },
            "samples": {
                "added": rows(self.added_sample),
                "removed": rows(self.removed_sample),
                "changed": rows(self.changed_sample),
            },
        }


def diff_versions(
    spark: SparkSession,
    table: str,
    old: VersionedRef | int,
    new: VersionedRef | int | None = None,
    keys: list[str] | None = None,
) -> TableDiff:
    """Compare two versions of ``table``.

    Args:
        spark: the session.
        table: ``schema.table``.
        old: a version number or a reference to ``table`` (version, timestamp or latest).
        new: the same; None means the latest version.
        keys: business-key columns identifying a row in both versions; None or empty
            compares whole rows instead.

    Returns:
        Schema changes, row counts per category and small samples.

    Raises:
        TimeTravelError: ``LF-SQL-002`` no such table, ``LF-TT-001`` no such version,
            ``LF-TT-002`` a reference to another table, ``LF-CFG-004`` a key column missing
            from a version or not unique in it.
    """
    name = require_table(spark, table)
    old_ref, new_ref = as_ref(name, old), as_ref(name, new)
    old_version = resolve_version(spark, old_ref)
    new_version = resolve_version(spark, new_ref)
    old_df = read_ref(spark, name, old_version)
    new_df = read_ref(spark, name, new_version)

    changes, common = _schema_changes(old_df.schema, new_df.schema)
    key_names = _key_columns(keys or [], common, name, old_version, new_version)
    key_set = {k.lower() for k in key_names}
    compared = tuple(
        c for c in common if c.lower() not in key_set and not c.lower().startswith(METADATA_PREFIX)
    )
    sides = _Sides(name, old_version, new_version, old_df, new_df)
    if key_names:
        return _diff_by_keys(sides, changes, key_names, compared)
    return _diff_whole_rows(sides, changes, compared)


@dataclass(frozen=True)
class _Sides:
    table: str
    old_version: int
    new_version: int
    old: DataFrame
    new: DataFrame

    def types(self, column: str) -> tuple[DataType, DataType]:
        return _field(self.old.schema, column).dataType, _field(self.new.schema, column).dataType


def _field(schema: StructType, column: str) -> Any:
    # Spark resolves column names case-insensitively (Delta forbids names that differ only
    # in case), so versions are matched the same way.
    for f in schema.fields:
        if f.name.lower() == column.lower():
            return f
    raise KeyError(column)


def _col(df: DataFrame, name: str) -> Column:
    # Backquoted, so a name with a dot is one column rather than a struct field access.
    return df[f"`{name.replace('`', '``')}`"]


def _schema_changes(
    old: StructType, new: StructType
) -> tuple[tuple[ColumnChange, ...], tuple[str, ...]]:
    """Column changes, and the columns both versions have (in the new version's order)."""
    old_by_name = {f.name.lower(): f for f in old.fields}
    new_by_name = {f.name.lower(): f for f in new.fields}
    changes: list[ColumnChange] = []
    common: list[str] = []
    for f in new.fields:
        before = old_by_name.get(f.name.lower())
        if before is None:
            changes.append(ColumnChange(f.name, None, f.dataType.simpleString()))
            continue
        common.append(f.name)
        # simpleString ignores nullability: a column becoming nullable is not a retype.
        if before.dataType.simpleString() != f.dataType.simpleString():
            changes.append(
                ColumnChange(f.name, before.dataType.simpleString(), f.dataType.simpleString())
            )
    for f in old.fields:
        if f.name.lower() not in new_by_name:
            changes.append(ColumnChange(f.name, f.dataType.simpleString(), None))
    return tuple(changes), tuple(common)


def _key_columns(
    keys: list[str], common: tuple[str, ...], table: str, old_version: int, new_version: int
) -> tuple[str, ...]:
    by_lower = {c.lower(): c for c in common}
    names: list[str] = []
    for key in keys:
        key = key.strip()
        if not key:
            continue
        column = by_lower.get(key.lower())
        if column is None:
            raise TimeTravelError(
                Code.BAD_VALUE,
                f"key column '{key}' is not in both version {old_version} and version "
                f"{new_version} of {table}",
            )
        if column not in names:
            names.append(column)
    return tuple(names)


def _hard_to_compare(dtype: DataType) -> bool:
    """Types Spark cannot test for equality or group by (maps, variants), at any depth."""
    from pyspark.sql.types import ArrayType, MapType, StructType

    if isinstance(dtype, MapType):
        return True
    if isinstance(dtype, ArrayType):
        return _hard_to_compare(dtype.elementType)
    if isinstance(dtype, StructType):
        return any(_hard_to_compare(f.dataType) for f in dtype.fields)
    return dtype.typeName() == "variant"


def _comparable(col: Column, own: DataType, other: DataType) -> Column:
    """``col`` in a form that equals its counterpart of type ``other`` iff the values match.

    Same types compare as they are; numeric retypes too (Spark widens ``1`` and ``1.0`` to
    one type, so a type change alone is not a value change). Other retypes compare by
    their text form, since e.g. a string and an int share no safe common type under ANSI
    casts. Maps and variants are not comparable in Spark; they compare as JSON.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, MapType, NumericType, StructType

    if _hard_to_compare(own):
        return F.to_json(col)
    if own.simpleString() == other.simpleString() or (
        isinstance(own, NumericType) and isinstance(other, NumericType)
    ):
        return col
    if isinstance(own, ArrayType | MapType | StructType):
        return F.to_json(col)
    return col.cast("string")


def _same(sides: _Sides, column: str, old_col: Column, new_col: Column) -> Column:
    old_type, new_type = sides.types(column)
    return _comparable(old_col, old_type, new_type).eqNullSafe(
        _comparable(new_col, new_type, old_type)
    )


def _diff_by_keys(
    sides: _Sides,
    changes: tuple[ColumnChange, ...],
    keys: tuple[str, ...],
    compared: tuple[str, ...],
) -> TableDiff:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from lakeforge.io.delta import count_rows

    spark = sides.old.sparkSession

    # Positional aliases (ok0, nc1, ...) keep the two sides apart after the join whatever
    # the real names are (dots, spaces, case).
    def side(df: DataFrame, prefix: str) -> DataFrame:
        return df.select(
            *[_col(df, k).alias(f"{prefix}k{i}") for i, k in enumerate(keys)],
            *[_col(df, c).alias(f"{prefix}c{j}") for j, c in enumerate(compared)],
            F.lit(True).alias(f"{prefix}_present"),
        )

    old, new = side(sides.old, "o"), side(sides.new, "n")
    on = reduce(
        lambda a, b: a & b,
        [_same(sides, k, old[f"ok{i}"], new[f"nk{i}"]) for i, k in enumerate(keys)],
    )
    joined = old.join(new, on, "full_outer")
    differs = reduce(
        lambda a, b: a | b,
        [~_same(sides, c, F.col(f"oc{j}"), F.col(f"nc{j}")) for j, c in enumerate(compared)],
        F.lit(False),
    )
    category = (
        F.when(F.col("o_present").isNull(), "added")
        .when(F.col("n_present").isNull(), "removed")
        .when(differs, "changed")
        .otherwise("unchanged")
    )
    # One key column per key: taken from whichever side has the row. When a key was
    # retyped the two sides share no type, so the sample shows its text form.
    key_cols = []
    for i, k in enumerate(keys):
        old_type, new_type = sides.types(k)
        o, n = F.col(f"ok{i}"), F.col(f"nk{i}")
        if old_type.simpleString() != new_type.simpleString():
            o, n = o.cast("string"), n.cast("string")
        key_cols.append(F.coalesce(o, n).alias(f"key{i}"))
    classified = joined.select(category.alias("category"), *key_cols)

    counts = {
        r["category"]: int(r["n"])
        for r in classified.groupBy("category").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    added, removed = counts.get("added", 0), counts.get("removed", 0)
    changed, unchanged = counts.get("changed", 0), counts.get("unchanged", 0)

    # Keys must identify one row per version, or the join pairs rows arbitrarily. A key
    # with o old and n new rows makes o*n joined rows, so any such duplicate shows as a
    # mismatch with Delta's own row counts (file statistics, no scan); only then is the
    # offending key looked up.
    rows_old = count_rows(spark, sides.table, sides.old_version)
    rows_new = count_rows(spark, sides.table, sides.new_version)
    if (removed + changed + unchanged, added + changed + unchanged) != (rows_old, rows_new):
        _require_unique(sides.old, keys, sides.table, sides.old_version)
        _require_unique(sides.new, keys, sides.table, sides.new_version)
        # Unique on both sides yet not paired one to one: retyped keys that collide
        # once compared (e.g. bigints beyond 2^53 against doubles).
        raise TimeTravelError(
            Code.BAD_VALUE,
            f"keys ({', '.join(keys)}) do not pair the rows of versions {sides.old_version} "
            f"and {sides.new_version} of {sides.table} one to one",
            "leave out --keys to compare whole rows",
        )

    samples: dict[str, list[tuple[Any, ...]]] = {"added": [], "removed": [], "changed": []}
    if added or removed or changed:
        # Only the rows that differ are ranked (usually few); ordering by key makes the
        # samples stable from one call to the next.
        order = Window.partitionBy("category").orderBy(*[f"key{i}" for i in range(len(keys))])
        ranked = (
            classified.where(F.col("category") != "unchanged")
            .withColumn("rank", F.row_number().over(order))
            .where(F.col("rank") <= SAMPLE_SIZE)
            .orderBy("category", "rank")
            .collect()
        )
        for r in ranked:
            samples[r["category"]].append(tuple(r[f"key{i}"] for i in range(len(keys))))

    return TableDiff(
        table=sides.table,
        old_version=sides.old_version,
        new_version=sides.new_version,
        keys=keys,
        schema_changes=changes,
        compared_columns=compared,
        rows_old=rows_old,
        rows_new=rows_new,
        added=added,
        removed=removed,
        changed=changed,
        unchanged=unchanged,
        sample_columns=keys,
        added_sample=tuple(samples["added"]),
        removed_sample=tuple(samples["removed"]),
        changed_sample=tuple(samples["changed"]),
    )


def _require_unique(df: DataFrame, keys: tuple[str, ...], table: str, version: int) -> None:
    """Raise, naming one duplicated key, unless ``keys`` identify one row in ``df``."""
    from pyspark.sql import functions as F

    dup = (
        df.groupBy(*[_col(df, k) for k in keys])
        .agg(F.count(F.lit(1)).alias("_n"))
        .where(F.col("_n") > 1)
        .first()
    )
    if dup is not None:
        shown = ", ".join(f"{k}={dup[i]!r}" for i, k in enumerate(keys))
        raise TimeTravelError(
            Code.BAD_VALUE,
            f"keys ({', '.join(keys)}) are not unique in version {version} of {table}: "
            f"{shown} appears {dup['_n']} times",
            "choose keys that identify one row, or leave out --keys to compare whole rows",
        )


def _diff_whole_rows(
    sides: _Sides, changes: tuple[ColumnChange, ...], compared: tuple[str, ...]
) -> TableDiff:
    from pyspark.sql import functions as F

    from lakeforge.io.delta import count_rows

    if not compared:
        raise TimeTravelError(
            Code.BAD_VALUE,
            f"versions {sides.old_version} and {sides.new_version} of {sides.table} share no "
            "columns to compare",
        )

    # exceptAll matches columns by position, so both sides get the same order and names.
    def side(df: DataFrame, is_old: bool) -> DataFrame:
        cols = []
        for j, c in enumerate(compared):
            old_type, new_type = sides.types(c)
            own, other = (old_type, new_type) if is_old else (new_type, old_type)
            cols.append(_comparable(_col(df, c), own, other).alias(f"c{j}"))
        return df.select(*cols)

    old, new = side(sides.old, True), side(sides.new, False)
    only_new, only_old = new.exceptAll(old), old.exceptAll(new)
    # Both directions in one Spark job, for the counts and again for the samples.
    tagged = only_new.withColumn("_side", F.lit("added")).unionByName(
        only_old.withColumn("_side", F.lit("removed"))
    )
    counts = {
        r["_side"]: int(r["n"])
        for r in tagged.groupBy("_side").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    added, removed = counts.get("added", 0), counts.get("removed", 0)
    rows_old = count_rows(sides.old.sparkSession, sides.table, sides.old_version)
    rows_new = count_rows(sides.new.sparkSession, sides.table, sides.new_version)

    samples: dict[str, list[tuple[Any, ...]]] = {"added": [], "removed": []}
    if added or removed:
        order = [F.col(f"c{j}") for j in range(len(compared))]
        # A union does not promise to keep each side's order, so each sample row carries
        # its rank (ids grow with row order within the single sorted partition).
        firsts = [
            df.orderBy(*order)
            .limit(SAMPLE_SIZE)
            .withColumn("_side", F.lit(name))
            .withColumn("_rank", F.monotonically_increasing_id())
            for name, df in (("added", only_new), ("removed", only_old))
        ]
        picked = firsts[0].unionByName(firsts[1]).collect()
        for r in sorted(picked, key=lambda r: (r["_side"], r["_rank"])):
            samples[r["_side"]].append(tuple(r[f"c{j}"] for j in range(len(compared))))

    return TableDiff(
        table=sides.table,
        old_version=sides.old_version,
        new_version=sides.new_version,
        keys=(),
        schema_changes=changes,
        compared_columns=compared,
        rows_old=rows_old,
        rows_new=rows_new,
        added=added,
        removed=removed,
        changed=None,
        unchanged=rows_new - added,
        sample_columns=compared,
        added_sample=tuple(samples["added"]),
        removed_sample=tuple(samples["removed"]),
    )
