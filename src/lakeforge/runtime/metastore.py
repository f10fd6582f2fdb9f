"""The metastore a profile names: Spark settings for it, and a shared one made ready.

``derby`` keeps names in an embedded database one process at a time may open;
``postgres`` keeps them in a PostgreSQL database that any number of processes share (a
pipeline run, ``lakeforge sql`` and ``lakeforge serve`` at once). Spark's built-in Hive
client (2.3) reaches it through DataNucleus and PostgreSQL's JDBC driver (jar bundle
``postgres``, on the driver's class path: the Hive client's class loader does not see
``spark.jars``).

Two things about PostgreSQL the Hive client does not handle, done here before Spark starts:

* **The schema exists before the first table.** Left to create its tables lazily
  (``datanucleus.schema.autoCreateAll``), the Hive client creates ``TBL_PRIVS`` on a
  second connection while the first holds a lock on ``TBLS`` for the table it is
  creating: the first ``CREATE TABLE`` on an empty database waits forever (seen here;
  HiveRunner#50 reports the same). :func:`prepare` makes the whole schema once, under a
  PostgreSQL advisory lock, with DataNucleus's own SchemaTool over the Hive client's
  mapping (``package.jdo`` in pyspark's hive-metastore jar): the tables the client
  expects, made by the code that will use them.
* **A clear error early.** A wrong host or password surfaces from Hive after about 20 s
  of JVM start as a stack trace; :func:`prepare` connects first (pg8000, pure Python)
  and fails in milliseconds with ``LF-RT-009`` naming the database.

The password is never in YAML: ``PGPASSWORD``, else the pgpass file libpq would read
(``PGPASSFILE``, else ``~/.pgpass``). It becomes a secret of the process (masked in every
output) and reaches Spark as ``javax.jdo.option.ConnectionPassword``, which Spark's UI
redacts by name and ``spark-submit.sh`` passes in its 0600 properties file.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lakeforge import redaction
from lakeforge.config.models import MetastoreSettings
from lakeforge.errors import Code, RuntimeSetupError

# Held while one process makes the schema, so two first processes do not both try.
_INIT_LOCK_KEY = 0x1AFE_F09E
CONNECT_TIMEOUT_S = 10
SCHEMA_TOOL_TIMEOUT_S = 300
# The Hive client's settings for an external database (HiveConf's defaults for a
# metastore database it did not create itself).
_HIVE_JDO = {
    "datanucleus.identifierFactory": "datanucleus1",
    "datanucleus.rdbms.useLegacyNativeValueStrategy": "true",
    "datanucleus.storeManagerType": "rdbms",
}


@dataclass(frozen=True)
class MetastoreConf:
    """What a session needs for its metastore."""

    conf: dict[str, str] = field(default_factory=dict)
    java_options: tuple[str, ...] = ()
    derby_home: Path | None = None
    # Jar bundles the driver JVM needs on its own class path (not spark.jars).
    driver_bundles: tuple[str, ...] = ()


def metastore_conf(settings: MetastoreSettings, derby_db: Path) -> MetastoreConf:
    """Spark settings for ``settings`` (``derby_db``: the Derby folder, when derby)."""
    if settings.kind == "derby":
        return MetastoreConf(
            conf={
                "spark.hadoop.javax.jdo.option.ConnectionURL": (
                    f"jdbc:derby:;databaseName={derby_db};create=true"
                )
            },
            # derby.system.home keeps derby.log next to the metastore, not in the cwd.
            java_options=(f"-Dderby.system.home={derby_db.parent}",),
            derby_home=derby_db.parent,
        )
    if settings.kind == "hive":
        conf = {"spark.hadoop.hive.metastore.uris": settings.uri} if settings.uri else {}
        return MetastoreConf(conf=conf)
    if settings.kind == "postgres":
        conf = {
            "spark.hadoop.javax.jdo.option.ConnectionURL": jdbc_url(settings),
            "spark.hadoop.javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
            "spark.hadoop.javax.jdo.option.ConnectionUserName": str(settings.user),
            # prepare() made the schema; creating tables lazily deadlocks (module doc).
            "spark.hadoop.datanucleus.schema.autoCreateAll": "false",
            "spark.hadoop.hive.metastore.schema.verification": "false",
        }
        password = postgres_password(settings)
        if password:
            conf["spark.hadoop.javax.jdo.option.ConnectionPassword"] = password
        return MetastoreConf(conf=conf, driver_bundles=("postgres",))
    return MetastoreConf()


def jdbc_url(settings: MetastoreSettings) -> str:
    return f"jdbc:postgresql://{settings.host}:{settings.port}/{settings.database}"


def describe(settings: MetastoreSettings) -> str:
    """``postgresql://user@host:port/database``: how errors name the database."""
    return f"postgresql://{settings.user}@{settings.host}:{settings.port}/{settings.database}"


def postgres_password(settings: MetastoreSettings) -> str | None:
    """``PGPASSWORD``, else the first matching pgpass line; registered as a secret."""
    password = os.environ.get("PGPASSWORD") or _from_pgpass(settings)
    if password:
        redaction.register(password)
    return password or None


def _pgpass_file() -> Path:
    named = os.environ.get("PGPASSFILE")
    return Path(named) if named else Path.home() / ".pgpass"


def _from_pgpass(settings: MetastoreSettings) -> str | None:
    """libpq's rules: ``host:port:database:user:password``, ``*`` matches anything,
    ``\\`` escapes, first match wins; a file others may read is ignored."""
    path = _pgpass_file()
    try:
        if path.stat().st_mode & 0o077:
            return None
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    want = (str(settings.host), str(settings.port), settings.database, str(settings.user))
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = _split_pgpass(line)
        if len(fields) != 5:
            continue
        if all(f in ("*", w) for f, w in zip(fields[:4], want, strict=True)):
            return fields[4]
    return None


def _split_pgpass(line: str) -> list[str]:
    fields: list[str] = []
    cur: list[str] = []
    escaped = False
    for ch in line:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ":" and len(fields) < 4:
            fields.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    fields.append("".join(cur))
    return fields


def prepare(settings: MetastoreSettings, driver_jars: list[Path]) -> None:
    """Make a ``postgres`` metastore ready before Spark starts: reachable, and with the
    Hive client's schema (made once, under an advisory lock). Nothing for other kinds.

    Raises:
        RuntimeSetupError: ``LF-RT-009`` when the database refuses or cannot be
            reached, or its schema cannot be made.
    """
    if settings.kind != "postgres":
        return
    import pg8000.dbapi

    where = describe(settings)
    try:
        conn = pg8000.dbapi.connect(
            user=str(settings.user),
            host=str(settings.host),
            port=settings.port,
            database=settings.database,
            password=postgres_password(settings),
            timeout=CONNECT_TIMEOUT_S,
        )
    except Exception as exc:  # pg8000 raises its own, socket and auth errors alike
        raise RuntimeSetupError(
            Code.METASTORE_UNREACHABLE,
            f"the metastore database {where} refused the connection: {_pg_message(exc)}",
            "check that PostgreSQL runs there and the role exists; the password comes "
            "from PGPASSWORD or a pgpass file (PGPASSFILE, ~/.pgpass)",
        ) from None
    try:
        cur = conn.cursor()
        if _has_schema(cur):
            return
        cur.execute("SELECT pg_advisory_lock(%s)", (_INIT_LOCK_KEY,))
        try:
            if not _has_schema(cur):  # another process may have made it meanwhile
                _make_schema(settings, driver_jars)
        finally:
            cur.execute("SELECT pg_advisory_unlock(%s)", (_INIT_LOCK_KEY,))
    finally:
        conn.close()


def _has_schema(cur: object) -> bool:
    cur.execute(  # type: ignore[attr-defined]
        "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('TBLS', 'DBS')"
    )
    return int(cur.fetchone()[0]) == 2  # type: ignore[attr-defined]


def _pg_message(exc: BaseException) -> str:
    # pg8000's DatabaseError carries the server's fields as a dict: its message ('M').
    arg = exc.args[0] if exc.args else None
    if isinstance(arg, dict) and "M" in arg:
        return str(arg["M"])
    return redaction.redact(str(exc)) or type(exc).__name__


def _make_schema(settings: MetastoreSettings, driver_jars: list[Path]) -> None:
    """Run DataNucleus's SchemaTool over the Hive client's mapping (``package.jdo``)."""
    from lakeforge.runtime.jars import pyspark_jars_dir
    from lakeforge.runtime.java import java_executable

    spark_jars = pyspark_jars_dir()
    (hive_jar,) = spark_jars.glob("hive-metastore-*.jar")
    password = postgres_password(settings)
    props = {
        "javax.jdo.option.ConnectionURL": jdbc_url(settings),
        "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "javax.jdo.option.ConnectionUserName": str(settings.user),
        **({"javax.jdo.option.ConnectionPassword": password} if password else {}),
        **_HIVE_JDO,
    }
    with tempfile.TemporaryDirectory(prefix="lakeforge-metastore-") as tmp:
        work = Path(tmp)
        with zipfile.ZipFile(hive_jar) as jar:
            (work / "package.jdo").write_bytes(jar.read("package.jdo"))
        redaction.write_private_properties(work / "schema.properties", props)
        classpath = [*sorted(spark_jars.glob("*.jar")), *driver_jars]
        try:
            proc = subprocess.run(
                [
                    java_executable() or "java",
                    "-cp",
                    os.pathsep.join(str(p) for p in classpath),
                    "org.datanucleus.store.schema.SchemaTool",
                    "-create",
                    "-api",
                    "JDO",
                    "-props",
                    str(work / "schema.properties"),
                    str(work / "package.jdo"),
                ],
                capture_output=True,
                text=True,
                timeout=SCHEMA_TOOL_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            proc = None
    if proc is None or proc.returncode != 0 or "completed successfully" not in proc.stdout:
        tail = "" if proc is None else (proc.stdout + proc.stderr).strip().splitlines()[-6:]
        raise RuntimeSetupError(
            Code.METASTORE_UNREACHABLE,
            f"could not make the Hive metastore's tables in {describe(settings)}: "
            + redaction.redact(" | ".join(tail) or "SchemaTool timed out"),
            "the role needs CREATE on the database's public schema; rerun with --debug",
        )
