"""Where a table lives, found without Spark or the metastore: the warehouse's layout.

Every table lakeforge writes is a managed table of Spark's catalog, so its Delta log is
at ``<warehouse>/<schema>.db/<table>`` (``<warehouse>/<table>`` for schema ``default``),
on local disk or on ``s3a://``: the profile's ``warehouse`` alone locates it. Names are
lower-cased, as the metastore stores them. For the object store, delta-rs gets the
profile's endpoint, region and addressing style; credentials it takes, like S3A and
boto3, from the environment (``AWS_ACCESS_KEY_ID`` ...) or the default chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lakeforge.config.models import Profile, S3Settings
from lakeforge.io.s3 import client, delta_rs_options, is_object_uri, split_uri
from lakeforge.runtime.session import is_uri, project_path


@dataclass(frozen=True)
class Location:
    uri: str  # what delta-rs opens: a local path or s3://bucket/key
    storage_options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Warehouse:
    base: str
    storage_options: dict[str, str]
    s3: S3Settings | None = None

    @classmethod
    def of(cls, profile: Profile, root: Path) -> Warehouse:
        value = profile.warehouse
        if is_object_uri(value):
            bucket, key = split_uri(value)
            base = f"s3://{bucket}/{key.strip('/')}".rstrip("/")
            return cls(base, _s3_options(profile), profile.s3 or S3Settings())
        if is_uri(value):
            return cls(value.rstrip("/"), {})
        return cls(str(project_path(root, value)), {})

    def location(self, name: str) -> Location:
        schema, table = name.lower().split(".", 1)
        folder = table if schema == "default" else f"{schema}.db/{table}"
        return Location(f"{self.base}/{folder}", self.storage_options)

    def exists(self, name: str) -> bool:
        from deltalake import DeltaTable

        where = self.location(name)
        try:
            return bool(DeltaTable.is_deltatable(where.uri, where.storage_options))
        except Exception:  # an unreachable store: not resolvable here (Spark says why)
            return False

    def commit_times(self, name: str) -> list[tuple[int, int]]:
        """``(version, milliseconds)`` of each commit, as Delta's ``TIMESTAMP AS OF`` sees
        them without in-commit timestamps: the commit file's modification time (local
        file, or the object's LastModified), made strictly increasing the way Delta's
        history manager does (a commit no later than the one before counts 1 ms after it).
        """
        log = f"{self.location(name).uri}/_delta_log"
        stamps: list[tuple[int, int]] = []
        if log.startswith("s3://"):
            bucket, prefix = split_uri(log)
            pages = client(self.s3 or S3Settings()).get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=bucket, Prefix=prefix + "/"):
                for obj in page.get("Contents", []):
                    version = _commit_version(obj["Key"].rsplit("/", 1)[1])
                    if version is not None:
                        stamps.append((version, int(obj["LastModified"].timestamp() * 1000)))
        else:
            for path in Path(log).glob("*.json"):
                version = _commit_version(path.name)
                if version is not None:
                    stamps.append((version, path.stat().st_mtime_ns // 1_000_000))
        stamps.sort()
        out: list[tuple[int, int]] = []
        for version, ms in stamps:
            out.append((version, max(ms, out[-1][1] + 1) if out else ms))
        return out

    def known(self) -> list[str]:
        """``schema.table`` of every Delta table in a local warehouse (for error messages)."""
        if self.base.startswith("s3://") or is_uri(self.base):
            return []
        root = Path(self.base)
        names = [
            f"{d.parent.name.removesuffix('.db')}.{d.name}"
            for d in root.glob("*.db/*")
            if (d / "_delta_log").is_dir()
        ]
        names += [f"default.{d.name}" for d in root.glob("*") if (d / "_delta_log").is_dir()]
        return sorted(names)


def _commit_version(file_name: str) -> int | None:
    stem, _, ext = file_name.partition(".")
    return int(stem) if ext == "json" and len(stem) == 20 and stem.isdigit() else None


def _s3_options(profile: Profile) -> dict[str, str]:
    s3 = profile.s3
    if s3 is None:
        return {}
    return delta_rs_options(s3.endpoint, s3.region, s3.tls, s3.path_style)
