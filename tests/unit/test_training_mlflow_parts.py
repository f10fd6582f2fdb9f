"""The MLflow helper's pure parts and the iris generator, without a JVM."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import pytest

from lakeforge.errors import Code, RuntimeSetupError
from lakeforge.training.mlflow_log import import_mlflow, manifest_tags, tag_key
from tests.helpers import REPO, load_script


def manifest() -> dict[str, Any]:
    return {
        "id": "iris_species-v3",
        "name": "iris_species",
        "table": "training.iris_species",
        "table_version": 3,
        "config_hash": "1a3ca843bcd09325",
        "created_at": "2026-11-22T09:16:49.671537Z",
        "inputs": [
            {"role": "labels", "table": "silver.measurements", "version": 0},
            {"role": "features[0]", "table": "gold.flower_features", "version": 2},
            {"role": "features[1]", "table": "gold.other", "version": 7},
        ],
    }


def test_tags_name_the_set_and_every_pinned_input() -> None:
    assert manifest_tags(manifest()) == {
        "lakeforge.training_set.id": "iris_species-v3",
        "lakeforge.training_set.name": "iris_species",
        "lakeforge.training_set.table": "training.iris_species@3",
        "lakeforge.training_set.config_hash": "1a3ca843bcd09325",
        "lakeforge.training_set.created_at": "2026-11-22T09:16:49.671537Z",
        "lakeforge.input.labels": "silver.measurements@0",
        "lakeforge.input.features.0": "gold.flower_features@2",
        "lakeforge.input.features.1": "gold.other@7",
    }


def test_tag_keys_are_valid_mlflow_keys() -> None:
    # MLflow accepts letters, digits, '_', '-', '.', '/', ':' and spaces in keys.
    for role in ("labels", "features[0]", "features[12]"):
        assert all(c.isalnum() or c in "_-./: " for c in tag_key(role))
    assert tag_key("features[12]") == "lakeforge.input.features.12"


def test_missing_mlflow_is_a_coded_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(RuntimeSetupError) as exc:
        import_mlflow()
    assert exc.value.code == Code.OPTIONAL_DEPENDENCY_MISSING
    assert exc.value.hint and "lakeforge[mlflow]" in exc.value.hint


def test_iris_generator_truth_matches_its_files(tmp_path: Path) -> None:
    gen = load_script(REPO / "jobs" / "iris" / "generate_data.py", "iris_generate_data_unit")

    truth = gen.generate(tmp_path)
    rows = []
    for f in truth.files:
        with open(f, newline="", encoding="utf-8") as fh:
            rows += list(csv.DictReader(fh))
    assert len(rows) == truth.rows == 150 + 4 + 1
    ids = [r["flower_id"] for r in rows]
    assert set(map(str, range(1, 151))) <= set(ids)
    assert {r["species"] for r in rows if r["flower_id"] in map(str, range(1, 151))} == {
        "setosa",
        "versicolor",
        "virginica",
    }
    assert set(truth.quarantined) == set(gen.REASONS)
    # Deterministic: the same bytes every time.
    again = gen.generate(tmp_path / "again")
    assert [Path(f).read_bytes() for f in again.files] == [
        Path(f).read_bytes() for f in truth.files
    ]
