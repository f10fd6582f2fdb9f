"""Land local files in a versioned raw zone: ``lakeforge land LOCAL s3://bucket/prefix/``.

Each file is uploaded with boto3 (in parts above the profile's
``s3.multipart_threshold_mb``, streamed from disk, never read whole into memory), then
checked: the object's ETag must be the one its bytes give, which the upload's part size
makes computable locally (MD5 of the file, or for a multipart upload the MD5 of the
parts' MD5s, ``-N``), and its sha256 is stored with it as user metadata
(``x-amz-meta-lakeforge-sha256``) for anyone who reads it back later. The bucket must
keep versions: a raw zone that forgets the bytes a model was trained on is not one.

The result per file is its new object version (id, ETag, size): what bronze records when
it ingests the file and what a training set's lineage names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakeforge.config.models import S3Settings
from lakeforge.errors import Code, StorageError
from lakeforge.io.s3 import ObjectVersion, head, split_uri, storage_error, versioning_enabled

MIB = 1024 * 1024
MAX_PARTS = 10_000  # S3's limit; boto3 doubles the part size until a file fits in it
SHA256_META = "lakeforge-sha256"
UPLOAD_THREADS = 4


@dataclass(frozen=True)
class Landed:
    """One uploaded file: where from, the object version it became, its sha256."""

    local: Path
    version: ObjectVersion
    sha256: str
    parts: int  # 0: a single PUT


def part_size(size: int, threshold: int) -> int:
    """The part size boto3 uses for a file of ``size`` bytes (s3transfer's adjuster)."""
    chunk = threshold
    while -(-size // chunk) > MAX_PARTS:
        chunk *= 2
    return chunk


def local_checksums(path: Path, chunk: int, multipart: bool) -> tuple[str, str, int]:
    """(expected ETag, sha256, parts) of ``path`` uploaded in parts of ``chunk`` bytes."""
    sha = hashlib.sha256()
    whole = hashlib.md5(usedforsecurity=False)
    part_md5s: list[bytes] = []
    with path.open("rb") as f:
        while block := f.read(chunk):
            sha.update(block)
            if multipart:
                part_md5s.append(hashlib.md5(block, usedforsecurity=False).digest())
            else:
                whole.update(block)
    if not multipart:
        return whole.hexdigest(), sha.hexdigest(), 0
    combined = hashlib.md5(b"".join(part_md5s), usedforsecurity=False).hexdigest()
    return f"{combined}-{len(part_md5s)}", sha.hexdigest(), len(part_md5s)


def files_under(local: Path) -> Iterator[tuple[Path, str]]:
    """``(file, key suffix)`` for a file, or every file below a folder, sorted."""
    if local.is_file():
        yield local, local.name
        return
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        yield path, path.relative_to(local).as_posix()


def land(s3: Any, settings: S3Settings, local: Path, target: str) -> list[Landed]:
    """Upload ``local`` (a file or a folder) below ``target`` (``s3://bucket/prefix/``).

    A target ending in ``/`` (or a folder as ``local``) is a prefix: each file keeps its
    name (and its path below the folder). Otherwise a single file is stored at exactly
    ``target``'s key.

    Raises:
        StorageError: no such local path, bucket missing, versioning off, unreachable,
            refused, or a stored object whose checksum is not the file's.
    """
    from boto3.s3.transfer import TransferConfig

    if not local.exists():
        raise StorageError(Code.OBJECT_MISSING, f"land: no local file or folder {local}")
    bucket, key = split_uri(target)
    try:
        if not versioning_enabled(s3, bucket):
            raise StorageError(
                Code.VERSIONING_OFF,
                f"land: bucket '{bucket}' does not keep object versions",
                f"enable it: aws s3api put-bucket-versioning --bucket {bucket} "
                "--versioning-configuration Status=Enabled",
            )
    except StorageError:
        raise
    except Exception as exc:
        raise storage_error(exc, settings, f"land into s3://{bucket}") from exc
    threshold = settings.multipart_threshold_mb * MIB
    as_prefix = local.is_dir() or target.endswith("/") or not key
    landed: list[Landed] = []
    for path, suffix in files_under(local):
        object_key = (key.rstrip("/") + "/" + suffix).lstrip("/") if as_prefix else key
        size = path.stat().st_size
        chunk = part_size(size, threshold)
        multipart = size >= threshold
        expected, sha, parts = local_checksums(path, chunk, multipart)
        # At most UPLOAD_THREADS parts in flight: memory stays at a few parts, whatever
        # the file's size (boto3 reads each part into memory to send it).
        config = TransferConfig(
            multipart_threshold=threshold,
            multipart_chunksize=chunk,
            max_concurrency=UPLOAD_THREADS,
        )
        what = f"land {path.name} -> s3://{bucket}/{object_key}"
        try:
            s3.upload_file(
                str(path),
                bucket,
                object_key,
                ExtraArgs={"Metadata": {SHA256_META: sha}},
                Config=config,
            )
            version = _newest_version(s3, bucket, object_key)
        except Exception as exc:
            raise storage_error(exc, settings, what) from exc
        if version.etag != expected or version.size != size:
            raise StorageError(
                Code.UPLOAD_CHECKSUM,
                f"{what}: stored object (etag {version.etag}, {version.size} bytes) is not "
                f"the local file (etag {expected}, {size} bytes)",
                "retry the upload; the bad version stays in the bucket's history",
            )
        landed.append(Landed(path, version, sha, parts))
    return landed


def _newest_version(s3: Any, bucket: str, key: str) -> ObjectVersion:
    # upload_file returns nothing; HEAD gives the version just written. A writer racing on
    # the same key could make this another version: its ETag then fails the check above.
    return head(s3, bucket, key)
