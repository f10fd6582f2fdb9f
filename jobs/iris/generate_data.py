"""Generate the iris example's raw CSV drops from scikit-learn's bundled iris data.

``sklearn.datasets.load_iris`` ships with scikit-learn (no network). Each of the 150
flowers gets a stable entity key ``flower_id`` (1-150, in the data set's order) and an
event time ``measured_at``: the flowers are measured over two days, one file per day
(``data/raw/iris/measurements/day=N.csv``), flower by flower, one minute apart.

Deterministic, with what a real feed has, so silver has something to set aside:

- ``bad_cast``: a measurement typed as ``n/a`` (quarantined: the cast fails);
- ``missing_id``: a row without a flower id (quarantined: key is null);
- ``negative``: a negative petal length (quarantined by an expectation);
- ``unknown_species``: a species not in the three classes (quarantined by an expectation);
- ``duplicate``: an exact re-send of a valid row (deduplicated).

``generate`` returns that truth, so tests compute what the pipeline must do.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

START = datetime(2026, 4, 1, 8, 0, 0)
COLUMNS = [
    "flower_id",
    "measured_at",
    "sepal_length",
    "sepal_width",
    "petal_length",
    "petal_width",
    "species",
]
DAYS = 2
# The reason silver.measurements__quarantine must give for each defect.
REASONS = {
    "bad_cast": "cast_failed:sepal_width:double:n/a",
    "missing_id": "null_not_allowed:flower_id",
    "negative": "expectation:petal_length_plausible",
    "unknown_species": "expectation:known_species",
}
PER_DAY = 75


@dataclass
class Truth:
    """What the files hold and what silver must make of them."""

    flowers: int = 0  # valid flowers (distinct ids): rows silver must land
    rows: int = 0  # rows in all files
    quarantined: dict[str, int] = field(default_factory=dict)  # defect -> rows
    duplicates: int = 0
    files: list[str] = field(default_factory=list)


def flowers() -> list[dict[str, str]]:
    """The 150 iris flowers as raw CSV rows (text, like a feed)."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    names = [str(n) for n in iris.target_names]  # setosa, versicolor, virginica
    rows = []
    for i, (x, y) in enumerate(zip(iris.data, iris.target, strict=True)):
        rows.append(
            {
                "flower_id": str(i + 1),
                "measured_at": (
                    START + timedelta(days=i // PER_DAY, minutes=i % PER_DAY)
                ).isoformat(sep=" "),
                "sepal_length": f"{x[0]:.1f}",
                "sepal_width": f"{x[1]:.1f}",
                "petal_length": f"{x[2]:.1f}",
                "petal_width": f"{x[3]:.1f}",
                "species": names[int(y)],
            }
        )
    return rows


def bad_rows() -> dict[str, dict[str, str]]:
    """One row per defect, with flower ids beyond the real ones (901...)."""
    at = (START + timedelta(days=1, hours=6)).isoformat(sep=" ")
    base = {"measured_at": at, "sepal_length": "5.0", "sepal_width": "3.0"}
    base |= {"petal_length": "1.5", "petal_width": "0.2", "species": "setosa"}
    return {
        "bad_cast": base | {"flower_id": "901", "sepal_width": "n/a"},
        "missing_id": base | {"flower_id": ""},
        "negative": base | {"flower_id": "903", "petal_length": "-1.4"},
        "unknown_species": base | {"flower_id": "904", "species": "iris-unknown"},
    }


def generate(out: Path) -> Truth:
    """Write the day files under ``out/measurements`` and return what they hold."""
    rows = flowers()
    truth = Truth(flowers=len(rows))
    days = [rows[d * PER_DAY : (d + 1) * PER_DAY] for d in range(DAYS)]
    # Day 2 re-sends the last flower of day 1 unchanged, and carries the defects.
    days[1] = [*days[1], days[0][-1], *bad_rows().values()]
    truth.duplicates = 1
    truth.quarantined = {defect: 1 for defect in bad_rows()}
    folder = out / "measurements"
    folder.mkdir(parents=True, exist_ok=True)
    for n, day in enumerate(days, start=1):
        path = folder / f"day={n}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(day)
        truth.rows += len(day)
        truth.files.append(str(path))
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/raw/iris"))
    args = parser.parse_args()
    t = generate(args.out)
    print(
        f"iris: {t.rows} rows in {len(t.files)} files under {args.out}/measurements "
        f"({t.flowers} flowers, {sum(t.quarantined.values())} bad rows, "
        f"{t.duplicates} duplicate)"
    )


if __name__ == "__main__":
    main()
