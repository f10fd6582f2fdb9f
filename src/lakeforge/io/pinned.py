"""Ingest pinned object versions: ``source.versions: {s3a://bucket/key: <version id>}``.

S3A reads the latest version of a key and cannot be told another. So a pinned version is
*staged*: copied inside the store (``CopyObject`` with the source's ``VersionId``; no byte
passes through lakeforge) to ``s3a://<bucket>/_lakeforge/pinned/<version id>/<key>``,
read from there by Spark, and its rows and log entries then name the original key and
its pinned version. Staged copies are deleted once the batch is committed. The version
can be one of a key overwritten or deleted since: the raw zone's history is what makes a
past ingest repeatable. A version that does not exist is ``LF-S3-006``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from lakeforge.config.models import S3Settings
from lakeforge.errors import Code, StorageError
from lakeforge.io.listing import FileInfo
from lakeforge.io.s3 import s3a_uri, split_uri, storage_error

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

STAGING = "_lakeforge/pinned"


def pinned_files(s3: Any, settings: S3Settings, pins: Mapping[str, str]) -> list[FileInfo]:
    """A :class:`FileInfo` for each pinned version (size, ETag and time of that version).

    Raises:
        StorageError: ``LF-S3-006`` no such version (or key), or the store failed.
    """
    out = []
    for uri, version in sorted(pins.items()):
        bucket, key = split_uri(uri)
        try:
            meta = s3.head_object(Bucket=bucket, Key=key, VersionId=version)
        except Exception as exc:
            err = storage_error(exc, settings, f"pinned version {version} of {uri}")
            if err.code == Code.OBJECT_MISSING or "400" in str(exc):
                raise StorageError(
                    Code.OBJECT_MISSING,
                    f"{uri}: no version {version} (source.versions)",
                    "list the key's versions: aws s3api list-object-versions",
                ) from exc
            raise err from exc
        out.append(
            FileInfo(
                path=s3a_uri(bucket, key),
                size=int(meta["ContentLength"]),
                mtime_ms=int(meta["LastModified"].timestamp() * 1000),
                etag=str(meta["ETag"]).strip('"'),
                version_id=version,
                pinned=True,
            )
        )
    return out


def apply_pins(files: Sequence[FileInfo], pins: Mapping[str, str]) -> list[FileInfo]:
    """Mark files that are a pinned version as pinned (a pending batch read back from the
    log knows the version, not that it was pinned)."""
    return [
        replace(f, pinned=True)
        if f.version_id is not None and pins.get(f.path) == f.version_id
        else f
        for f in files
    ]


def stage(s3: Any, settings: S3Settings, files: Sequence[FileInfo]) -> dict[str, FileInfo]:
    """Copy each pinned file's version to the staging prefix; staged path -> original."""
    staged: dict[str, FileInfo] = {}
    for f in files:
        if not f.pinned or f.version_id is None:
            continue
        bucket, key = split_uri(f.path)
        target = f"{STAGING}/{f.version_id}/{key}"
        try:
            s3.copy({"Bucket": bucket, "Key": key, "VersionId": f.version_id}, bucket, target)
        except Exception as exc:
            raise storage_error(exc, settings, f"staging {f.path} version {f.version_id}") from exc
        staged[s3a_uri(bucket, target)] = f
    return staged


def as_staged(files: Sequence[FileInfo], staged: Mapping[str, FileInfo]) -> list[FileInfo]:
    """The batch with each pinned file replaced by its staged copy (what Spark reads)."""
    by_original = {orig.path: path for path, orig in staged.items()}
    return [
        FileInfo(by_original[f.path], f.size, f.mtime_ms) if f.path in by_original else f
        for f in files
    ]


def original(files: Sequence[FileInfo], staged: Mapping[str, FileInfo]) -> list[FileInfo]:
    return [staged.get(f.path, f) for f in files]


def original_paths(df: DataFrame, staged: Mapping[str, FileInfo], column: str) -> DataFrame:
    """``column`` (the source file of each row) naming the original keys, not the copies."""
    from pyspark.sql import functions as F

    if not staged:
        return df
    pairs: list[Column] = [
        x for path, orig in staged.items() for x in (F.lit(path), F.lit(orig.path))
    ]
    mapped = F.element_at(F.create_map(*pairs), F.col(column))
    return df.withColumn(column, F.coalesce(mapped, F.col(column)))


def unstage(s3: Any, staged: Mapping[str, FileInfo]) -> None:
    """Delete the staged copies (best effort: a leftover is under a hidden prefix)."""
    for path in staged:
        bucket, key = split_uri(path)
        try:
            s3.delete_object(Bucket=bucket, Key=key)
        except Exception:  # the batch is committed; a copy left behind harms nothing
            continue
