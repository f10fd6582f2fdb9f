"""Bronze cannot get stuck and its ingestion log cannot be lost silently: rejected files,
operator decisions (retry, skip, repair), vanished pending files, and the log rebuilt from
(or checked against) bronze's own Delta history."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakeforge.errors import Code, RunError
from lakeforge.io.delta import latest_version
from lakeforge.io.listing import list_files
from lakeforge.lineage.system_tables import (
    INGESTED_FILES,
    REJECTED_FILES,
    append_ingestion_events,
)
from lakeforge.pipeline.executor import execute
from lakeforge.plan.builder import build_plan
from lakeforge.plan.load import load_pipeline
from lakeforge.results import RunResult
from lakeforge.steps.ingest import _events, load_log, repair, retry_file, skip_file
from tests.helpers import make_project

pytestmark = pytest.mark.spark

D1 = "order_id,amount\n1,10.00\n2,20.00\n"
D2 = "order_id,amount\n3,30.00\n4,40.00\n5,50.00\n"


class Feed:
    """A scratch project with one bronze table, named uniquely."""

    def __init__(self, root: Path) -> None:
        self.s = uuid.uuid4().hex[:6]
        self.raw = root / "raw" / "orders"
        self.raw.mkdir(parents=True)
        self.bronze = f"bronze.rec_{self.s}"
        text = f"""\
            name: rec_{self.s}
            bronze:
              rec_{self.s}:
                source: {{format: csv, path: raw/orders}}
            """
        self.path = make_project(root, textwrap.dedent(text))

    def drop(self, name: str, text: str) -> Path:
        path = self.raw / name
        path.write_text(text)
        return path

    def run(self, spark: SparkSession) -> RunResult:
        loaded = load_pipeline(self.path)
        return execute(build_plan(loaded), spark, loaded.project_root)

    def statuses(self, spark: SparkSession) -> dict[str, tuple[str, int]]:
        return {
            Path(e.path).name: (e.status, e.batch_id) for e in load_log(spark, self.bronze).values()
        }

    def rejected(self, spark: SparkSession) -> list[tuple[str, str]]:
        rows = spark.sql(
            f"SELECT path, reason FROM {REJECTED_FILES} WHERE table_name = '{self.bronze}'"
        ).collect()
        return sorted((Path(r["path"]).name, r["reason"]) for r in rows)

    def files_in_bronze(self, spark: SparkSession) -> dict[str, int]:
        rows = spark.sql(
            f"SELECT _lf_source_file AS f, count(*) AS n FROM {self.bronze} GROUP BY 1"
        ).collect()
        return {r["f"].rsplit("/", 1)[-1]: r["n"] for r in rows}


def test_empty_file_is_rejected_once_rest_lands_and_retry_lands_it(
    spark: SparkSession, tmp_path: Path
) -> None:
    feed = Feed(tmp_path)
    feed.drop("d1.csv", D1)
    empty = feed.drop("empty.csv", "")
    first = feed.run(spark)
    assert first.ok, first.error
    step = first.step(feed.bronze)
    assert (step.rows_read, step.rows_written, step.files) == (2, 2, 1)
    assert feed.files_in_bronze(spark) == {"d1.csv": 2}
    assert feed.rejected(spark) == [("empty.csv", "empty_file")]
    assert feed.statuses(spark)["empty.csv"][0] == "rejected"

    # The next run does nothing: no commit, no second rejection row.
    again = feed.run(spark)
    assert again.ok, again.error
    assert not again.step(feed.bronze).committed
    assert feed.rejected(spark) == [("empty.csv", "empty_file")]

    # Fixed in place: still held until an operator retries it; then it lands (not LF-RUN-004).
    empty.write_text("order_id,amount\n9,90.00\n")
    assert not feed.run(spark).step(feed.bronze).committed
    decision = retry_file(spark, str(empty), "op-retry", feed.bronze)
    assert (decision.before, decision.after) == ("rejected", "retry")
    fixed = feed.run(spark)
    assert fixed.ok, fixed.error
    assert fixed.step(feed.bronze).rows_written == 1
    assert feed.files_in_bronze(spark) == {"d1.csv": 2, "empty.csv": 1}
    assert feed.statuses(spark)["empty.csv"][0] == "committed"


def test_dropped_log_is_rebuilt_from_bronze(
    spark: SparkSession, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    feed = Feed(tmp_path)
    feed.drop("d1.csv", D1)
    assert feed.run(spark).ok
    spark.sql(f"DROP TABLE {INGESTED_FILES}")
    feed.drop("d2.csv", D2)
    capfd.readouterr()
    result = feed.run(spark)
    assert result.ok, result.error
    step = result.step(feed.bronze)
    # Only the new file: d1 is not ingested again, and d2's batch is not skipped by Delta.
    assert (step.rows_read, step.rows_written, step.files, step.version) == (3, 3, 1, 1)
    assert feed.files_in_bronze(spark) == {"d1.csv": 2, "d2.csv": 3}
    assert feed.statuses(spark) == {"d1.csv": ("committed", 1), "d2.csv": ("committed", 2)}
    assert "ingestion log was behind" in capfd.readouterr().err
    # Rebuilt once: the next run agrees with Delta and does nothing.
    quiet = feed.run(spark)
    assert quiet.ok and not quiet.step(feed.bronze).committed
    assert "ingestion log was behind" not in capfd.readouterr().err


def test_truncated_log_keeps_batch_ids_growing(spark: SparkSession, tmp_path: Path) -> None:
    feed = Feed(tmp_path)
    feed.drop("d1.csv", D1)
    assert feed.run(spark).ok
    feed.drop("d2.csv", D2)
    assert feed.run(spark).ok
    # Lose the newest batch's events: the log's last batch (1) is behind Delta's (2).
    spark.sql(f"DELETE FROM {INGESTED_FILES} WHERE table_name = '{feed.bronze}' AND batch_id = 2")
    feed.drop("d3.csv", "order_id,amount\n6,60.00\n")
    result = feed.run(spark)
    assert result.ok, result.error
    assert result.step(feed.bronze).rows_written == 1
    assert feed.files_in_bronze(spark) == {"d1.csv": 2, "d2.csv": 3, "d3.csv": 1}
    assert feed.statuses(spark)["d3.csv"] == ("committed", 3)


def test_log_claiming_a_batch_bronze_lacks_fails(spark: SparkSession, tmp_path: Path) -> None:
    feed = Feed(tmp_path)
    feed.drop("d1.csv", D1)
    assert feed.run(spark).ok
    ghost = feed.drop("ghost.csv", D2)
    info = [f for f in list_files(spark, str(feed.raw)) if f.path.endswith("ghost.csv")]
    append_ingestion_events(spark, _events(feed.bronze, info, 5, "forged", "committed", 4))
    result = feed.run(spark)
    assert result.error_code == Code.INGEST_LOG_MISMATCH
    assert "ghost.csv" in (result.error or "") and ghost.exists()
    assert latest_version(spark, feed.bronze) == 0


def test_pending_batch_with_vanished_file_lands_the_rest(
    spark: SparkSession, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    feed = Feed(tmp_path)
    feed.drop("d1.csv", D1)
    assert feed.run(spark).ok
    feed.drop("d2.csv", D2)
    gone = feed.drop("gone.csv", "order_id,amount\n7,70.00\n")
    files = [f for f in list_files(spark, str(feed.raw)) if not f.path.endswith("d1.csv")]
    # A run logged batch 2 pending and died; then one of its files was deleted.
    append_ingestion_events(spark, _events(feed.bronze, files, 2, "crashed", "pending", None))
    gone.unlink()
    capfd.readouterr()
    result = feed.run(spark)
    assert result.ok, result.error
    assert result.step(feed.bronze).rows_written == 3
    assert feed.files_in_bronze(spark) == {"d1.csv": 2, "d2.csv": 3}
    assert feed.statuses(spark)["gone.csv"] == ("vanished", 2)
    assert feed.statuses(spark)["d2.csv"] == ("committed", 2)
    assert "gone.csv" in capfd.readouterr().err


def test_repair_resolves_vanished_and_lists_rejected(spark: SparkSession, tmp_path: Path) -> None:
    feed = Feed(tmp_path)
    feed.drop("d1.csv", D1)
    feed.drop("empty.csv", "")
    assert feed.run(spark).ok
    gone = feed.drop("gone.csv", D2)
    files = [f for f in list_files(spark, str(feed.raw)) if f.path.endswith("gone.csv")]
    append_ingestion_events(spark, _events(feed.bronze, files, 2, "crashed", "pending", None))
    gone.unlink()
    report = repair(spark, "op-repair")
    mine = [line for line in report.resolved if feed.bronze in line]
    assert any("gone.csv" in line and "vanished" in line for line in mine)
    assert any(feed.bronze in line and "empty.csv" in line for line in report.decide)
    assert feed.statuses(spark)["gone.csv"][0] == "vanished"
    # Skipping the rejected file is the decision: the run then leaves it alone for good.
    decision = skip_file(spark, str(feed.raw / "empty.csv"), "op-skip")
    assert (decision.before, decision.after) == ("rejected", "skipped")
    assert not any(feed.bronze in line for line in repair(spark, "op-repair2").decide)
    result = feed.run(spark)
    assert result.ok and not result.step(feed.bronze).committed


def test_hidden_file_is_rejected_once_and_lands_once_renamed(
    spark: SparkSession, tmp_path: Path
) -> None:
    feed = Feed(tmp_path)
    feed.drop("d1.csv", D1)
    hidden = feed.drop("_late.csv", D2)
    assert feed.run(spark).ok
    assert feed.rejected(spark) == [("_late.csv", "hidden_name")]
    assert feed.run(spark).ok
    assert feed.rejected(spark) == [("_late.csv", "hidden_name")]
    # A retry re-evaluates it: Spark's reader ignores hidden names, so it is rejected again.
    retry_file(spark, str(hidden), "op-retry")
    assert feed.run(spark).ok
    assert feed.rejected(spark) == [("_late.csv", "hidden_name")] * 2
    hidden.rename(feed.raw / "late.csv")
    result = feed.run(spark)
    assert result.ok, result.error
    assert feed.files_in_bronze(spark) == {"d1.csv": 2, "late.csv": 3}


def test_operator_commands_name_unknown_files_with_a_code(
    spark: SparkSession, tmp_path: Path
) -> None:
    with pytest.raises(RunError) as unknown:
        retry_file(spark, str(tmp_path / "never-seen.csv"), "op")
    assert unknown.value.code == Code.INGEST_FILE_UNKNOWN
    feed = Feed(tmp_path)
    done = feed.drop("d1.csv", D1)
    assert feed.run(spark).ok
    with pytest.raises(RunError) as committed:
        skip_file(spark, str(done), "op")
    assert committed.value.code == Code.STEP_FAILED
