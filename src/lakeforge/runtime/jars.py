"""Jars the project controls: pinned Maven artifacts resolved once into a local cache.

A *bundle* (``delta``, ``avro``, ``s3``) is a list of pinned Maven coordinates.
``resolve`` asks Maven for the full runtime closure through the per-user Maven repository
(:func:`lakeforge.runtime.user_cache.maven_repo`: a second clone or a CI run on the same
machine downloads nothing), drops every jar pyspark already ships (Hadoop, Jackson,
Parquet, Scala, Netty... in other versions, which would shadow Spark's own), checks each
remaining jar against the sha256 the project pins for it (``jar_pins.json``), and copies
them to ``.lakeforge/jars/<bundle>/`` with a manifest of names and sha256 sums. Sessions
then use those files only: after the first resolve no network is needed.

Version notes: the PyPI wheel delta-spark 4.4.1 is pinned, but Maven Central has no
``delta-spark_4.2_2.13:4.4.1`` (404; the newest for Spark 4.2 is 4.4.0). The two Python
wheels differ only in ``delta/version.py``, so the 4.4.0 jars are the matching runtime.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lakeforge.errors import Code, RuntimeSetupError
from lakeforge.io.digest import sha256_file
from lakeforge.runtime.user_cache import maven_repo

MANIFEST = "MANIFEST.json"


@dataclass(frozen=True)
class Bundle:
    name: str
    artifacts: tuple[str, ...]
    # Jars dropped although pyspark does not ship them under the same name: companions
    # of a dropped jar (RoaringBitmap's `shims` belongs to the 0.9 line pyspark replaced).
    also_drop: tuple[str, ...] = ()
    # ``group:artifact`` left out of every artifact's dependencies (Maven exclusions).
    excludes: tuple[str, ...] = ()


BUNDLES: dict[str, Bundle] = {
    "delta": Bundle("delta", ("io.delta:delta-spark_4.2_2.13:4.4.0",), also_drop=("shims",)),
    # Maven Central has no spark-avro_2.13:4.2.0 (404; newest 4.1.1). 4.1.1 reads and
    # writes Avro under Spark 4.2.0 (tests/integration/test_sources.py proves it here).
    "avro": Bundle("avro", ("org.apache.spark:spark-avro_2.13:4.1.1",)),
    # S3A for s3a:// tables and raw zones. hadoop-aws must match pyspark's Hadoop (3.5.0).
    # It depends on the AWS SDK v2 `bundle` jar (~600 MB, every AWS service shaded in);
    # S3A needs only S3, STS and the HTTP clients, so the bundle is excluded and the
    # SDK's modular artifacts of the version Hadoop 3.5.0 was built with (2.35.4) come
    # instead: 37 jars, ~13 MB (Netty and httpclient come from pyspark). Tested against
    # a real S3 server (tests/integration/test_object_storage.py).
    # commons-logging: the delta bundle brings 1.3.0; 1.2 would put the same classes twice.
    "s3": Bundle(
        "s3",
        (
            "org.apache.hadoop:hadoop-aws:3.5.0",
            "software.amazon.awssdk:s3:2.35.4",
            "software.amazon.awssdk:s3-transfer-manager:2.35.4",
            "software.amazon.awssdk:sts:2.35.4",
            "software.amazon.awssdk:apache-client:2.35.4",
        ),
        also_drop=("commons-logging",),
        excludes=("software.amazon.awssdk:bundle",),
    ),
    # PostgreSQL's JDBC driver, for a Hive metastore several processes share
    # (metastore kind `postgres`, conf/shared.yml). Its password comes from a pgpass file
    # the driver reads itself (PGPASSFILE or ~/.pgpass), never from a Spark setting.
    "postgres": Bundle("postgres", ("org.postgresql:postgresql:42.7.14",)),
}

PINS_FILE = Path(__file__).with_name("jar_pins.json")


_VERSIONED = re.compile(r"^(?P<base>.+?)-(?P<version>\d[\w.\-]*)\.jar$")


def artifact_base(jar_name: str) -> str:
    """``jackson-core-2.13.5.jar`` -> ``jackson-core``; ``zstd-jni-1.5.7-3.jar`` -> ``zstd-jni``."""
    m = _VERSIONED.match(jar_name)
    return m.group("base") if m else jar_name.removesuffix(".jar")


def pyspark_jars_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise RuntimeSetupError(Code.JARS_MISSING, "pyspark is not installed", "run ./dev setup")
    return Path(spec.origin).parent / "jars"


def bundle_dir(jars_dir: Path, bundle: str) -> Path:
    return jars_dir / bundle


def _pom(bundle: Bundle) -> str:
    exclusions = "".join(
        f"<exclusion><groupId>{g}</groupId><artifactId>{a}</artifactId></exclusion>"
        for g, a in (e.split(":") for e in bundle.excludes)
    )
    deps = []
    for coord in bundle.artifacts:
        group, artifact, version = coord.split(":")
        deps.append(
            f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version>"
            + (f"<exclusions>{exclusions}</exclusions>" if exclusions else "")
            + "</dependency>"
        )
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.lakeforge.jars</groupId><artifactId>{bundle.name}</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>{"".join(deps)}</dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId>
    <version>3.8.1</version>
  </plugin></plugins></build>
</project>
"""


def pinned(bundle: str) -> dict[str, str]:
    """The sha256 the project pins for each jar of ``bundle`` (empty: not pinned)."""
    try:
        pins = json.loads(PINS_FILE.read_text())
    except (OSError, ValueError):
        return {}
    found = pins.get(bundle, {})
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def check_pins(bundle: str, sums: dict[str, str]) -> None:
    """Refuse a resolved closure that differs from the pinned one (a jar added, missing
    or with other bytes than the project recorded).

    Raises:
        RuntimeSetupError: ``LF-RT-003`` naming each differing jar.
    """
    pins = pinned(bundle)
    if not pins:
        return
    wrong = sorted(name for name in set(pins) | set(sums) if pins.get(name) != sums.get(name))
    if wrong:
        raise RuntimeSetupError(
            Code.JAR_RESOLUTION_FAILED,
            f"the '{bundle}' jars differ from the project's pinned sha256 sums: "
            + ", ".join(
                f"{n} ({'not pinned' if n not in pins else 'missing' if n not in sums else 'other bytes'})"
                for n in wrong
            ),
            f"if the pins in {PINS_FILE.name} changed on purpose, update them; otherwise "
            "clear the Maven cache (lakeforge.runtime.user_cache.maven_repo) and retry",
        )


def read_manifest(jars_dir: Path, bundle: str) -> dict[str, object] | None:
    path = bundle_dir(jars_dir, bundle) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def bundle_jars(jars_dir: Path, bundle: str) -> list[Path]:
    """The cached jars of ``bundle``, checked against its manifest.

    Raises:
        RuntimeSetupError: ``LF-RT-002`` with the command that fixes it.
    """
    if bundle not in BUNDLES:
        raise RuntimeSetupError(
            Code.JARS_MISSING,
            f"unknown jar bundle '{bundle}'",
            f"known bundles: {', '.join(BUNDLES)}",
        )
    manifest = read_manifest(jars_dir, bundle)
    fix = f"run `lakeforge jars resolve {bundle}` (Maven and network needed once) or `./dev setup`"
    if manifest is None or manifest.get("artifacts") != list(BUNDLES[bundle].artifacts):
        raise RuntimeSetupError(
            Code.JARS_MISSING,
            f"the '{bundle}' jars are not in the cache {bundle_dir(jars_dir, bundle)}",
            fix,
        )
    jars = [bundle_dir(jars_dir, bundle) / str(j["name"]) for j in manifest["jars"]]  # type: ignore[attr-defined]
    missing = [j.name for j in jars if not j.is_file()]
    if missing:
        raise RuntimeSetupError(Code.JARS_MISSING, f"jar cache incomplete, missing {missing}", fix)
    return jars


def resolve(bundle_name: str, jars_dir: Path, force: bool = False) -> list[Path]:
    """Make sure ``bundle_name``'s jars are cached; fetch them with Maven if not.

    Args:
        bundle_name: a key of :data:`BUNDLES`.
        jars_dir: the cache root (``<project>/.lakeforge/jars`` by default).
        force: resolve again even if the cache looks complete.

    Returns:
        The cached jar files.

    Raises:
        RuntimeSetupError: ``LF-RT-003`` when Maven is missing or resolution fails.
    """
    if not force:
        try:
            return bundle_jars(jars_dir, bundle_name)
        except RuntimeSetupError:
            pass
    bundle = BUNDLES[bundle_name]
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeSetupError(
            Code.JAR_RESOLUTION_FAILED,
            "Maven (mvn) is needed to fetch jars once",
            "install it: apt-get install -y maven",
        )
    m2 = maven_repo()
    target = bundle_dir(jars_dir, bundle_name)
    with tempfile.TemporaryDirectory(prefix="lakeforge-jars-") as tmp:
        work = Path(tmp)
        (work / "pom.xml").write_text(_pom(bundle))
        out = work / "out"
        cmd = [
            mvn,
            "-B",
            "-q",
            f"-Dmaven.repo.local={m2}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={out}",
            "-DincludeScope=runtime",
        ]
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
            raise RuntimeSetupError(
                Code.JAR_RESOLUTION_FAILED,
                f"Maven could not resolve {', '.join(bundle.artifacts)}:\n{tail}",
                "check network access to Maven Central, then retry",
            )
        provided = {artifact_base(j.name) for j in pyspark_jars_dir().glob("*.jar")}
        kept: list[Path] = []
        dropped: list[Path] = []
        for jar in sorted(out.glob("*.jar")):
            base = artifact_base(jar.name)
            (dropped if base in provided or base in bundle.also_drop else kept).append(jar)
        sums = {j.name: sha256_file(j) for j in kept}
        check_pins(bundle_name, sums)
        staging = target.with_name(target.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for jar in kept:
            shutil.copy2(jar, staging / jar.name)
        manifest = {
            "bundle": bundle_name,
            "artifacts": list(bundle.artifacts),
            "jars": [{"name": j.name, "sha256": sums[j.name]} for j in kept],
            "dropped_as_provided_by_pyspark": [j.name for j in dropped],
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        # Swap in atomically-ish: a crash leaves either the old cache or none, never half.
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    return bundle_jars(jars_dir, bundle_name)
