"""``lakeforge land LOCAL s3://bucket/prefix/``: upload raw files into a versioned raw zone."""

from __future__ import annotations

from pathlib import Path

import click

from lakeforge.cli.context import env_option, project_root
from lakeforge.cli.output import print_rows, rows_format_option
from lakeforge.errors import Code, StorageError


@click.command("land")
@click.argument("local", type=click.Path(path_type=Path))
@click.argument("target")
@env_option
@rows_format_option
def land_command(local: Path, target: str, env: str, fmt: str) -> None:
    """Upload LOCAL (a file or a folder) below TARGET (s3://bucket/prefix/) with boto3.

    Large files go up in parts; each stored object is checked against the local bytes
    (ETag) and carries its sha256 as metadata. The bucket must keep versions. Prints
    each object's version id: bronze records it when it ingests the file.
    """
    from lakeforge.config.loader import load_profile
    from lakeforge.io.landing import land
    from lakeforge.io.s3 import client, is_object_uri

    profile, _ = load_profile(env, project_root())
    if profile.s3 is None:
        raise StorageError(
            Code.STORAGE_FAILED,
            f"profile '{env}' has no `s3:` section: no object store to land in",
            "use --env s3 (conf/s3.yml) or add an s3: section to the profile",
        )
    if not is_object_uri(target):
        raise StorageError(
            Code.STORAGE_FAILED, f"land: {target!r} is not an s3://bucket/prefix/ URI"
        )
    landed = land(client(profile.s3), profile.s3, local, target)
    print_rows(
        ["object", "version_id", "etag", "bytes", "parts", "sha256"],
        [
            (x.version.uri, x.version.version_id, x.version.etag, x.version.size, x.parts, x.sha256)
            for x in landed
        ],
        fmt,
    )


def register(group: click.Group) -> None:
    group.add_command(land_command)
