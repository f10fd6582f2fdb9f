"""The metastore settings a profile gives Spark (runtime/metastore.py), without a JVM:
Derby, PostgreSQL (password from PGPASSWORD or a pgpass file, a secret), and the config
rules (no password in YAML, host and user required)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from lakeforge import redaction
from lakeforge.config.models import MetastoreSettings, Profile
from lakeforge.errors import Code, ConfigError, RuntimeSetupError
from lakeforge.runtime import metastore

PG = MetastoreSettings(kind="postgres", host="db.internal", port=6543, user="lf", database="meta")


@pytest.fixture(autouse=True)
def no_ambient_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "absent"))


def pgpass(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "pgpass"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_derby_is_a_folder_and_its_home() -> None:
    got = metastore.metastore_conf(MetastoreSettings(), Path("/p/lakehouse/metastore_db"))
    assert got.conf == {
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            "jdbc:derby:;databaseName=/p/lakehouse/metastore_db;create=true"
        )
    }
    assert got.derby_home == Path("/p/lakehouse") and got.driver_bundles == ()


def test_postgres_names_the_database_and_puts_its_driver_on_the_driver_class_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", "pw-from-the-environment")
    got = metastore.metastore_conf(PG, tmp_path)
    assert got.conf["spark.hadoop.javax.jdo.option.ConnectionURL"] == (
        "jdbc:postgresql://db.internal:6543/meta"
    )
    assert got.conf["spark.hadoop.javax.jdo.option.ConnectionUserName"] == "lf"
    assert got.conf["spark.hadoop.javax.jdo.option.ConnectionPassword"] == (
        "pw-from-the-environment"
    )
    # Made up front by prepare(): lazily made tables deadlock on PostgreSQL.
    assert got.conf["spark.hadoop.datanucleus.schema.autoCreateAll"] == "false"
    assert got.driver_bundles == ("postgres",) and got.derby_home is None
    assert redaction.is_registered("pw-from-the-environment")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("db.internal:6543:meta:lf:s3cret-one\n", "s3cret-one"),
        ("*:*:*:lf:wild-card\n", "wild-card"),
        ("# comment\nother:6543:meta:lf:nope\ndb.internal:*:*:*:second\n", "second"),
        ("db.internal:6543:meta:lf:with\\:colon\\\\slash\n", "with:colon\\slash"),
        ("db.internal:5432:meta:lf:wrong-port\n", None),
    ],
)
def test_pgpass_follows_libpq(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: str, expected: str | None
) -> None:
    monkeypatch.setenv("PGPASSFILE", str(pgpass(tmp_path, lines)))
    assert metastore.postgres_password(PG) == expected


def test_a_pgpass_others_can_read_is_ignored_like_libpq_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSFILE", str(pgpass(tmp_path, "*:*:*:*:open-file\n", 0o644)))
    assert metastore.postgres_password(PG) is None


def test_profile_with_a_postgres_metastore_gets_the_driver_bundle() -> None:
    profile = Profile.model_validate(
        {"metastore": {"kind": "postgres", "host": "h", "user": "u"}, "jar_bundles": ["delta"]}
    )
    assert profile.jar_bundles == ["delta", "postgres"]


def test_a_password_in_yaml_is_refused_at_its_line(tmp_path: Path) -> None:
    from lakeforge.config.loader import load_profile

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "pg.yml").write_text(
        "metastore:\n  kind: postgres\n  host: h\n  user: u\n  password: hunter22\n"
    )
    with pytest.raises(ConfigError) as err:
        load_profile("pg", tmp_path)
    text = str(err.value)
    assert "pg.yml:5" in text and "PGPASSWORD" in text and "hunter22" not in text


def test_postgres_needs_host_and_user() -> None:
    with pytest.raises(ValueError, match="needs host and user"):
        MetastoreSettings(kind="postgres", host="h")


def test_an_unreachable_database_is_one_coded_error_before_any_jvm() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    settings = MetastoreSettings(kind="postgres", host="127.0.0.1", port=port, user="lf")
    with pytest.raises(RuntimeSetupError) as err:
        metastore.prepare(settings, [])
    assert err.value.code == Code.METASTORE_UNREACHABLE
    assert f"postgresql://lf@127.0.0.1:{port}/metastore" in err.value.message
