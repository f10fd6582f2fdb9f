"""Class-data sharing: one JVM class archive that cuts every cold lakeforge process's start.

A lakeforge driver JVM loads about 30,000 classes (Spark, Hive, Derby, Delta) and spends
seconds parsing and verifying them before the first step. The JDK's dynamic AppCDS
(``-XX:ArchiveClassesAtExit`` to make an archive, ``-XX:SharedArchiveFile`` to map it,
JDK 13+) keeps them pre-parsed in one file that every later JVM maps read-only. Measured
on the tiny pipeline's no-op run, one fresh process each: 18.0 s -> 11.5-12.4 s with the
short-lived-JVM flags of tests/data/tiny, 22-24 s -> 16.5-18 s with the JVM's defaults
(bench/RESULTS.md has the whole-process figures).

The archive is made once per machine by ``lakeforge jars warm`` (``./dev setup`` runs it):
a small pipeline runs twice and publishes a training set in a process of its own, whose
JVM writes the classes it loaded when it exits. It lives in the per-user cache
(``$LAKEFORGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/lakeforge``, else ``~/.cache/lakeforge``)
under a key of the Java installation and pyspark's jars, so another Java or another
pyspark never maps it.

Safety. The JVM itself checks an archive against its own version and class path and
ignores a mismatching one (``-Xshare:auto``, its warning silenced: the run is only
slower). A *truncated* archive, though, crashes the JVM at start: so the archive is
written under a temporary name and renamed into place only after the JVM that wrote it
has exited successfully and the file starts with the archive's magic number.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lakeforge.errors import Code, RuntimeSetupError
from lakeforge.runtime.java import java_executable
from lakeforge.runtime.user_cache import cache_dir

# The archive is what `-XX:SharedArchiveFile` maps; these silence the JVM's own notice
# when it finds the archive unusable (another JDK build): the process just runs slower.
QUIET = ("-Xshare:auto", "-Xlog:cds=off", "-Xlog:cds+dynamic=off")
# An archive is ~240 MB and every new venv (clone, CI run) makes one: the per-user cache
# keeps the most recently used few and deletes the rest when a new one is made.
KEEP = 3
WARMUP_TIMEOUT_S = 900.0


def _java_identity() -> str:
    """The Java a driver would start, down to its build: path and libjvm's size and time."""
    java = java_executable()
    if java is None:
        return "no-java"
    real = Path(java).resolve()
    home = real.parent.parent
    parts = [str(real)]
    for candidate in (home / "lib" / "server" / "libjvm.so", home / "release", real):
        if candidate.is_file():
            st = candidate.stat()
            parts.append(f"{candidate.name}:{st.st_size}:{st.st_mtime_ns}")
            break
    return "|".join(parts)


def _spark_identity() -> str:
    """pyspark's jar folder (the driver's class path) and its jars' names, sizes and times.

    The JVM refuses an archive when any class-path jar's size *or modification time*
    differs from the one it was made with ("A jar file is not the one used while building
    the shared archive file"). A reinstalled pyspark at the same path (a fresh clone's new
    venv, a CI run reusing the per-user cache) has the same names and sizes but new times:
    keyed without them, it found the old archive, mapped nothing and ran slow, silently."""
    from lakeforge.runtime.jars import pyspark_jars_dir

    jars = pyspark_jars_dir()
    listing = sorted(
        (p.name, st.st_size, st.st_mtime_ns) for p in jars.glob("*.jar") for st in (p.stat(),)
    )
    return f"{jars.resolve()}|{listing}"


def archive_key() -> str:
    digest = hashlib.sha256(f"{_java_identity()}\n{_spark_identity()}".encode())
    return digest.hexdigest()[:20]


def archive_path() -> Path:
    return cache_dir() / "cds" / f"{archive_key()}.jsa"


def driver_options() -> list[str]:
    """The JVM options that map the archive, or none when it has not been made."""
    path = archive_path()
    if not path.is_file():
        return []
    with contextlib.suppress(OSError):  # a read-only cache just skips this
        os.utime(path)  # marks it used, for prune()
    return [f"-XX:SharedArchiveFile={path}", *QUIET]


def prune(keep: int = KEEP) -> list[Path]:
    """Delete all but the ``keep`` most recently used archives; returns the deleted ones.

    A JVM that has an archive mapped keeps its pages after the unlink (POSIX), so a
    running process is never harmed; the next one started for that venv runs without it."""
    folder = archive_path().parent
    if not folder.is_dir():
        return []
    archives = sorted(folder.glob("*.jsa"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    gone = []
    for old in archives[keep:]:
        old.unlink(missing_ok=True)
        gone.append(old)
    return gone


@dataclass(frozen=True)
class Warmed:
    path: Path
    size_mb: float
    seconds: float
    made: bool  # False: the archive was already there


# The first 4 bytes of a JDK 17 dynamic (top-layer) archive, little-endian.
DYNAMIC_MAGIC = 0xF00BABA8


def _complete(path: Path) -> bool:
    """True if ``path`` starts like a dynamic archive and is not a stub.

    Paired with the writer's exit status (the JVM writes the archive while it exits, so a
    0 means it finished), this keeps a half-written file from ever being renamed into the
    place every JVM maps."""
    with path.open("rb") as f:
        head = f.read(4)
    return (
        len(head) == 4
        and int.from_bytes(head, "little") == DYNAMIC_MAGIC
        and (path.stat().st_size > 1_000_000)
    )


# The warm-up command for a work folder and the file its JVM must dump the archive to.
Workload = Callable[[Path, Path], Sequence[str]]


def warm(workload: Workload, jars_dir: Path, force: bool = False) -> Warmed:
    """Make the class archive (once): run ``workload`` in a process of its own whose JVM
    writes the archive on exit, check it, then rename it into place.

    Raises:
        RuntimeSetupError: ``LF-RT-008`` the warm-up process failed (its output's tail
            in the message) or wrote no usable archive.
    """
    final = archive_path()
    if final.is_file() and not force:
        return Warmed(final, final.stat().st_size / 1e6, 0.0, made=False)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.stem}.{os.getpid()}.tmp")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lakeforge-warmup-") as work:
        env = dict(os.environ)
        env["LAKEFORGE_JARS_DIR"] = str(jars_dir)
        env.pop("LAKEFORGE_ENV", None)
        proc = subprocess.run(
            list(workload(Path(work), tmp)),
            capture_output=True,
            text=True,
            timeout=WARMUP_TIMEOUT_S,
            env=env,
            check=False,
        )
    try:
        if proc.returncode != 0 or not tmp.is_file():
            tail = (proc.stderr or proc.stdout)[-2000:]
            raise RuntimeSetupError(
                Code.CLASS_ARCHIVE_FAILED,
                f"the class-archive warm-up failed (exit {proc.returncode}): {tail}",
                "lakeforge runs without the archive (slower start); rerun `lakeforge jars warm`",
            )
        if not _complete(tmp):
            raise RuntimeSetupError(
                Code.CLASS_ARCHIVE_FAILED,
                f"the warm-up JVM wrote no complete class archive ({tmp})",
                "lakeforge runs without the archive (slower start); rerun `lakeforge jars warm`",
            )
        os.replace(tmp, final)
        prune()
    finally:
        tmp.unlink(missing_ok=True)
    return Warmed(final, final.stat().st_size / 1e6, time.monotonic() - t0, made=True)
