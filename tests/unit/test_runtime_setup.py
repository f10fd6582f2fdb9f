"""Jar cache and Java checks: clear errors that say how to fix them (no JVM started)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from lakeforge.config.models import Profile
from lakeforge.errors import Code, RuntimeSetupError
from lakeforge.runtime import jars
from lakeforge.runtime.java import check_java
from lakeforge.runtime.session import session_settings


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("jackson-core-2.13.5.jar", "jackson-core"),
        ("zstd-jni-1.5.7-3.jar", "zstd-jni"),
        ("delta-spark_4.2_2.13-4.4.0.jar", "delta-spark_4.2_2.13"),
        ("scala-library-2.13.17.jar", "scala-library"),
        ("hive-exec-2.3.10-core.jar", "hive-exec"),
    ],
)
def test_artifact_base(name: str, base: str) -> None:
    assert jars.artifact_base(name) == base


def test_missing_cache_error_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(RuntimeSetupError) as info:
        jars.bundle_jars(tmp_path, "delta")
    assert info.value.code == Code.JARS_MISSING
    assert "lakeforge jars resolve delta" in (info.value.hint or "")


def test_incomplete_cache_is_detected(tmp_path: Path) -> None:
    d = tmp_path / "delta"
    d.mkdir()
    (d / "MANIFEST.json").write_text(
        json.dumps(
            {
                "artifacts": list(jars.BUNDLES["delta"].artifacts),
                "jars": [{"name": "delta-spark_4.2_2.13-4.4.0.jar", "sha256": "x"}],
            }
        )
    )
    with pytest.raises(RuntimeSetupError) as info:
        jars.bundle_jars(tmp_path, "delta")
    assert "missing" in info.value.message


def test_resolve_drops_jars_pyspark_ships(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolution logic with a stand-in `mvn` that "downloads" a fixed closure."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "mvn"
    fake.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case $a in -DoutputDirectory=*) out=${a#-DoutputDirectory=};; esac; done\n'
        "mkdir -p $out\n"
        "for j in delta-spark_4.2_2.13-4.4.0 jackson-core-2.13.5 scala-library-2.13.17 shims-0.9.25 "
        "unitycatalog-client-0.6.0; do echo $j > $out/$j.jar; done\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    # The stand-in's jars are not the pinned ones (test_pins_refuse_other_bytes).
    monkeypatch.setattr(jars, "PINS_FILE", tmp_path / "no-pins.json")
    monkeypatch.setenv("LAKEFORGE_CACHE_DIR", str(tmp_path / "user-cache"))
    files = jars.resolve("delta", tmp_path / "cache" / "jars")
    assert sorted(f.name for f in files) == [
        "delta-spark_4.2_2.13-4.4.0.jar",
        "unitycatalog-client-0.6.0.jar",
    ]
    manifest = jars.read_manifest(tmp_path / "cache" / "jars", "delta")
    assert manifest is not None
    assert set(manifest["dropped_as_provided_by_pyspark"]) == {  # type: ignore[arg-type]
        "jackson-core-2.13.5.jar",
        "scala-library-2.13.17.jar",
        "shims-0.9.25.jar",
    }
    # Cached now: a second resolve must not call Maven at all.
    fake.write_text("#!/bin/sh\nexit 3\n")
    assert len(jars.resolve("delta", tmp_path / "cache" / "jars")) == 2


def test_resolve_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "mvn"
    fake.write_text("#!/bin/sh\necho 'Could not resolve dependencies'\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    with pytest.raises(RuntimeSetupError) as info:
        jars.resolve("delta", tmp_path / "jars")
    assert info.value.code == Code.JAR_RESOLUTION_FAILED
    assert "Could not resolve" in info.value.message


def test_no_maven_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeSetupError) as info:
        jars.resolve("delta", tmp_path / "jars")
    assert "apt-get install -y maven" in (info.value.hint or "")


def test_java_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nojdk"))
    with pytest.raises(RuntimeSetupError) as info:
        check_java()
    assert info.value.code == Code.JAVA_MISSING
    assert "openjdk-17" in (info.value.hint or "")


def test_old_java_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bin").mkdir()
    java = tmp_path / "bin" / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(RuntimeSetupError) as info:
        check_java()
    assert "Java 11" in info.value.message


def test_local_session_settings(tmp_path: Path) -> None:
    s = session_settings(Profile(), tmp_path, need_jars=False)
    assert s.master == "local[*]" and s.hive
    assert s.conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert s.conf["spark.sql.warehouse.dir"] == str(tmp_path / "lakehouse" / "warehouse")
    assert (
        f"databaseName={tmp_path / 'lakehouse' / 'metastore_db'}"
        in s.conf["spark.hadoop.javax.jdo.option.ConnectionURL"]
    )
    assert s.conf["spark.sql.session.timeZone"] == "UTC"


def test_profile_conf_overrides_base(tmp_path: Path) -> None:
    profile = Profile.model_validate(
        {
            "spark": {"conf": {"spark.sql.session.timeZone": "Europe/Berlin"}},
            "metastore": {"kind": "in-memory"},
            "warehouse": "s3a://b/w",
        }
    )
    s = session_settings(profile, tmp_path, need_jars=False)
    assert s.conf["spark.sql.session.timeZone"] == "Europe/Berlin"
    assert s.conf["spark.sql.warehouse.dir"] == "s3a://b/w"
    assert not s.hive and "spark.hadoop.javax.jdo.option.ConnectionURL" not in s.conf


def test_profile_driver_options_add_to_lakeforges(tmp_path: Path) -> None:
    """A profile's ``spark.driver.extraJavaOptions`` keeps lakeforge's log4j config and
    Derby home: the options are joined, not replaced."""
    profile = Profile.model_validate(
        {"spark": {"conf": {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1"}}}
    )
    opts = (
        session_settings(profile, tmp_path, need_jars=False)
        .conf["spark.driver.extraJavaOptions"]
        .split()
    )
    assert opts[-1] == "-XX:TieredStopAtLevel=1"
    assert any(o.startswith("-Dlog4j2.configurationFile=") for o in opts)
    assert f"-Dderby.system.home={tmp_path / 'lakehouse'}" in opts
