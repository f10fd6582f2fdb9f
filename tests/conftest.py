"""Shared fixtures. The Delta SparkSession is created once per test session, lazily:
unit tests never request it, so `pytest tests/unit` starts no JVM."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# An xdist worker's __main__ has neither __spec__ nor __file__; pyspark.sql.connect's
# check_dependencies() takes that for a doctest run and calls sys.exit(0) when an import
# reaches it (Great Expectations does), which ends a test early as if it had passed.
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "<pytest-xdist worker>"

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from tests.pgserver import PgServer
    from tests.s3server import S3Server

# The object-storage tests' S3 server (s3_server) accepts these keys. Spark's S3A reads
# credentials from the JVM's environment, never from a setting, and the JVM's environment
# is fixed when the shared session starts: so they are this process's from the start.
# Fresh per test session; the tests never reach a real AWS account.
os.environ["AWS_ACCESS_KEY_ID"] = "lftest" + secrets.token_hex(6)
os.environ["AWS_SECRET_ACCESS_KEY"] = secrets.token_urlsafe(24)
os.environ["AWS_REGION"] = "us-east-1"
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_SESSION_TOKEN", None)


@pytest.fixture(scope="session")
def lakehouse_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Project root of the shared session: its warehouse and Derby metastore live here."""
    return tmp_path_factory.mktemp("lakehouse-root")


@pytest.fixture(scope="session")
def spark(lakehouse_root: Path) -> Iterator[SparkSession]:
    from lakeforge.config.models import Profile
    from lakeforge.runtime.session import build_session

    # Small and quiet, like Delta's own test conf: 2 cores, few partitions, no UI.
    profile = Profile.model_validate(
        {
            "spark": {
                "master": "local[2]",
                "conf": {
                    "spark.sql.shuffle.partitions": "2",
                    "spark.default.parallelism": "2",
                    "spark.databricks.delta.snapshotPartitions": "2",
                    "spark.ui.enabled": "false",
                    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
                    # Interpreted expressions instead of generated code, as Spark's own
                    # suites run half their tests: on test-sized data compiling each new
                    # query's Java (Janino, then the JIT) costs more than running it. 3
                    # integration modules: 211 s -> 180 s. Generated code still runs in
                    # every subprocess on conf/local.yml (spark-submit, the secrets canary)
                    # and in ./dev example and bench/.
                    "spark.sql.codegen.wholeStage": "false",
                    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
                    # No adaptive re-planning between the stages of a query: on a few rows
                    # it is planning time with nothing to adapt to (the same 3 modules:
                    # 196 s -> 169 s). Subprocesses on conf/local.yml keep Spark's default.
                    "spark.sql.adaptive.enabled": "false",
                },
            },
            # S3A for the object-storage tests (tests/integration/test_object_storage.py).
            "jar_bundles": ["delta", "avro", "s3"],
        }
    )
    session = build_session(profile, lakehouse_root, "lakeforge-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 server (SeaweedFS) on 127.0.0.1 for this test session; fails, never
    skips, when it cannot start. Buckets: create your own (``create_bucket``)."""
    from tests import s3server

    server = s3server.start(
        tmp_path_factory.mktemp("s3server"),
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    """A real PostgreSQL (Debian's) on 127.0.0.1 for a shared metastore; fails, never
    skips, when it cannot start. Its role's password is only in ``pg_server.pgpass``."""
    from tests import pgserver

    server = pgserver.start(tmp_path_factory.mktemp("pgserver"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def spark_s3(spark: SparkSession, s3_server: S3Server) -> SparkSession:
    """The shared session, reaching ``s3_server`` through S3A (as a joined profile would)."""
    from lakeforge.config.models import S3Settings
    from lakeforge.io.s3 import s3a_conf

    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    settings = S3Settings(endpoint=s3_server.endpoint, path_style=True)
    for key, value in s3a_conf(settings).items():
        hadoop.set(key.removeprefix("spark.hadoop."), value)
    return spark
