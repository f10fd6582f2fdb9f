"""Redact what bypasses Python: the bytes the JVM (and native code) write to stderr.

Python-level output is redacted by :class:`lakeforge.redaction.RedactingStream`. The Spark
JVM that pyspark's ``launch_gateway`` starts inherits the process's file descriptor 2 and
writes its log4j lines there directly. :class:`FdRedactor` puts a pipe on fd 2 and a thread
that copies it, line by line and redacted, to the stderr the process started with. The CLI
arms it (:func:`arm`) so it is installed when the first secret is registered, i.e. while
the config is loaded and before any session is built; a process without secrets keeps its
stderr untouched.

Under ``spark-submit`` the JVM is the parent of the Python driver, so its stderr never
passes through Python: ``spark-submit.sh`` pipes it through ``lakeforge redact-stream``,
which registers the secrets of the profile and of the pipeline files in the command it
accompanies (read from the same environment) and runs :func:`pump` from stdin to stdout.

No pyspark import.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import struct
import sys
import termios
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from lakeforge import redaction

# Set to "1" to install the redirection even inside pytest, "0" to never install it.
ENV_SWITCH = "LAKEFORGE_REDACT_STDERR"
# An unfinished line is passed on (minus a possible secret's start) after this long idle.
IDLE_FLUSH_S = 0.2


def _redact_bytes(data: bytes) -> bytes:
    text = data.decode("utf-8", errors="surrogateescape")
    return redaction.redact(text).encode("utf-8", errors="surrogateescape")


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except InterruptedError:
            continue
        data = data[n:]


class _LineRedactor:
    """Feeds bytes in, hands redacted bytes out: whole lines at once, and on idle the part
    of an unfinished line that cannot be the start of a secret."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self.pending + chunk
        cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
        self.pending = data[cut:]
        return _redact_bytes(data[:cut]) if cut else b""

    def idle(self) -> bytes:
        if not self.pending:
            return b""
        text = self.pending.decode("utf-8", errors="surrogateescape")
        cut = redaction.held_back(text)
        out, rest = text[:cut], text[cut:]
        self.pending = rest.encode("utf-8", errors="surrogateescape")
        return redaction.redact(out).encode("utf-8", errors="surrogateescape")

    def close(self) -> bytes:
        data, self.pending = self.pending, b""
        return _redact_bytes(data)


def pump(in_fd: int, out_fd: int, idle_s: float = IDLE_FLUSH_S) -> None:
    """Copy ``in_fd`` to ``out_fd`` until end of file, every line redacted."""
    lines = _LineRedactor()
    while True:
        ready, _, _ = select.select([in_fd], [], [], idle_s)
        if not ready:
            _write_all(out_fd, lines.idle())
            continue
        try:
            chunk = os.read(in_fd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        _write_all(out_fd, lines.feed(chunk))
    _write_all(out_fd, lines.close())


def copy_redacted(stdin: TextIO, stdout: TextIO) -> None:
    """:func:`pump` from ``stdin`` to ``stdout``; line by line when they have no file
    descriptor (click's test runner)."""
    try:
        in_fd, out_fd = stdin.fileno(), stdout.fileno()
    except (AttributeError, OSError):
        for line in stdin:
            stdout.write(redaction.redact(line))
        stdout.flush()
        return
    stdout.flush()
    pump(in_fd, out_fd)


def _unread(fd: int) -> int:
    """Bytes waiting in the pipe ``fd``."""
    buf = fcntl.ioctl(fd, termios.FIONREAD, struct.pack("i", 0))
    return int(struct.unpack("i", buf)[0])


class FdRedactor:
    """Route file descriptor ``fd`` (2) through a pipe whose reader thread redacts it.

    :meth:`stop` puts the original descriptor back and returns once everything written
    so far is passed on. A JVM still alive holds the pipe open; the (daemon) thread keeps
    redacting what it writes until the interpreter exits, and what it writes after that
    is lost, never printed unredacted.
    """

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd
        self.saved: int | None = None
        self._read_fd: int | None = None
        self._thread: threading.Thread | None = None
        self._busy = threading.Event()  # set while the thread holds bytes not yet written

    @property
    def active(self) -> bool:
        return self.saved is not None

    def start(self) -> None:
        if self.active:
            return
        sys.stderr.flush()
        saved = os.dup(self.fd)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, self.fd)  # fd 2 stays inheritable: the JVM gets the pipe
        os.close(write_fd)
        self.saved, self._read_fd = saved, read_fd
        self._thread = threading.Thread(
            target=self._run, name="lakeforge-stderr-redactor", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        assert self._read_fd is not None and self.saved is not None
        lines = _LineRedactor()
        while True:
            ready, _, _ = select.select([self._read_fd], [], [], IDLE_FLUSH_S)
            self._busy.set()
            try:
                if not ready:
                    _write_all(self.saved, lines.idle())
                    continue
                chunk = os.read(self._read_fd, 65536)
                if not chunk:
                    break
                _write_all(self.saved, lines.feed(chunk))
            except OSError as exc:
                if exc.errno in (errno.EINTR, errno.EAGAIN):
                    continue
                return  # the original stderr is gone: nothing left to write to
            finally:
                self._busy.clear()
        with contextlib.suppress(OSError):
            _write_all(self.saved, lines.close())

    def stop(self, timeout: float = 5.0) -> None:
        """Put fd ``fd`` back; wait (up to ``timeout``) until what was written is out."""
        if self.saved is None or self._thread is None or self._read_fd is None:
            return
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(self.saved, self.fd)  # closes our end of the pipe's write side
        self._thread.join(min(timeout, 0.5))
        deadline = time.monotonic() + timeout
        # A JVM still holds the write side: no end of file; wait for the pipe to drain.
        while self._thread.is_alive() and time.monotonic() < deadline:
            if _unread(self._read_fd) == 0 and not self._busy.is_set():
                break
            time.sleep(0.01)
        self.saved = None


_installed: FdRedactor | None = None


def _enabled() -> bool:
    switch = os.environ.get(ENV_SWITCH)
    if switch is not None:
        return switch == "1"
    # In-process under pytest, fd 2 belongs to pytest's capture: leave it alone.
    return "_pytest" not in sys.modules


def install() -> FdRedactor | None:
    """Redirect fd 2 through the redactor now (once per process); None when disabled."""
    global _installed
    if _installed is None and _enabled():
        try:
            os.fstat(2)
        except OSError:
            return None  # no stderr at all
        _installed = FdRedactor(2)
        _installed.start()
    return _installed


def arm() -> None:
    """Install the redirection when the process gets its first secret (see module doc)."""
    if _enabled():
        redaction.on_first_secret(_install_quietly)


def _install_quietly() -> None:
    install()


def stop() -> None:
    """Put fd 2 back if it was redirected, after passing on everything written so far."""
    if _installed is not None:
        _installed.stop()


def register_config_secrets(env: str, args: Iterable[str]) -> None:
    """Register the secrets ``lakeforge ARGS --env ENV`` would resolve: the profile's, and
    those of every pipeline file among ``args``. Failures are ignored (the command itself
    reports them); what resolves is registered."""
    from lakeforge.config.loader import find_project_root, load_pipeline_config, load_profile

    root = find_project_root(Path.cwd()) or Path.cwd()
    with contextlib.suppress(Exception):
        load_profile(env, root)
    for arg in args:
        path = Path(arg)
        if path.suffix not in (".yml", ".yaml"):
            continue
        with contextlib.suppress(Exception):
            if path.is_file():
                load_pipeline_config(path, env)
