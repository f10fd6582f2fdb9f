"""Secrets: the values ``${env:NAME}`` resolved to, and the redactor every output goes through.

Every value a ``${env:NAME}`` reference in a pipeline or profile resolved to is registered
here when it is interpolated (:mod:`lakeforge.config.interpolate`) and stays a secret for
the rest of the process. Outputs replace it with ``***`` at their boundary: the CLI wraps
its stdout and stderr (every line, tracebacks included), the error handler and the Python
API redact error messages, ``plan`` redacts before rendering, and ``submit-args`` keeps a
conf whose value holds a secret off spark-submit's command line.

The rule: a resolved value of at least :data:`MIN_LENGTH` characters is a secret, whatever
the variable's name (names lie; a short value like ``8`` or ``on`` would turn every ``8`` in
the output into ``***`` and hide nothing). A ``${env:NAME:-default}`` default is written in
the YAML and is not a secret; the variable's value, when set, is.

No pyspark import: ``validate`` and ``plan`` use this. (Not named ``secrets``: under
spark-submit, ``lakeforge/__main__.py`` runs as a script with its folder first on
``sys.path``, and a ``secrets`` module there shadows the standard library's.)
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO, TypeVar, cast

MIN_LENGTH = 4
MASK = "***"

E = TypeVar("E", bound=BaseException)

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
# Called once, outside the lock, when the process gets its first secret (see on_first_secret).
_first_secret_callbacks: list[Callable[[], None]] = []


def _forms(value: str) -> set[str]:
    """The value and the escaped forms it takes in JSON and Python reprs."""
    forms = {value, json.dumps(value)[1:-1], repr(value)[1:-1]}
    return {f for f in forms if len(f) >= MIN_LENGTH}


def register(value: str) -> None:
    """Make ``value`` a secret for the rest of the process (ignored below MIN_LENGTH)."""
    global _pattern
    if len(value) < MIN_LENGTH or value.isspace():
        return
    with _lock:
        new = _forms(value) - _secrets
        if not new:
            return
        first = not _secrets
        _secrets.update(new)
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))
        callbacks = list(_first_secret_callbacks) if first else []
        if first:
            _first_secret_callbacks.clear()
    for callback in callbacks:
        callback()


def on_first_secret(callback: Callable[[], None]) -> None:
    """Call ``callback`` once, when the first secret is registered (now, if there is one).

    The CLI arms the redirection of the process's fd 2 this way
    (:mod:`lakeforge.runtime.stderr_redact`): a process whose config holds no secret keeps
    its stderr as it is.
    """
    with _lock:
        if not _secrets:
            _first_secret_callbacks.append(callback)
            return
    callback()


def is_registered(value: str) -> bool:
    return value in _secrets


def contains_secret(text: str) -> bool:
    """True when ``text`` holds any registered secret."""
    pattern = _pattern
    return pattern is not None and pattern.search(text) is not None


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def redact_obj(obj: Any) -> Any:
    """A copy of ``obj`` with every string inside it (dicts, lists, tuples) redacted."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_obj(k): redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_obj(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact_obj(v) for v in obj)
    return obj


def redact_error(exc: E) -> E:
    """Redact a lakeforge error in place (message, args, config issues); returns it.

    Exceptions re-raised to a caller (``--debug``, the Python API) then carry no secret.
    Other exception types are left as they are: their text is redacted where it is
    printed (the CLI's streams).
    """
    from dataclasses import replace

    from lakeforge.errors import ConfigError, LakeforgeError

    if _pattern is None or not isinstance(exc, LakeforgeError):
        return exc
    exc.message = redact(exc.message)
    if exc.hint is not None:
        exc.hint = redact(exc.hint)
    exc.args = tuple(redact_obj(a) for a in exc.args)
    if isinstance(exc, ConfigError):
        exc.issues = [
            replace(i, message=redact(i.message), key=redact(i.key), file=redact(i.file))
            for i in exc.issues
        ]
    return exc


def held_back(text: str) -> int:
    """Where the tail of ``text`` that could start a secret begins (``len(text)`` if none).

    A stream that must pass on an unfinished line (no newline yet) writes
    ``redact(text[:i])`` and keeps ``text[i:]``: the rest of a secret may follow.
    """
    with _lock:
        known = tuple(_secrets)
    cut = len(text)
    for secret in known:
        for k in range(min(len(secret) - 1, len(text)), 0, -1):
            if len(text) - k >= cut:
                break
            if text.endswith(secret[:k]):
                cut = len(text) - k
                break
    return cut


def clear() -> None:
    """Forget every secret (tests only)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


class RedactingStream(io.TextIOBase):
    """A text stream that redacts whole lines before passing them on.

    Lines are held until their newline (or a flush), so a secret split across two writes
    of one line is still found.
    """

    def __init__(self, inner: TextIO) -> None:
        super().__init__()
        self.inner = inner
        self._pending = ""

    def write(self, s: str) -> int:
        if _pattern is None and not self._pending:
            return self.inner.write(s)
        text = self._pending + s
        cut = text.rfind("\n") + 1
        self._pending = text[cut:]
        if cut:
            self.inner.write(redact(text[:cut]))
        return len(s)

    def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, ""
            self.inner.write(redact(pending))
        self.inner.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.inner, "errors", None)

    @property
    def buffer(self) -> Any:
        # Bytes written here bypass the redactor; lakeforge writes text only.
        return self.inner.buffer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextmanager
def redacted_output() -> Iterator[None]:
    """Route ``sys.stdout`` and ``sys.stderr`` through the redactor while the block runs."""
    saved = sys.stdout, sys.stderr
    wrapped = [s if isinstance(s, RedactingStream) else RedactingStream(s) for s in saved]
    sys.stdout, sys.stderr = wrapped[0], wrapped[1]
    try:
        yield
    finally:
        for s in wrapped:
            if s not in saved:
                s.flush()
        sys.stdout, sys.stderr = saved


def install_redacted_output() -> None:
    """Route ``sys.stdout`` and ``sys.stderr`` through the redactor for the process's life.

    The CLI's entry point calls this, so everything it prints, an uncaught exception's
    traceback included, passes through :func:`redact`.
    """
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)


def split_secret(conf: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``conf`` split in two: entries free of secrets, and entries whose key or value holds one."""
    public: dict[str, str] = {}
    private: dict[str, str] = {}
    for key, value in conf.items():
        target = private if contains_secret(f"{key}={value}") else public
        target[key] = value
    return public, private


def _properties_escape(text: str, key: bool) -> str:
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\f":
            out.append("\\f")
        elif (key and ch in " =:#!") or (ch == " " and i == 0):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def write_private_properties(path: Path, props: dict[str, str]) -> Path:
    """Write ``props`` as a Java properties file only its owner can read (mode 0600).

    The file is written anew on every call (removed first, so a file left with a wider
    mode or another owner is not reused); its folder is made mode 0700.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    path.unlink(missing_ok=True)
    text = "# written by lakeforge submit-args: spark confs that hold secrets\n" + "".join(
        f"{_properties_escape(k, True)}={_properties_escape(v, False)}\n" for k, v in props.items()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path


F = TypeVar("F", bound=Callable[..., Any])


def redacts_errors(func: F) -> F:
    """Decorate an API function: a lakeforge error it raises leaves with secrets redacted."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BaseException as exc:
            redact_error(exc)
            raise

    return cast(F, wrapper)
