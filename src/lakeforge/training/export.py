"""Export one split of a published training set to plain files for tools outside Spark.

``<out>/`` receives, for set ``<id>`` and split ``<split>``:

* ``<id>-<split>-00000.parquet`` (or ``.csv``, with a header), one file per Spark
  output partition, without the ``split`` column (it is the file name's);
* ``<id>.json``, a copy of the manifest;
* ``SHA256SUMS``: ``<sha256>  <file>`` for every file above, the format ``sha256sum -c``
  checks.

The rows come from ``training.<name>`` at the manifest's table version, and are
checksummed (one Spark job) against the manifest before anything is written, so an
export is provably the published content. ``out`` must be a local directory that is
missing or empty; Spark writes into a staging folder inside it, then the data files are
renamed into place (so it needs a driver and executors sharing that file system, as in
local mode).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lakeforge.errors import Code, PublishError
from lakeforge.io.digest import sha256_file

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

FORMATS = ("parquet", "csv")
SUMS = "SHA256SUMS"


@dataclass(frozen=True)
class Export:
    id: str
    split: str
    rows: int
    checksum: str  # content checksum, equal to the manifest's
    files: tuple[Path, ...]  # data files, then the manifest copy
    sums_file: Path


def read_sums(path: Path) -> dict[str, str]:
    """``SHA256SUMS`` as {file name: sha256}."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        out[name] = digest
    return out


def export_split(spark: SparkSession, ref: str, split: str, fmt: str, out: Path) -> Export:
    """Write split ``split`` of set ``ref`` (id or manifest file) to ``out`` as ``fmt``.

    Raises:
        PublishError: ``LF-TRN-003`` unknown id or split, ``LF-TRN-005`` ``out`` is not
            empty, ``LF-TRN-002`` the table's rows do not match the manifest.
    """
    from pyspark.sql import functions as F

    from lakeforge.io.delta import read_version
    from lakeforge.training.build import SPLIT
    from lakeforge.training.checksum import spark_checksums
    from lakeforge.training.registry import load_manifest

    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    manifest = load_manifest(spark, ref)
    identifier = str(manifest["id"])
    if split not in manifest["splits"]:
        raise PublishError(
            Code.TRAINING_SET_NOT_FOUND,
            f"{identifier} has no split '{split}' (splits: {', '.join(manifest['splits'])})",
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PublishError(Code.EXPORT_TARGET_EXISTS, f"{out} exists and is not an empty directory")

    columns = list(manifest["checksum"]["columns"])
    table = read_version(spark, manifest["table"], int(manifest["table_version"]))
    rows = table.where(F.col(SPLIT) == split).select(*[F.col(f"`{c}`") for c in columns])
    expected = manifest["splits"][split]
    n, checksum = spark_checksums(rows.withColumn(SPLIT, F.lit(split)), columns, SPLIT).get(
        split, (0, format(0, "016x"))
    )
    if (n, checksum) != (int(expected["rows"]), expected["checksum"]):
        raise PublishError(
            Code.CHECKSUM_MISMATCH,
            f"{manifest['table']} version {manifest['table_version']} split {split}: rows "
            f"{n}, checksum {checksum}; the manifest says {expected['rows']}, "
            f"{expected['checksum']}",
        )

    out.mkdir(parents=True, exist_ok=True)
    staging = out / ".lf-staging"
    writer = rows.write.mode("errorifexists")
    if fmt == "csv":
        writer = writer.option("header", "true")
    writer.format(fmt).save(str(staging))
    files: list[Path] = []
    for i, part in enumerate(sorted(staging.glob("part-*"))):
        target = out / f"{identifier}-{split}-{i:05d}.{fmt}"
        part.rename(target)
        files.append(target)
    shutil.rmtree(staging)
    copy = out / f"{identifier}.json"
    copy.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    files.append(copy)
    sums = out / SUMS
    sums.write_text("".join(f"{sha256_file(f)}  {f.name}\n" for f in files), encoding="utf-8")
    return Export(identifier, split, n, checksum, tuple(files), sums)
