"""Silver write modes (merge with late rows and deletes, scd2, append), pinned inputs,
gold modes, and the system tables a run leaves behind."""

from __future__ import annotations

import json
import textwrap
import uuid
from dataclasses import dataclass
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

# The merge and scd2 tests share one pipeline run twice (a module fixture): each silver
# table reads its own bronze and is accounted and committed on its own, so one run per
# batch serves every variant instead of two runs per test.
MODES = """\
name: modes_{s}
bronze:
  ev_{s}: {source: {format: csv, path: raw/ev}}
  cu_{s}: {source: {format: csv, path: raw/cu}}
silver:
  st_false_{s}:
    from: bronze.ev_{s}
    keys: [id]
    sequence_by: ts
    mode: merge
    delete_when: op = 'D'
    verify_counts: false
    columns: {id: int, v: string, ts: timestamp}
  st_true_{s}:
    from: bronze.ev_{s}
    keys: [id]
    sequence_by: ts
    mode: merge
    delete_when: op = 'D'
    verify_counts: true
    columns: {id: int, v: string, ts: timestamp}
  cu_false_{s}:
    from: bronze.cu_{s}
    keys: [id]
    sequence_by: at
    mode: scd2
    scd2: {track: [tier]}
    verify_counts: false
    columns: {id: int, tier: string, at: timestamp}
  cu_true_{s}:
    from: bronze.cu_{s}
    keys: [id]
    sequence_by: at
    mode: scd2
    scd2: {track: [tier]}
    verify_counts: true
    columns: {id: int, tier: string, at: timestamp}
"""


@dataclass(frozen=True)
class Modes:
    """The shared pipeline after its two runs."""

    p: Project
    first: RunResult
    second: RunResult


@pytest.fixture(scope="module")
def modes(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Modes:
    p = Project(tmp_path_factory.mktemp("modes"), MODES)
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
    first = p.run(spark)
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
    second = p.run(spark)
    return Modes(p, first, second)


@VERIFY
def test_merge_latest_wins_late_rows_never_overwrite_and_deletes(
    spark: SparkSession, modes: Modes, verify: str
) -> None:
    table = modes.p.t(f"silver.st_{verify}_{{s}}")
    silver = modes.first.step(table)
    assert (silver.rows_read, silver.rows_written, silver.rows_deduplicated) == (4, 3, 1)
    step = modes.second.step(table)
    # 1 late (never wins, still offered to the MERGE), 2 update, 3 delete, 4 new.
    assert (step.rows_read, step.rows_written, step.rows_deduplicated) == (4, 4, 0)
    rows = {r["id"]: r["v"] for r in spark.table(table).collect()}
    assert rows == {1: "b", 2: "y", 4: "new"}  # 1 kept "b" (late "late" lost), 3 deleted
    ops = [r["operation"] for r in spark.sql(f"DESCRIBE HISTORY {table}").collect()]
    assert ops[0] == "MERGE"


@VERIFY
def test_scd2_keeps_history(spark: SparkSession, modes: Modes, verify: str) -> None:
    table = modes.p.t(f"silver.cu_{verify}_{{s}}")
    assert modes.first.step(table).rows_written == 3
    step = modes.second.step(table)
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
        for r in spark.table(table).collect()
    )
    assert hist == [
        (1, "bronze", "2026-11-01", "2026-11-02", False),
        (1, "silver", "2026-11-02", None, True),
        (2, "gold", "2026-11-01", "2026-11-04", False),
        (2, "platinum", "2026-11-04", None, True),
        (3, "bronze", "2026-11-04", None, True),
    ]
    q = spark.table(f"{table}__quarantine").collect()
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


def test_run_is_recorded_in_system_tables(spark: SparkSession, modes: Modes) -> None:
    # The shared pipeline's first run: its merge table (verify_counts false) was new.
    p, result = modes.p, modes.first
    run = spark.sql(f"SELECT * FROM lakeforge.runs WHERE run_id = '{result.run_id}'").collect()
    assert [(r["status"], r["pipeline"]) for r in run] == [("succeeded", p.t("modes_{s}"))]
    assert run[0]["ended_at"] is not None and run[0]["code_version"].startswith("lakeforge ")
    rows = spark.sql(
        f"SELECT table_name, role, version, rows_in, rows_landed FROM lakeforge.table_versions "
        f"WHERE run_id = '{result.run_id}' ORDER BY table_name, role"
    ).collect()
    got = [(r["table_name"], r["role"], r["version"]) for r in rows]
    assert (p.t("bronze.ev_{s}"), "write", 0) in got
    assert (p.t("bronze.ev_{s}"), "read", 0) in got
    assert (p.t("silver.st_false_{s}"), "write", 0) in got
    assert (p.t("silver.st_false_{s}__quarantine"), "write", 0) in got
    # The commit that run made (the table's version 0; the second run made version 1).
    [commit] = (
        spark.sql(f"DESCRIBE HISTORY {p.t('silver.st_false_{s}')}").where("version = 0").collect()
    )
    meta = json.loads(commit["userMetadata"])
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
