"""Reproduce a published training set from its manifest and prove it is the same.

The rebuild reads every input at the version the manifest pinned, never the latest, so
rows appended since do not matter. With ``verify`` the rebuilt rows are checksummed per
split (one Spark job) and compared with the manifest: any difference is
``LF-TRN-002`` naming the split(s).

When a pinned version cannot be read any more (VACUUM deleted its data files, or the
Delta log no longer reaches back to it) the error is ``LF-TRN-001`` naming the input
table and version. Spark reports a missing file as a generic read failure deep in a
job, so on any failure each input is probed (its log entry, then whether every data
file of the pinned snapshot still exists) to name the one that is gone; the probe costs
nothing when all goes well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from lakeforge.errors import Code, LakeforgeError, PublishError
from lakeforge.training.plan import PinnedInput, TrainingPlan

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakeforge.training.build import BuiltSet

T = TypeVar("T")
EMPTY = format(0, "016x")


@dataclass(frozen=True)
class SplitCheck:
    """One split: what the manifest says and what the rebuild gave."""

    split: str
    rows_expected: int
    rows_actual: int
    checksum_expected: str
    checksum_actual: str

    @property
    def ok(self) -> bool:
        return (self.rows_expected, self.checksum_expected) == (
            self.rows_actual,
            self.checksum_actual,
        )


@dataclass(frozen=True)
class Reproduction:
    """The rebuilt set and, when verified, the per-split comparison."""

    id: str
    manifest: dict[str, Any]
    built: BuiltSet
    checks: tuple[SplitCheck, ...] = ()
    schema_ok: bool = True

    @property
    def verified(self) -> bool:
        return bool(self.checks) and self.schema_ok and all(c.ok for c in self.checks)


def unreadable(spark: SparkSession, pinned: PinnedInput) -> str | None:
    """Why ``pinned`` cannot be read any more, or None if it still can."""
    from lakeforge.training.build import read_pinned

    try:
        df = read_pinned(spark, pinned)
        files = df.inputFiles()
    except LakeforgeError as exc:
        return f"the Delta log no longer holds it ({exc.message})"
    except Exception as exc:  # Delta/py4j failures while listing the snapshot
        return f"its snapshot cannot be listed ({(str(exc).splitlines() or ['?'])[0]})"
    jvm = spark._jvm
    conf = spark._jsc.hadoopConfiguration()
    for f in files:
        path = jvm.org.apache.hadoop.fs.Path(f)  # type: ignore[union-attr]
        if not path.getFileSystem(conf).exists(path):
            return f"its data file {f} was deleted (VACUUM)"
    return None


def _gone(spark: SparkSession, plan: TrainingPlan) -> PublishError | None:
    for pinned in plan.inputs:
        reason = unreadable(spark, pinned)
        if reason is not None:
            return PublishError(
                Code.TRAINING_INPUT_GONE,
                f"{pinned.table} version {pinned.version} ({pinned.role}) can no longer be "
                f"read: {reason}",
                "a VACUUM or log cleanup removed it; the set cannot be rebuilt bit for bit",
            )
    return None


def guard_inputs(spark: SparkSession, plan: TrainingPlan, action: Callable[[], T]) -> T:
    """Run ``action``; if it fails and a pinned input is gone, raise ``LF-TRN-001`` instead.

    Raises:
        PublishError: ``LF-TRN-001`` naming the input table and version.
    """
    try:
        return action()
    except Exception as exc:
        gone = _gone(spark, plan)
        if gone is not None:
            raise gone from exc
        raise


def reproduce(spark: SparkSession, ref: str, verify: bool = True) -> Reproduction:
    """Rebuild training set ``ref`` (an id or a manifest file) from its pinned versions.

    Args:
        spark: a Delta-enabled session on the same lakehouse.
        ref: the set's id (``<name>-v<N>``) or a path to its manifest JSON.
        verify: checksum the rebuilt splits and compare them with the manifest.

    Returns:
        The rebuilt set (lazy) and, with ``verify``, the per-split checks (all passed).

    Raises:
        PublishError: ``LF-TRN-003`` unknown id, ``LF-TRN-001`` a pinned input can no
            longer be read (names table and version), ``LF-TRN-002`` a split's rows,
            checksum or the schema differ (names the splits).
    """
    from lakeforge.training.build import SPLIT, build
    from lakeforge.training.checksum import spark_checksums
    from lakeforge.training.manifest import plan_of, schema_of
    from lakeforge.training.registry import load_manifest

    manifest = load_manifest(spark, ref)
    plan = plan_of(manifest)
    built = guard_inputs(spark, plan, lambda: build(spark, plan))
    identifier = str(manifest["id"])
    if not verify:
        return Reproduction(identifier, manifest, built)

    columns = list(manifest["checksum"]["columns"])
    sums = guard_inputs(spark, plan, lambda: spark_checksums(built.frame, columns, SPLIT))
    checks = tuple(
        SplitCheck(
            split=name,
            rows_expected=int(expected["rows"]),
            rows_actual=sums.get(name, (0, EMPTY))[0],
            checksum_expected=str(expected["checksum"]),
            checksum_actual=sums.get(name, (0, EMPTY))[1],
        )
        for name, expected in manifest["splits"].items()
    )
    schema_ok = schema_of(built) == manifest["schema"]
    result = Reproduction(identifier, manifest, built, checks, schema_ok)
    bad = [c for c in checks if not c.ok]
    if bad or not schema_ok:
        parts = [
            f"split {c.split} (rows {c.rows_expected} -> {c.rows_actual}, checksum "
            f"{c.checksum_expected} -> {c.checksum_actual})"
            for c in bad
        ]
        if not schema_ok:
            parts.append("the schema")
        raise PublishError(
            Code.CHECKSUM_MISMATCH,
            f"{identifier}: the rebuild differs from the manifest: " + "; ".join(parts),
        )
    return result
