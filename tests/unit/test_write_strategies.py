"""Write strategies: one per mode, chosen once; what each owns (no JVM)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lakeforge.config.models import Action, GoldTable, SilverTable, WriteMode
from lakeforge.io.delta import Commit, Txn
from lakeforge.quality.spec import Expectation
from lakeforge.write import STRATEGIES, Target, aside_for, spec_hash, strategy_for
from lakeforge.write.append import Append
from lakeforge.write.merge import Merge
from lakeforge.write.overwrite import Overwrite
from lakeforge.write.scd2 import SCD2_COLUMNS, Scd2


def _target(**kw: object) -> Target:
    base: dict[str, object] = {
        "table": "silver.t",
        "step": "silver.t",
        "run_id": "r",
        "exists": True,
    }
    return Target(**{**base, **kw})  # type: ignore[arg-type]


def test_every_mode_has_exactly_one_strategy() -> None:
    assert set(STRATEGIES) == set(WriteMode)
    expected = {"overwrite": Overwrite, "append": Append, "merge": Merge, "scd2": Scd2}
    for name, cls in expected.items():
        strategy = strategy_for(name)
        assert type(strategy) is cls and strategy.mode is WriteMode(name)
    with pytest.raises(ValueError):
        strategy_for("upsert")


def test_the_mode_is_parsed_once_into_the_enum() -> None:
    silver = SilverTable.model_validate(
        {"from": "bronze.o", "columns": {"id": "int"}, "keys": ["id"], "mode": "merge"}
    )
    assert silver.mode is WriteMode.MERGE
    assert GoldTable.model_validate({"sql": "SELECT 1"}).mode is WriteMode.OVERWRITE
    with pytest.raises(ValueError, match="silver"):
        GoldTable.model_validate({"sql": "SELECT 1", "mode": "scd2"})
    # The definition's hash is what it was when the mode was a string.
    assert '"mode":"merge"' in silver.model_dump_json(by_alias=True)


def test_incremental_modes_carry_txn_ids_keyed_by_the_input_version() -> None:
    assert strategy_for("overwrite").silver_txn("silver.t", "bronze.t", 0) is None
    for mode in ("append", "merge", "scd2"):
        txn = strategy_for(mode).silver_txn("silver.t", "bronze.t", 0)
        assert txn == Txn("lakeforge:silver.t<-bronze.t", 1)  # version 0 is valid
    # Gold: only append is idempotent by txn, derived from the input versions.
    assert strategy_for("append").gold_txn("gold.g", {"a": 2, "b": 3}) == Txn("lakeforge:gold.g", 6)
    assert strategy_for("overwrite").gold_txn("gold.g", {"a": 2}) is None
    assert strategy_for("merge").gold_txn("gold.g", {"a": 2}) is None


def test_the_quarantine_is_rebuilt_with_a_rebuild_and_appended_otherwise() -> None:
    assert type(aside_for(strategy_for("overwrite"))) is Overwrite
    for mode in ("append", "merge", "scd2"):
        assert type(aside_for(strategy_for(mode))) is Append


def test_which_writes_report_an_observation() -> None:
    overwrite, append = strategy_for("overwrite"), strategy_for("append")
    assert overwrite.observes(_target()) and append.observes(_target())
    assert not overwrite.observes(_target(exists=False))  # CREATE TABLE AS SELECT
    assert not append.observes(_target(exists=False))
    assert not overwrite.observes(_target(add_columns=True))  # replaces the schema
    assert not overwrite.observes(_target(replace_schema=True))
    for mode in ("merge", "scd2"):  # a MERGE reports no observation
        assert not strategy_for(mode).observes(_target())
        assert not strategy_for(mode).observes(_target(exists=False))


def test_commit_metrics_and_deletes_each_strategy_reports() -> None:
    merge_commit = Commit(
        "silver.t", 3, "MERGE", 10, {"numSourceRows": "10", "numTargetRowsInserted": "7"}
    )
    assert strategy_for("scd2").rows_landed(merge_commit) == 7  # closing rows are not rows
    assert strategy_for("merge").rows_landed(merge_commit) == 10
    assert strategy_for("scd2").managed_columns == SCD2_COLUMNS
    assert strategy_for("scd2").keeps_history and not strategy_for("merge").keeps_history
    merge = strategy_for("merge")
    assert merge.unseen_deletes(_target(exists=False, delete="_lf_delete"))
    assert not merge.unseen_deletes(_target(delete="_lf_delete"))
    assert not merge.unseen_deletes(_target(exists=False))
    assert not strategy_for("append").unseen_deletes(_target(exists=False, delete="d"))


def test_spec_hash_is_stable_and_tells_definitions_apart() -> None:
    assert spec_hash("a", "b") == spec_hash("ab") and len(spec_hash("x")) == 16
    assert spec_hash("a") != spec_hash("b")


def test_actions_are_an_enum_and_drop_is_an_outcome_of_its_own() -> None:
    e = Expectation(
        name="n", type="expect_column_values_to_not_be_null", kwargs_json="{}", action="drop"
    )
    assert e.action is Action.DROP and e.action.sets_aside
    assert Action.QUARANTINE.sets_aside
    assert not Action.WARN.sets_aside and not Action.FAIL.sets_aside
    # The repr stays the bare string's, so spec hashes of existing tables do not change.
    assert repr(e.action) == "'drop'"
    with pytest.raises(ValueError):
        Expectation(
            name="n", type="expect_column_values_to_not_be_null", kwargs_json="{}", action="skip"
        )


def test_choosing_a_strategy_loads_no_pyspark() -> None:
    code = (
        "import sys; from lakeforge.write import strategy_for; "
        "[strategy_for(m) for m in ('overwrite', 'append', 'merge', 'scd2')]; "
        "print('pyspark' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
