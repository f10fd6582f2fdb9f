"""The example's generator: a day's files do not depend on which days were asked for."""

from __future__ import annotations

import filecmp
import sys
from pathlib import Path

from tests.helpers import REPO

sys.path.insert(0, str(REPO / "jobs" / "retail"))
import generate_data


def test_delivering_in_two_parts_equals_all_at_once(tmp_path: Path) -> None:
    generate_data.generate(tmp_path / "all", days=5)
    generate_data.generate(tmp_path / "parts", days=3)
    truths = generate_data.generate(tmp_path / "parts", days=5, only={4, 5})
    assert [t.day for t in truths] == [4, 5]
    for feed in ("customers", "orders", "order_lines"):
        names = sorted(p.name for p in (tmp_path / "all" / feed).iterdir())
        assert names == sorted(p.name for p in (tmp_path / "parts" / feed).iterdir())
        _match, mismatch, errors = filecmp.cmpfiles(
            tmp_path / "all" / feed, tmp_path / "parts" / feed, names, shallow=False
        )
        assert (mismatch, errors) == ([], []), feed


def test_truth_counts_match_files(tmp_path: Path) -> None:
    truths = generate_data.generate(tmp_path, days=4)
    for t in truths:
        stamp = f"2026-11-0{t.day}"
        orders = (tmp_path / "orders" / f"orders_{stamp}.csv").read_text().splitlines()
        assert len(orders) - 1 == t.orders_rows
        lines = (tmp_path / "order_lines" / f"lines_{stamp}.csv").read_text().splitlines()
        assert len(lines) - 1 == t.lines_rows
    assert (
        "channel" not in (tmp_path / "orders" / "orders_2026-11-03.csv").read_text().splitlines()[0]
    )
    assert (
        (tmp_path / "orders" / "orders_2026-11-04.csv")
        .read_text()
        .splitlines()[0]
        .endswith(",channel")
    )
