"""The JVM class archive (lakeforge.runtime.cds) without a JVM: where it lives, when a
session maps it, and that a failed or half-written warm-up never lands in its place.
(tests/integration/test_class_archive.py proves a real driver JVM maps the archive.)"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from lakeforge.config.models import Profile
from lakeforge.errors import Code, RuntimeSetupError
from lakeforge.runtime import cds
from lakeforge.runtime.session import DRIVER_JAVA_OPTIONS, session_settings


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAKEFORGE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _settings(tmp_path: Path, **spark: object) -> str:
    profile = Profile.model_validate({"spark": spark, "jar_bundles": []})
    return session_settings(profile, tmp_path).conf[DRIVER_JAVA_OPTIONS]


def test_cache_dir_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKEFORGE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cds.cache_dir() == (tmp_path / "xdg" / "lakeforge").resolve()
    monkeypatch.setenv("LAKEFORGE_CACHE_DIR", str(tmp_path / "own"))
    assert cds.cache_dir() == (tmp_path / "own").resolve()


def test_archive_is_keyed_by_java_and_spark(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = cds.archive_path()
    assert first.parent == cache / "cds" and first.suffix == ".jsa"
    monkeypatch.setattr(cds, "_java_identity", lambda: "another-jdk")
    assert cds.archive_path() != first


def test_a_reinstalled_pyspark_gets_its_own_archive(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same jar names and sizes, new modification times (a fresh venv at the same path):
    the JVM would refuse the old archive, so the key must change with them."""
    from lakeforge.runtime import jars

    folder = tmp_path / "pyspark-jars"
    folder.mkdir()
    jar = folder / "spark-core.jar"
    jar.write_bytes(b"PK" * 10)
    monkeypatch.setattr(jars, "pyspark_jars_dir", lambda: folder)
    before = cds.archive_path()
    os.utime(jar, ns=(jar.stat().st_atime_ns, jar.stat().st_mtime_ns + 1_000_000_000))
    assert cds.archive_path() != before


def test_prune_keeps_the_most_recently_used_archives(cache: Path) -> None:
    folder = cds.archive_path().parent
    folder.mkdir(parents=True)
    archives = [folder / f"{i}.jsa" for i in range(5)]
    for age, path in enumerate(archives):
        path.write_bytes(b"x")
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    gone = cds.prune(keep=2)
    assert sorted(gone) == sorted(archives[:3])
    assert sorted(folder.glob("*.jsa")) == sorted(archives[3:])
    # Mapping one marks it used, so a later prune keeps it over a newer, unused one.
    current = cds.archive_path()
    current.write_bytes(b"x")
    os.utime(current, (1, 1))
    assert cds.driver_options()[0] == f"-XX:SharedArchiveFile={current}"
    cds.prune(keep=1)
    assert list(folder.glob("*.jsa")) == [current]


def test_session_maps_the_archive_only_when_there_is_one(cache: Path, tmp_path: Path) -> None:
    assert "SharedArchiveFile" not in _settings(tmp_path)
    archive = cds.archive_path()
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"x")
    opts = _settings(tmp_path)
    assert f"-XX:SharedArchiveFile={archive}" in opts
    # A JVM that cannot use it says nothing and starts without it.
    assert "-Xshare:auto" in opts and "-Xlog:cds=off" in opts
    # The profile's own options still come after lakeforge's.
    assert opts.endswith("-XX:+UseSerialGC") or "UseSerialGC" not in opts
    assert "SharedArchiveFile" not in _settings(tmp_path, class_archive=False)


def _workload(code: str) -> cds.Workload:
    return lambda work, dump: [sys.executable, "-c", code, str(dump)]


def test_warm_renames_a_complete_archive_into_place(cache: Path, tmp_path: Path) -> None:
    magic = cds.DYNAMIC_MAGIC.to_bytes(4, "little")
    code = f"import sys; open(sys.argv[1], 'wb').write({magic!r} + bytes(2_000_000))"
    warmed = cds.warm(_workload(code), tmp_path)
    assert warmed.made and warmed.path == cds.archive_path() and warmed.path.is_file()
    assert [p.name for p in warmed.path.parent.iterdir()] == [warmed.path.name]
    again = cds.warm(_workload("raise SystemExit(3)"), tmp_path)
    assert not again.made and again.path == warmed.path  # made once


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("raise SystemExit(3)", "exit 3"),
        ("import sys; print('boom', file=sys.stderr); raise SystemExit(1)", "boom"),
        # Exit 0 but a half-written file: never renamed into place.
        (
            f"import sys; open(sys.argv[1], 'wb').write({cds.DYNAMIC_MAGIC.to_bytes(4, 'little')!r})",
            "no complete",
        ),
        ("import sys; open(sys.argv[1], 'wb').write(bytes(2_000_000))", "no complete"),
    ],
)
def test_failed_warm_up_leaves_no_archive(
    cache: Path, tmp_path: Path, code: str, says: str
) -> None:
    with pytest.raises(RuntimeSetupError) as info:
        cds.warm(_workload(code), tmp_path)
    assert info.value.code == Code.CLASS_ARCHIVE_FAILED
    assert says in info.value.message
    folder = cds.archive_path().parent
    assert not folder.exists() or list(folder.iterdir()) == []
    assert cds.driver_options() == []
