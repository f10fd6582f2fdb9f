"""The training-set spec: typed, checked without a JVM, errors with file:line."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from lakeforge.errors import ConfigError
from lakeforge.training.spec import load_training_spec, parse_duration

SPEC = """\
name: late_delivery
labels:
  table: silver.orders
  keys: [customer_id]
  event_time: order_ts
  columns: [is_late]
  filter: "status = 'completed'"
features:
  - table: gold.customer_value
    keys: [customer_id]
    event_time: last_order_ts
    features: [orders, spend]
    lag: 1h
    ttl: 90d
    created_at: _lf_ingested_at
    defaults: {orders: 0}
    prefix: cv_
splits:
  salt: "2026-q4"
  fractions: {train: 0.8, validation: 0.1, test: 0.1}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_valid_spec_loads(tmp_path: Path) -> None:
    spec = load_training_spec(write(tmp_path, SPEC))
    assert spec.labels.table == "silver.orders" and spec.split_keys == ["customer_id"]
    f = spec.features[0]
    assert (f.lag_delta, f.ttl_delta) == (timedelta(hours=1), timedelta(days=90))
    assert spec.splits.ranges().ranges["validation"] == (8000, 9000)


def test_durations() -> None:
    assert parse_duration("15m") == timedelta(minutes=15)
    with pytest.raises(ValueError):
        parse_duration("1 week")


# (text to replace, replacement, start of the line the error must point at, message words);
# the line is looked up in the edited text, not counted by hand.
@pytest.mark.parametrize(
    ("old", "new", "at", "needle"),
    [
        ("    lag: 1h\n", "    lag: soon\n", "    lag: soon", "not a duration"),
        (
            "  fractions: {train: 0.8, validation: 0.1, test: 0.1}",
            "  fractions: {train: 0.8, test: 0.1}",
            "splits:",
            "sum to 1",
        ),
        (
            "    keys: [customer_id]\n    event_time: last",
            "    keys: [customer_id, day]\n    event_time: last",
            "name:",
            "has 2 keys",
        ),
        ("    prefix: cv_\n", "", "name:", "clashes"),
        ("  columns: [is_late]\n", "  columns: [split]\n", "name:", "reserved"),
        ("  table: silver.orders\n", "  table: orders\n", "  table: orders", "should match"),
        (
            "  - table: gold.customer_value\n",
            "  - table: gold.customer_value@yesterday\n",
            "  - table: gold.customer_value@",
            "version",
        ),
        (
            "    features: [orders, spend]\n",
            "    features: [orders, spend]\n    colour: red\n",
            "    colour: red",
            "unknown key",
        ),
    ],
)
def test_errors_are_located(tmp_path: Path, old: str, new: str, at: str, needle: str) -> None:
    text = SPEC.replace(old, new)
    if needle == "clashes":
        text = text.replace("features: [orders, spend]", "features: [is_late, spend]").replace(
            "defaults: {orders: 0}", "defaults: {}"
        )
    assert text != SPEC
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith(at))
    with pytest.raises(ConfigError) as err:
        load_training_spec(write(tmp_path, text))
    issue = err.value.issues[0]
    assert needle in issue.message, issue
    assert issue.file.endswith("spec.yml") and issue.line == line, issue


def test_validate_checks_a_training_spec_without_spark(tmp_path: Path) -> None:
    import subprocess
    import sys

    good = write(tmp_path, SPEC)
    ok = subprocess.run(
        [sys.executable, "-m", "lakeforge.cli.main", "validate", str(good)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0 and "training set 'late_delivery'" in ok.stdout, ok.stderr
    bad = tmp_path / "bad" / "spec.yml"
    bad.parent.mkdir()
    bad.write_text(SPEC.replace("    lag: 1h\n", "    lag: soon\n"))
    err = subprocess.run(
        [sys.executable, "-m", "lakeforge.cli.main", "validate", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert err.returncode == 1 and "spec.yml:13" in err.stderr and "not a duration" in err.stderr
