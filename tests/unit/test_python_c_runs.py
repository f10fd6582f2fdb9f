"""``python -c`` with Great Expectations loaded must not end the process early.

pyspark.sql.connect's check_dependencies() calls sys.exit(0) ("Skipping doctests") when
``__main__`` has neither ``__spec__`` nor ``__file__``, as under ``python -c``: a script
that ran a pipeline stopped after the first expectation, with exit status 0.
"""

from __future__ import annotations

import subprocess
import sys


def test_python_c_survives_importing_the_quality_adapter() -> None:
    code = "import lakeforge.quality, great_expectations.expectations; print('still here')"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "still here" in out.stdout, out.stderr[-2000:]
