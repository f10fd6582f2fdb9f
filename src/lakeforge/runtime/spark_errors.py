"""The one translator from Spark, Delta and py4j failures to coded lakeforge errors.

PySpark hands Python three shapes of failure: a converted exception
(``pyspark.errors.PySparkException``, with an error class such as ``PATH_NOT_FOUND``),
a raw ``py4j.protocol.Py4JJavaError`` for Java exceptions it does not convert (its text
is ``An error occurred while calling o103.load.`` followed by a Java stack trace), and
``Py4JError`` when the JVM itself is gone. :func:`translate` turns each into one line
with a stable code: the error class, the first line of Spark's message and, when a
deeper Java cause says more, that cause's own message.

* ``LF-SQL-001`` (:class:`SqlError`): Spark refused the statement before running it
  (parse and analysis errors: unknown table or column, missing path, bad SQL).
* ``LF-RT-006`` (:class:`RuntimeSetupError`): the embedded Derby metastore is held by
  another process (Derby's ``XSDB6``, buried under Hive and DataNucleus wrappers).
* ``LF-S3-001/002/003`` (:class:`StorageError`): S3A could not reach the object store,
  was refused, or found no bucket (:func:`storage_failure`), named with the bucket or
  endpoint, without the Java exception's wrapping.
* ``LF-RT-007`` (:class:`SparkError`): anything else Spark, Delta or py4j raised.

:func:`check_metastore_free` finds the Derby case before a JVM starts, so the second
process fails in a second, naming the process that holds the metastore.
No module-level pyspark import: the CLI imports this for its error handler.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lakeforge.errors import Code, LakeforgeError, RuntimeSetupError, SqlError
from lakeforge.io.s3 import storage_failure

F = TypeVar("F", bound=Callable[..., Any])

_DERBY_LOCKED = re.compile(
    r"XSDB6: Another instance of Derby may have already booted the database (\S+?)\.?\s*$",
    re.MULTILINE,
)
_PY4J_CALL = re.compile(r"^An error occurred while calling [\w.$]+\.?$")
# Error classes Spark reports for a statement it refused to run (analysis, parsing).
_REFUSED_TYPES = ("AnalysisException", "ParseException")


class SparkError(LakeforgeError):
    """A Spark, Delta or py4j failure, translated (``LF-RT-007``)."""


def is_spark_error(exc: BaseException) -> bool:
    """True for exceptions raised by PySpark or py4j (what :func:`translate` is for)."""
    return any(cls.__module__.startswith(("pyspark.", "py4j.")) for cls in type(exc).__mro__[:-1])


def translate(exc: BaseException, context: str | None = None) -> LakeforgeError:
    """The coded lakeforge error for a Spark, Delta or py4j failure.

    Args:
        exc: the exception PySpark or py4j raised (a lakeforge error comes back as is).
        context: what was being done (``training set x``), put before the message.

    Returns:
        ``LF-RT-006`` for a locked Derby metastore, ``LF-SQL-001`` for a statement Spark
        refused (analysis / parse errors), else ``LF-RT-007``. The message carries the
        error class (``[PATH_NOT_FOUND] ...``) and the deepest Java cause's message.
    """
    if isinstance(exc, LakeforgeError):
        return exc
    text = _full_text(exc)
    locked = _DERBY_LOCKED.search(text)
    if locked:
        return metastore_locked(Path(locked.group(1)))
    storage = storage_failure(text)
    if storage is not None:
        if context:
            storage.message = f"{context}: {storage.message}"
        return storage
    message = describe(exc)
    if context:
        message = f"{context}: {message}"
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & set(_REFUSED_TYPES):
        return SqlError(Code.SQL_FAILED, message)
    if "Py4JNetworkError" in names or ("Py4JError" in names and "Py4JJavaError" not in names):
        return SparkError(
            Code.SPARK_FAILED,
            f"{message} (the Spark JVM is gone or unreachable)",
            "rerun; if it repeats, rerun with --debug and check the JVM's memory",
        )
    return SparkError(Code.SPARK_FAILED, message)


def describe(exc: BaseException) -> str:
    """One line for a Spark failure: ``[ERROR_CLASS] message (cause: deepest cause)``."""
    klass = condition(exc)
    head = _first_line(_own_message(exc))
    deepest = _deepest_cause(exc)
    if not klass and deepest is not None:
        klass = deepest[0]
    if klass and f"[{klass}]" not in head:
        head = f"[{klass}] {head}" if head else f"[{klass}]"
    if deepest is not None:
        _, cause = deepest
        cause = _first_line(cause)
        if cause and cause not in head and _strip_java_class(cause) not in head:
            head = f"{head} (cause: {cause})" if head else cause
    return head or type(exc).__name__


def translating(func: F) -> F:
    """Decorate an API function so Spark failures leave it as coded lakeforge errors."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if not is_spark_error(exc):
                raise
            raise translate(exc) from exc

    return wrapper  # type: ignore[return-value]


def metastore_locked(db: Path, pid: int | None = None) -> RuntimeSetupError:
    """``LF-RT-006`` for Derby metastore ``db`` held by another process (found if possible)."""
    holder = pid if pid is not None else metastore_holder(db)
    who = f"process {holder}" if holder is not None else "another process"
    return RuntimeSetupError(
        Code.METASTORE_LOCKED,
        f"the embedded Derby metastore {db} is in use by {who}; Derby lets one Spark "
        "process at a time use it",
        "wait for that process to finish (or stop it), or use a profile whose metastore "
        "several processes share (conf/shared.yml: metastore kind postgres)",
    )


def check_metastore_free(db: Path) -> None:
    """Raise ``LF-RT-006`` if another process has Derby metastore ``db`` open.

    Looks at the open files of every process this user can see (``/proc/<pid>/fd``);
    this process and its children (its own Spark JVM) do not count. Where ``/proc`` is
    not readable, nothing is found and Spark's own failure is translated later.

    Raises:
        RuntimeSetupError: ``LF-RT-006`` naming the folder and the holder's pid.
    """
    pid = metastore_holder(db)
    if pid is not None:
        raise metastore_locked(db, pid)


def wait_metastore_free(db: Path, timeout: float) -> None:
    """Wait up to ``timeout`` seconds for no other process to hold Derby metastore ``db``.

    A run that waited for a pipeline's lock gets it when the holder's Python process lets
    go, but that process's Spark JVM still has Derby open for a moment while it exits.

    Raises:
        RuntimeSetupError: ``LF-RT-006`` if a holder is still there at the deadline.
    """
    deadline = time.monotonic() + timeout
    while (pid := metastore_holder(db)) is not None:
        if time.monotonic() >= deadline:
            raise metastore_locked(db, pid)
        time.sleep(0.5)


def metastore_holder(db: Path) -> int | None:
    """The pid of a process (not this one nor its descendants) with files open in ``db``."""
    folder = str(db.resolve())
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    own = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target == folder or target.startswith(folder + "/"):
                pid = int(entry.name)
                if not _descends_from(pid, own):
                    return pid
                break
    return None


def _descends_from(pid: int, ancestor: int) -> bool:
    seen = 0
    while pid > 1 and seen < 64:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        # The command name (field 2) may hold spaces and parentheses: split after it.
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        seen += 1
    return pid == ancestor


def condition(exc: BaseException) -> str | None:
    """The error class (condition) PySpark reports for ``exc``, or None."""
    get = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
    if get is None:
        return None
    try:
        value = get()
    except Exception:  # an unconvertible Java exception: no class to report
        return None
    return str(value) if value else None


def _own_message(exc: BaseException) -> str:
    """The exception's own text, without py4j's call site or Java stack trace."""
    java = getattr(exc, "java_exception", None)
    if java is not None:  # Py4JJavaError: its str() is the call site plus a stack trace
        try:
            return _strip_java_class(str(java.toString()))
        except Exception:
            pass
    text = str(exc).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and _PY4J_CALL.match(lines[0].strip()):
        lines = lines[1:]
        if lines and lines[0].startswith(": "):
            lines[0] = _strip_java_class(lines[0][2:])
    return "\n".join(lines)


def _deepest_cause(exc: BaseException) -> tuple[str | None, str] | None:
    """(error class or None, message) of the deepest Java cause, if there is one."""
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    if java is None:
        return None
    try:
        condition = None
        cause = java.getCause()
        last = None
        depth = 0
        while cause is not None and depth < 32:
            last = cause
            if condition is None:
                condition = _java_condition(cause)
            cause = cause.getCause()
            depth += 1
        if last is None:
            return None
        return condition, str(last.toString())
    except Exception:  # the JVM is gone: the exception's own text will have to do
        return None


def _java_condition(throwable: Any) -> str | None:
    try:
        if throwable.getClass().getName().startswith(("org.apache.spark", "io.delta")):
            value = throwable.getCondition()
            return str(value) if value else None
    except Exception:
        return None
    return None


def _full_text(exc: BaseException) -> str:
    """Every message in the exception and its causes, Java stack traces included."""
    parts = [str(exc)]
    trace = getattr(exc, "_stackTrace", None)
    if trace:
        parts.append(str(trace))
    cause = exc.__cause__ or exc.__context__
    depth = 0
    while cause is not None and depth < 8:
        parts.append(str(cause))
        cause = cause.__cause__ or cause.__context__
        depth += 1
    return "\n".join(parts)


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def _strip_java_class(text: str) -> str:
    """Drop the class name from a Spark or Delta exception's text (``[ERROR_CLASS] ...``
    says it all); keep it for others (``java.io.FileNotFoundException: x`` needs it)."""
    m = re.match(r"^((?:[a-z_$][\w$]*\.)+)([A-Z][\w$]*): (.*)$", text, re.DOTALL)
    if m and m.group(1).startswith(("org.apache.spark.", "io.delta.")):
        return m.group(3)
    return text
