"""Secrets stay out of the outputs lakeforge writes itself: system tables and reports.

The canary e2e test greps every file a whole run writes; this one pins the two write
boundaries that redact (``system_tables._append`` and ``quality.report.write_report``)
on the shared session, so a regression names its place.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakeforge import redaction as secrets
from lakeforge.lineage.system_tables import (
    REJECTED_FILES,
    append_rejected_files,
    ensure_system_tables,
)
from lakeforge.runtime.session import ensure_schemas

pytestmark = pytest.mark.spark


@pytest.fixture
def canary() -> Iterator[str]:
    value = f"canary-{uuid.uuid4().hex}"
    secrets.register(value)
    yield value
    secrets.clear()


def test_system_table_rows_are_redacted(spark: SparkSession, canary: str) -> None:
    ensure_schemas(spark)
    ensure_system_tables(spark)
    table = f"bronze.secret_{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    append_rejected_files(
        spark, [(table, f"/raw/{canary}.csv", 1, now, f"unreadable: key={canary}", "r1", now)]
    )
    rows = spark.sql(f"SELECT * FROM {REJECTED_FILES} WHERE table_name = '{table}'").collect()
    assert len(rows) == 1
    text = " ".join(str(v) for v in rows[0])
    assert canary not in text
    assert secrets.MASK in rows[0]["reason"]


def test_quality_report_files_are_redacted(tmp_path: Path, canary: str) -> None:
    from lakeforge.quality.report import write_report

    suite = {
        "success": False,
        "suite_name": "silver.t",
        "statistics": {},
        "meta": {"note": f"token {canary}"},
        "results": [],
    }
    page = write_report(tmp_path, "run1", "silver.t", suite)
    written = [p for p in (tmp_path / "run1").iterdir() if p.is_file()]
    assert page in written and len(written) >= 2
    for path in written:
        assert canary not in path.read_text(), path
