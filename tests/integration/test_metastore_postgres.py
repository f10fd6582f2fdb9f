"""A PostgreSQL metastore made ready before Spark starts (runtime/metastore.py), against a
real server (tests/pgserver.py): two first processes at once make the Hive schema once,
and a wrong password is one coded line that does not show it."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from lakeforge.config.models import MetastoreSettings
from lakeforge.errors import Code, RuntimeSetupError
from lakeforge.runtime import jars as jarcache
from lakeforge.runtime import metastore
from tests.e2e.conftest import JARS
from tests.pgserver import PgServer


def fresh_database(pg: PgServer) -> MetastoreSettings:
    name = f"ms_{uuid.uuid4().hex[:8]}"
    pg.psql(f"CREATE DATABASE {name}")
    return MetastoreSettings(
        kind="postgres", host=pg.host, port=pg.port, database=name, user=pg.user
    )


def test_two_first_processes_make_the_schema_once(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSFILE", str(pg_server.pgpass))
    settings = fresh_database(pg_server)
    driver = jarcache.bundle_jars(JARS, "postgres")
    made: list[int] = []
    real = metastore._make_schema

    def counted(s: MetastoreSettings, jars: list[Path]) -> None:
        made.append(1)
        real(s, jars)

    monkeypatch.setattr(metastore, "_make_schema", counted)
    errors: list[BaseException] = []

    def first_process() -> None:
        try:
            metastore.prepare(settings, driver)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_process) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and made == [1]
    listed = pg_server.psql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
        database=settings.database,
    )
    tables = set(listed.split())
    # The Hive client's tables, TBL_PRIVS among them (the one a lazy create deadlocks on).
    assert {"DBS", "TBLS", "TBL_PRIVS", "SDS", "COLUMNS_V2", "PARTITIONS"} <= tables
    metastore.prepare(settings, driver)  # ready: nothing to make
    assert made == [1]


def test_a_wrong_password_is_one_coded_line_without_it(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSFILE", raising=False)
    monkeypatch.setenv("PGPASSWORD", "not-the-password-4711")
    settings = MetastoreSettings(
        kind="postgres", host=pg_server.host, port=pg_server.port, user=pg_server.user
    )
    with pytest.raises(RuntimeSetupError) as err:
        metastore.prepare(settings, [])
    assert err.value.code == Code.METASTORE_UNREACHABLE
    assert "password authentication failed" in err.value.message
    assert "not-the-password-4711" not in str(err.value)
