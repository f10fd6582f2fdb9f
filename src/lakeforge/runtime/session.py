"""Build the SparkSession a profile describes.

The local profile gives ``local[*]``, a warehouse folder, an embedded Derby metastore
and Delta, using only jars from the project's cache. Under ``spark-submit`` (the JVM
already exists) master and jars are not ours to set: ``spark-submit.sh`` passes the
same settings, computed by :func:`spark_conf`, on its command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lakeforge.config.models import Profile
from lakeforge.errors import Code, RuntimeSetupError
from lakeforge.io.s3 import s3a_conf
from lakeforge.runtime import cds
from lakeforge.runtime import jars as jarcache
from lakeforge.runtime.java import check_java
from lakeforge.runtime.metastore import metastore_conf, prepare
from lakeforge.runtime.spark_errors import describe, wait_metastore_free

# Seconds a Derby holder gets to let go before LF-RT-006 (see build_session).
METASTORE_GRACE_S = 20.0

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LAYER_SCHEMAS = ("bronze", "silver", "gold")
DRIVER_JAVA_OPTIONS = "spark.driver.extraJavaOptions"

# Settings every lakeforge session needs; a profile's `spark.conf` may add or override.
BASE_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    # One clock for every run, so dates in gold do not depend on the machine's zone.
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    # Every table lakeforge creates records its changes, so downstream steps can read
    # only what is new (append / merge / scd2 silver) instead of the whole input.
    "spark.databricks.delta.properties.defaults.enableChangeDataFeed": "true",
    # PySpark otherwise records the Python call site of every Column and DataFrame call
    # in the JVM (four py4j round trips and a stack walk each), for error messages. The
    # expressions here are lakeforge's own, built by the hundred per step (a step with 10
    # expectations made 8.8k py4j calls with it, see bench/RESULTS.md); our errors name
    # the YAML file and line instead. A profile's spark.conf can turn it back on.
    "spark.python.sql.dataFrameDebugging.enabled": "false",
    # Spark keeps 100 compiled classes of generated code. One run of a step makes dozens
    # (Delta's own queries inline versions and times), so a session that runs steps again
    # (a notebook, a scheduler, the test suite) evicted its stages and compiled them anew
    # each time, and the JVM then JIT-compiled them again: on 2 cores that CPU comes out
    # of the tasks. Profiled in bench/RESULTS.md (bench/quality_profile.py): 35-38 new
    # classes per rebuild with 100, 2-8 with 1000. The price: metaspace for the classes kept.
    "spark.sql.codegen.cache.maxEntries": "1000",
}


@dataclass(frozen=True)
class SessionSettings:
    """Everything needed to start Spark, as data (printable, testable, no JVM)."""

    master: str | None
    app_name: str
    conf: dict[str, str]
    jars: tuple[Path, ...]
    hive: bool
    derby_home: Path | None
    # Jars on the driver JVM's own class path (a metastore's JDBC driver).
    driver_jars: tuple[Path, ...] = ()


def project_path(root: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (root / p).resolve()


def is_uri(value: str) -> bool:
    return "://" in value


def jars_dir_for(profile: Profile, root: Path) -> Path:
    """The jar cache: ``$LAKEFORGE_JARS_DIR``, else the project's, else the checkout's.

    The last fallback lets a project folder without its own cache (a scratch project, a
    test's temporary copy) reuse the cache of the lakeforge checkout it runs from.
    """
    env = os.environ.get("LAKEFORGE_JARS_DIR")
    if env:
        return Path(env).resolve()
    own = project_path(root, profile.jars_dir)
    if own.is_dir():
        return own
    checkout = Path(__file__).resolve().parents[3] / ".lakeforge" / "jars"
    return checkout if checkout.is_dir() else own


def session_settings(
    profile: Profile,
    root: Path,
    app_name: str | None = None,
    need_jars: bool = True,
) -> SessionSettings:
    """Compute the session's settings from a profile; checks the jar cache.

    Raises:
        RuntimeSetupError: jars missing (with the command that fixes it).
    """
    conf = dict(BASE_CONF)
    warehouse = (
        profile.warehouse
        if is_uri(profile.warehouse)
        else str(project_path(root, profile.warehouse))
    )
    conf["spark.sql.warehouse.dir"] = warehouse
    hive = profile.metastore.kind != "in-memory"
    conf["spark.sql.catalogImplementation"] = "hive" if hive else "in-memory"
    store = metastore_conf(profile.metastore, project_path(root, profile.metastore.path))
    conf.update(store.conf)
    derby_home = store.derby_home
    log_conf = Path(__file__).with_name("log4j2.properties")
    java_opts = [f"-Dlog4j2.configurationFile=file:{log_conf}", *store.java_options]
    if profile.spark.class_archive:
        java_opts.extend(cds.driver_options())
    if profile.s3 is not None:
        conf.update(s3a_conf(profile.s3))
    conf.update(profile.spark.conf)
    # A profile's driver options (e.g. JIT flags for short-lived jobs) add to lakeforge's
    # own: replacing them would drop the log4j config and send derby.log to the cwd.
    extra = str(profile.spark.conf.get(DRIVER_JAVA_OPTIONS, "")).strip()
    conf[DRIVER_JAVA_OPTIONS] = " ".join([*java_opts, *([extra] if extra else [])])
    jar_files: list[Path] = []
    driver_jars: list[Path] = []
    if need_jars:
        jdir = jars_dir_for(profile, root)
        for bundle in profile.jar_bundles:
            into = driver_jars if bundle in store.driver_bundles else jar_files
            into.extend(jarcache.bundle_jars(jdir, bundle))
    if driver_jars:
        # On the driver JVM's own class path: the Hive client's class loader finds a JDBC
        # driver there, not in spark.jars. (The class archive no longer matches this
        # class path; the JVM then runs without it.)
        conf["spark.driver.extraClassPath"] = os.pathsep.join(str(j) for j in driver_jars)
    return SessionSettings(
        master=profile.spark.master,
        app_name=app_name or profile.spark.app_name,
        conf=conf,
        jars=tuple(jar_files),
        driver_jars=tuple(driver_jars),
        hive=hive,
        derby_home=derby_home,
    )


def inside_spark_submit() -> bool:
    """True when a JVM launched this Python process (spark-submit, pyspark shell, Databricks)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ or "DATABRICKS_RUNTIME_VERSION" in os.environ


def build_session(profile: Profile, root: Path, app_name: str | None = None) -> SparkSession:
    """Start (or join) the SparkSession for ``profile``.

    Raises:
        RuntimeSetupError: Java or jars missing, or Spark failed to start.
    """
    submitted = inside_spark_submit()
    settings = session_settings(profile, root, app_name, need_jars=not submitted)
    if not submitted:
        check_java()
    if settings.derby_home is not None:
        settings.derby_home.mkdir(parents=True, exist_ok=True)
    if profile.metastore.kind == "postgres":
        # Reachable, and with its schema, before a JVM starts (runtime/metastore.py).
        prepare(profile.metastore, jarcache.bundle_jars(jars_dir_for(profile, root), "postgres"))
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    # Derby lets one process boot the metastore. A second one fails deep in Hive after
    # 30 s of retries and thousands of log lines: name the holder up front. The JVM of a
    # command that has just returned keeps Derby open while it shuts down, so two commands
    # in a row (./dev example) would collide: a holder gets a short grace to let go first.
    fresh = not submitted and SparkContext._active_spark_context is None
    if settings.derby_home is not None and fresh:
        wait_metastore_free(project_path(root, profile.metastore.path), METASTORE_GRACE_S)

    builder = SparkSession.builder.appName(settings.app_name)
    if not submitted:
        if settings.master:
            builder = builder.master(settings.master)
        if settings.jars:
            builder = builder.config("spark.jars", ",".join(str(j) for j in settings.jars))
    for key, value in settings.conf.items():
        builder = builder.config(key, value)
    if settings.hive:
        builder = builder.enableHiveSupport()
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # py4j/JVM start-up failures come in many types
        raise RuntimeSetupError(
            Code.SPARK_START_FAILED,
            f"Spark failed to start: {describe(exc)}",
            "run with --debug for the full error",
        ) from exc
    spark.sparkContext.setLogLevel(os.environ.get("LAKEFORGE_SPARK_LOG_LEVEL", "ERROR"))
    if not fresh and not submitted:
        _join_storage(spark, settings.conf)
    if profile.s3 is not None:
        _drop_copied_credentials(spark)
    return spark


# Spark copies AWS_* credentials from its environment into these Hadoop settings when the
# context starts (SparkHadoopUtil.appendS3CredentialsFromEnvironment). lakeforge's S3A
# reads them from the environment itself (io/s3.py CREDENTIALS_PROVIDER), so the copies
# only put the secret where anything that prints or ships the configuration can show it
# (the UI redacts them by name; a conf dump, a broadcast or a third-party log might not).
_COPIED_CREDENTIALS = (
    "fs.s3.awsAccessKeyId",
    "fs.s3n.awsAccessKeyId",
    "fs.s3a.access.key",
    "fs.s3.awsSecretAccessKey",
    "fs.s3n.awsSecretAccessKey",
    "fs.s3a.secret.key",
    "fs.s3a.session.token",
)
_CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def _drop_copied_credentials(spark: SparkSession) -> None:
    """Remove the environment's AWS credentials Spark copied into the Hadoop settings
    (only where the value is the environment's: a key a profile set on purpose stays)."""
    values = {os.environ[name] for name in _CREDENTIAL_ENV if os.environ.get(name)}
    if not values:
        return
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key in _COPIED_CREDENTIALS:
        if hadoop.get(key) in values:
            hadoop.unset(key)


def _join_storage(spark: SparkSession, conf: dict[str, str]) -> None:
    """Give a session this process already had the profile's object-storage settings.

    ``getOrCreate`` on a running session applies SQL settings only; a ``spark.hadoop.*``
    setting reaches Hadoop when the context starts. S3A reads its settings when it first
    opens a bucket, so setting them on the live Hadoop configuration works for every
    bucket not opened yet (a notebook, or the test suite's shared session).
    """
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in conf.items():
        if key.startswith("spark.hadoop.fs.s3a."):
            hadoop.set(key.removeprefix("spark.hadoop."), value)


def ensure_schemas(spark: SparkSession, schemas: tuple[str, ...] = LAYER_SCHEMAS) -> None:
    """Create the layer schemas so ``SELECT * FROM gold.x`` resolves in any later process."""
    for schema in schemas:
        if not spark.catalog.databaseExists(schema):
            spark.sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
