"""Find a usable Java before Spark tries (and fails with a wall of text)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from lakeforge.errors import Code, RuntimeSetupError

MIN_JAVA = 17
FIX = "install a JDK 17+ (Debian: apt-get install -y openjdk-17-jdk-headless) or set JAVA_HOME"


def java_executable() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.is_file() else None
    return shutil.which("java")


def check_java() -> int:
    """Return the Java major version, or raise a :class:`RuntimeSetupError` saying how to fix it."""
    java = java_executable()
    if java is None:
        where = (
            f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java"
            if os.environ.get("JAVA_HOME")
            else "no `java` on PATH"
        )
        raise RuntimeSetupError(Code.JAVA_MISSING, f"Java not found: {where}", FIX)
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeSetupError(Code.JAVA_MISSING, f"cannot run {java}: {exc}", FIX) from None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not m:
        raise RuntimeSetupError(Code.JAVA_MISSING, f"cannot read the version of {java}", FIX)
    major = int(m.group(1))
    if major == 1 and m.group(2):  # "1.8" style
        major = int(m.group(2))
    if major < MIN_JAVA:
        raise RuntimeSetupError(
            Code.JAVA_MISSING, f"Java {major} found at {java}; Spark 4 needs {MIN_JAVA}+", FIX
        )
    return major
