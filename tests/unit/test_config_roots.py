"""Sources and sql_file stay inside the project or the profile's allowed_roots (LF-CFG-012)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakeforge.config.roots import is_inside, resolve_roots
from lakeforge.errors import Code, ConfigError
from lakeforge.plan.load import load_pipeline
from tests.helpers import make_project


def pipeline(path: str, gold: str = "    sql: SELECT * FROM bronze.orders\n") -> str:
    return (
        "name: shop\nvars:\n  up: ../..\nbronze:\n  orders:\n    source:\n      format: csv\n"
        f"      path: '{path}'\ngold:\n  report:\n{gold}"
    )


def issues(
    tmp_path: Path, text: str, profile: str | None = None
) -> list[tuple[str, int, str, str]]:
    project = make_project(tmp_path / "proj", text, {"local": profile} if profile else None)
    with pytest.raises(ConfigError) as info:
        load_pipeline(project)
    return [(i.code, i.line, i.key, i.message) for i in info.value.issues]


@pytest.mark.parametrize(
    "path",
    [
        "../../etc/hostname",
        "${var:up}/etc/hostname",
        "/etc/hostname",
        "file:///etc/hostname",
        "file:/etc/hostname",
        "raw/*/../../../etc/hostname",
        "raw/{a,../../../etc}/hostname",
        "/{etc,tmp}/hostname",
        "s3a://bucket/raw/orders.csv",
        "~/orders.csv",
    ],
)
def test_a_source_outside_the_project_is_located_at_its_path_key(tmp_path: Path, path: str) -> None:
    [(code, line, key, message)] = issues(tmp_path, pipeline(path))
    assert (code, line, key) == (Code.PATH_OUTSIDE_ROOTS, 8, "bronze.orders.source.path")
    assert path.split("}")[-1] in message or "hostname" in message


def test_a_symlink_inside_the_project_that_points_outside_is_outside(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "orders.csv").write_text("a\n1\n")
    (tmp_path / "proj" / "raw").mkdir(parents=True)
    os.symlink(outside, tmp_path / "proj" / "raw" / "link")
    [(code, *_)] = issues(tmp_path, pipeline("raw/link/*.csv"))
    assert code == Code.PATH_OUTSIDE_ROOTS


def test_paths_inside_the_project_and_allowed_roots_pass(tmp_path: Path) -> None:
    shared = tmp_path / "shared_raw"
    shared.mkdir()
    profile = f"allowed_roots: [{shared}, ../landing, 's3a://Bucket/raw/']\n"
    for path in [
        "raw/orders/*.csv",
        "./raw/../raw/orders.csv",
        f"{shared}/orders/*.csv",
        f"file://{shared}/x.csv",
        "../landing/orders.csv",  # relative root: from the project root
        "s3a://Bucket/raw/orders/*.csv",
        "S3A://Bucket/raw/./orders.csv",
    ]:
        project = make_project(tmp_path / "proj", pipeline(path), {"local": profile})
        load_pipeline(project)  # no error


def test_a_uri_is_allowed_only_under_a_listed_uri_root(tmp_path: Path) -> None:
    profile = "allowed_roots: ['s3a://bucket/raw']\n"
    for path in [
        "s3a://bucket/rawx/a.csv",
        "s3a://bucket/raw/../secret/a.csv",
        "s3a://other/raw/a",
    ]:
        [(code, *_)] = issues(tmp_path, pipeline(path), profile)
        assert code == Code.PATH_OUTSIDE_ROOTS


def test_a_sql_file_outside_is_refused_before_it_is_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.sql"
    secret.write_text("SELECT 'top-secret-content'\n")
    gold = "    sql_file: ../../../secret.sql\n"
    [(code, line, key, message)] = issues(tmp_path, pipeline("raw/*.csv", gold))
    assert (code, line, key) == (Code.PATH_OUTSIDE_ROOTS, 11, "gold.report.sql_file")
    assert "top-secret-content" not in message and "secret.sql" in message


def test_sql_file_symlink_and_uri_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.sql"
    secret.write_text("SELECT 'top-secret-content'\n")
    jobs = tmp_path / "proj" / "jobs" / "shop"
    jobs.mkdir(parents=True)
    os.symlink(secret, jobs / "report.sql")
    for ref in ["report.sql", "file:///etc/hostname", "/etc/hostname"]:
        found = issues(tmp_path, pipeline("raw/*.csv", f"    sql_file: {ref}\n"))
        assert [c for c, *_ in found] == [Code.PATH_OUTSIDE_ROOTS]
        assert all("top-secret" not in m for *_, m in found)


def test_a_sql_file_that_is_not_utf8_is_a_coded_error(tmp_path: Path) -> None:
    jobs = tmp_path / "proj" / "jobs" / "shop"
    jobs.mkdir(parents=True)
    (jobs / "report.sql").write_bytes(b"SELECT 'caf\xe9'\n")
    found = issues(tmp_path, pipeline("raw/*.csv", "    sql_file: report.sql\n"))
    assert [c for c, *_ in found] == [Code.NOT_UTF8]


def test_resolve_roots_resolves_relative_and_normalises_uris(tmp_path: Path) -> None:
    roots = resolve_roots(tmp_path, ["landing", "S3A://b/raw/", "s3a://b/../x"])
    assert roots == (str(tmp_path.resolve()), str((tmp_path / "landing").resolve()), "s3a://b/raw")


def test_is_inside_needs_a_uri_root_for_a_uri_and_a_local_root_for_a_path(tmp_path: Path) -> None:
    roots = resolve_roots(tmp_path, ["s3a://b"])
    assert is_inside("s3a://b/x", roots) and not is_inside("s3a://bb/x", roots)
    assert is_inside("x/*.csv", roots, base=tmp_path)
    assert not is_inside(str(tmp_path) + "x/a.csv", roots)  # a sibling with a common prefix
