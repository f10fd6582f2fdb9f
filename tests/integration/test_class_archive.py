"""The class archive that ``./dev setup`` made (``lakeforge jars warm``) is really mapped by
a lakeforge driver JVM: this test session's, started by ``build_session`` like any other.

Asked of the running JVM with ``jcmd <pid> VM.info``, which gives the address range of
the CDS archives it mapped: the JDK's base archive and, on top, lakeforge's. A JVM that found the archive
unusable (another Java, another pyspark, a bad file) starts without it and silently; this
test is where that would show.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakeforge.runtime import cds

pytestmark = pytest.mark.spark


def _jcmd() -> str:
    from lakeforge.runtime.java import java_executable

    java = java_executable()
    assert java is not None
    beside = Path(java).resolve().parent / "jcmd"
    found = str(beside) if beside.is_file() else shutil.which("jcmd")
    assert found, "jcmd (from the JDK) is needed to ask the JVM what it mapped"
    return found


def _why(archive: Path, classpath: str) -> str:
    """The JVM's own reason, asked of a JVM started with the same archive and class path."""
    from lakeforge.runtime.java import java_executable

    out = subprocess.run(
        [
            str(java_executable()),
            f"-XX:SharedArchiveFile={archive}",
            "-Xshare:auto",
            "-Xlog:cds=info",
            "-cp",
            classpath,
            "-version",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    text = out.stdout + out.stderr
    return (
        " | ".join(line for line in text.splitlines() if "UseSharedSpaces" in line) or text[-2000:]
    )


def test_the_driver_jvm_maps_lakeforges_class_archive(spark: SparkSession) -> None:
    archive = cds.archive_path()
    assert archive.is_file(), (
        f"no class archive at {archive}: ./dev setup runs `lakeforge jars warm`"
    )
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    args = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert f"-XX:SharedArchiveFile={archive}" in args
    pid = int(jvm.java.lang.ProcessHandle.current().pid())
    info = subprocess.run(
        [_jcmd(), str(pid), "VM.info"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    # "CDS archive(s) mapped at: [base-top-end), size N": with the top layer (lakeforge's)
    # refused, only the JDK's base archive (~12 MB) is mapped and top == end.
    mapped = re.search(r"CDS archive\(s\) mapped at: \[(\w+)-(\w+)-(\w+)\), size (\d+)", info)
    assert mapped, info[:3000]
    _, top, end, size = mapped.groups()
    if int(end, 16) <= int(top, 16):
        classpath = str(jvm.java.lang.System.getProperty("java.class.path"))
        pytest.fail(f"the JVM refused lakeforge's archive (base only): {_why(archive, classpath)}")
    assert int(size) > archive.stat().st_size, mapped.group(0)
