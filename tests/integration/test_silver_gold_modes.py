"""Silver write modes (merge with late rows and deletes, scd2, append), pinned inputs,
gold modes, and the system tables a run leaves behind."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakeforge.errors import Code
from lakeforge.pipeline.executor import execute
from lakeforge.plan.builder import build_plan
from lakeforge.plan.load import load_pipeline
from lakeforge.results import RunResult
from tests.helpers import make_project

pytestmark = pytest.mark.spark


class Project:
    def __init__(self, root: Path, pipeline: str) -> None:
        self.s = uuid.uuid4().hex[:6]
        self.root = root
        self.path = make_project(root, textwrap.dedent(pipeline).replace("{s}", self.s))

    def feed(self, folder: str, name: str, text: str) -> None:
        path = self.root / "raw" / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    def run(self, spark: SparkSession) -> RunResult:
        loaded = load_pipeline(self.path)
        result = execute(build_plan(loaded), spark, loaded.project_root)
        assert result.ok, result.error
        return result

    def t(self, name: str) -> str:
        return name.replace("{s}", self.s)


MERGE = """\
name: m_{s}
bronze:
  ev_{s}: {source: {format: csv, path: raw/ev}}
silver:
  st_{s}:
    from: bronze.ev_{s}
    keys: [id]
    sequence_by: ts
    mode: merge
    delete_when: op = 'D'
    verify_counts: {verify}
    columns: {id: int, v: string, ts: timestamp}
"""

# Both ways of accounting must give the same figures: from the commits (default) and from
# the separate counting pass (verify_counts), which then must agree with the commits.
VERIFY = pytest.mark.parametrize("verify", ["false", "true"])


@VERIFY
def test_merge_latest_wins_late_rows_never_overwrite_and_deletes(
    spark: SparkSession, tmp_path: Path, verify: str
) -> None:
    p = Project(tmp_path, MERGE.replace("{verify}", verify))
    p.feed(
        "ev",
        "1.csv",
        """\
        id,v,ts,op
        1,a,2026-11-01 10:00:00,U
        1,b,2026-11-01 11:00:00,U
        2,x,2026-11-01 10:00:00,U
        3,q,2026-11-01 10:00:00,U
        """,
    )
    r1 = p.run(spark)
    silver = r1.step(p.t("silver.st_{s}"))
    assert (silver.rows_read, silver.rows_written, silver.rows_deduplicated) == (4, 3, 1)
    p.feed(
        "ev",
        "2.csv",
        """\
        id,v,ts,op
        1,late,2026-11-01 09:00:00,U
        2,y,2026-11-02 10:00:00,U
        3,,2026-11-02 10:00:00,D
        4,new,2026-11-02 10:00:00,U
        """,
    )
    r2 = p.run(spark)
    step = r2.step(p.t("silver.st_{s}"))
    # 1 late (never wins, still offered to the MERGE), 2 update, 3 delete, 4 new.
    assert (step.rows_read, step.rows_written, step.rows_deduplicated) == (4, 4, 0)
    rows = {r["id"]: r["v"] for r in spark.table(p.t("silver.st_{s}")).collect()}
    assert rows == {1: "b", 2: "y", 4: "new"}  # 1 kept "b" (late "late" lost), 3 deleted
    ops = [r["operation"] for r in spark.sql(f"DESCRIBE HISTORY {p.t('silver.st_{s}')}").collect()]
    assert ops[0] == "MERGE"


SCD2 = """\
name: c_{s}
bronze:
  cu_{s}: {source: {format: csv, path: raw/cu}}
silver:
  cu_{s}:
    from: bronze.cu_{s}
    keys: [id]
    sequence_by: at
    mode: scd2
    scd2: {track: [tier]}
    verify_counts: {verify}
    columns: {id: int, tier: string, at: timestamp}
"""


@VERIFY
def test_scd2_keeps_history(spark: SparkSession, tmp_path: Path, verify: str) -> None:
    p = Project(tmp_path, SCD2.replace("{verify}", verify))
    p.feed(
        "cu",
        "1.csv",
        """\
        id,tier,at
        1,bronze,2026-11-01 00:00:00
        1,silver,2026-11-02 00:00:00
        2,gold,2026-11-01 00:00:00
        """,
    )
    r1 = p.run(spark)
    assert r1.step(p.t("silver.cu_{s}")).rows_written == 3
    p.feed(
        "cu",
        "2.csv",
        """\
        id,tier,at
        1,silver,2026-11-03 00:00:00
        2,platinum,2026-11-04 00:00:00
        2,gold,2026-10-01 00:00:00
        3,bronze,2026-11-04 00:00:00
        """,
    )
    r2 = p.run(spark)
    step = r2.step(p.t("silver.cu_{s}"))
    # id 1 unchanged (deduplicated), id 2 changes, id 2's old row is late (quarantined), id 3 new.
    assert (step.rows_read, step.rows_written, step.rows_quarantined, step.rows_deduplicated) == (
        4,
        2,
        1,
        1,
    )
    hist = sorted(
        (
            r["id"],
            r["tier"],
            str(r["valid_from"])[:10],
            str(r["valid_to"])[:10] if r["valid_to"] else None,
            r["is_current"],
        )
        for r in spark.table(p.t("silver.cu_{s}")).collect()
    )
    assert hist == [
        (1, "bronze", "2026-11-01", "2026-11-02", False),
        (1, "silver", "2026-11-02", None, True),
        (2, "gold", "2026-11-01", "2026-11-04", False),
        (2, "platinum", "2026-11-04", None, True),
        (3, "bronze", "2026-11-04", None, True),
    ]
    q = spark.table(p.t("silver.cu_{s}__quarantine")).collect()
    assert [r["reason"] for r in q] == ["late_change:at"]


APPEND_AND_GOLD = """\
name: a_{s}
bronze:
  ev_{s}: {source: {format: csv, path: raw/ev}}
silver:
  ev_{s}:
    from: bronze.ev_{s}
    mode: append
    columns: {id: int, n: int}
  pinned_{s}:
    from: bronze.ev_{s}@0
    columns: {id: int, n: int}
gold:
  total_{s}:
    sql: SELECT COUNT(*) AS rows, SUM(n) AS total FROM silver.ev_{s}
  snap_{s}:
    sql: SELECT current_date() AS day, SUM(n) AS total FROM silver.ev_{s}
    mode: append
  by_id_{s}:
    sql: SELECT id, SUM(n) AS total FROM silver.ev_{s} GROUP BY id
    mode: merge
    keys: [id]
"""


def test_append_is_incremental_pins_hold_and_gold_modes(
    spark: SparkSession, tmp_path: Path
) -> None:
    p = Project(tmp_path, APPEND_AND_GOLD)
    p.feed("ev", "1.csv", "id,n\n1,10\n2,20\n")
    p.run(spark)
    p.feed("ev", "2.csv", "id,n\n1,5\n3,1\n")
    r2 = p.run(spark)
    assert r2.step(p.t("silver.ev_{s}")).rows_read == 2  # only the new bronze rows
    assert spark.table(p.t("silver.ev_{s}")).count() == 4
    assert spark.table(p.t("silver.pinned_{s}")).count() == 2  # still bronze v0
    assert r2.step(p.t("silver.pinned_{s}")).inputs == {p.t("bronze.ev_{s}"): 0}
    total = spark.table(p.t("gold.total_{s}")).first()
    assert (total["rows"], total["total"]) == (4, 36)
    by_id = {r["id"]: r["total"] for r in spark.table(p.t("gold.by_id_{s}")).collect()}
    assert by_id == {1: 15, 2: 20, 3: 1}
    assert spark.table(p.t("gold.snap_{s}")).count() == 2
    # Nothing new: no step commits, the append mart is not appended again.
    r3 = p.run(spark)
    assert not any(s.committed for s in r3.steps)
    assert spark.table(p.t("gold.snap_{s}")).count() == 2


def test_run_is_recorded_in_system_tables(spark: SparkSession, tmp_path: Path) -> None:
    p = Project(tmp_path, MERGE.replace("{verify}", "false"))
    p.feed("ev", "1.csv", "id,v,ts,op\n1,a,2026-11-01 10:00:00,U\n")
    result = p.run(spark)
    run = spark.sql(f"SELECT * FROM lakeforge.runs WHERE run_id = '{result.run_id}'").collect()
    assert [(r["status"], r["pipeline"]) for r in run] == [("succeeded", p.t("m_{s}"))]
    assert run[0]["ended_at"] is not None and run[0]["code_version"].startswith("lakeforge ")
    rows = spark.sql(
        f"SELECT table_name, role, version, rows_in, rows_landed FROM lakeforge.table_versions "
        f"WHERE run_id = '{result.run_id}' ORDER BY table_name, role"
    ).collect()
    got = [(r["table_name"], r["role"], r["version"]) for r in rows]
    assert (p.t("bronze.ev_{s}"), "write", 0) in got
    assert (p.t("bronze.ev_{s}"), "read", 0) in got
    assert (p.t("silver.st_{s}"), "write", 0) in got
    assert (p.t("silver.st_{s}__quarantine"), "write", 0) in got
    meta = json.loads(spark.sql(f"DESCRIBE HISTORY {p.t('silver.st_{s}')}").first()["userMetadata"])
    assert meta["lakeforge_run_id"] == result.run_id
    assert meta["source_versions"] == {p.t("bronze.ev_{s}"): 0}


def test_declared_schema_change_needs_add_columns(spark: SparkSession, tmp_path: Path) -> None:
    p = Project(tmp_path, MERGE.replace("{verify}", "false"))
    p.feed("ev", "1.csv", "id,v,ts,op\n1,a,2026-11-01 10:00:00,U\n")
    p.run(spark)
    p.path.write_text(p.path.read_text().replace("ts: timestamp}", "ts: timestamp, op: string}"))
    p.feed("ev", "2.csv", "id,v,ts,op\n2,b,2026-11-02 10:00:00,U\n")
    loaded = load_pipeline(p.path)
    failed = execute(build_plan(loaded), spark, loaded.project_root)
    assert failed.error_code == Code.SCHEMA_CHANGED and "['op']" in (failed.error or "")
    p.path.write_text(
        p.path.read_text().replace("mode: merge", "mode: merge\n    schema_evolution: add_columns")
    )
    p.run(spark)
    assert dict(spark.table(p.t("silver.st_{s}")).dtypes)["op"] == "string"
