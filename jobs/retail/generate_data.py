"""Generate the retail example's raw CSV drops (deterministic for a given --seed).

Writes ``customers/customers.csv`` and one ``orders/orders_<date>.csv`` per day, with
the defects real feeds have: a non-numeric amount, an impossible timestamp, a missing
customer id. Those rows must end up in ``silver.orders__quarantine``, not vanish.
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import date, datetime, timedelta
from pathlib import Path

SEGMENTS = ["consumer", "small_business", "enterprise"]
COUNTRIES = ["DE", "FR", "NL", "US", "GB"]
STATUSES = ["completed"] * 8 + ["returned", "cancelled"]
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Perlman",
    "Lee",
]


def generate(
    out: Path,
    days: int = 3,
    customers: int = 40,
    orders_per_day: int = 60,
    seed: int = 7,
    start: date = date(2026, 11, 1),
) -> dict[str, int]:
    """Write the files; return how many data rows each kind got (defects included)."""
    rng = random.Random(seed)
    (out / "customers").mkdir(parents=True, exist_ok=True)
    (out / "orders").mkdir(parents=True, exist_ok=True)
    with (out / "customers" / "customers.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "name", "segment", "country", "signup_date"])
        for cid in range(1, customers + 1):
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            signup = start - timedelta(days=rng.randint(30, 900))
            w.writerow([cid, name, rng.choice(SEGMENTS), rng.choice(COUNTRIES), signup.isoformat()])
    order_id = 100000
    total = 0
    for d in range(days):
        day = start + timedelta(days=d)
        with (out / "orders" / f"orders_{day.isoformat()}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["order_id", "customer_id", "order_ts", "status", "amount"])
            for i in range(orders_per_day):
                order_id += 1
                ts = datetime(day.year, day.month, day.day) + timedelta(
                    seconds=rng.randint(0, 86399)
                )
                row = [
                    order_id,
                    rng.randint(1, customers),
                    ts.isoformat(sep=" "),
                    rng.choice(STATUSES),
                    f"{rng.uniform(5, 500):.2f}",
                ]
                # One defect of each kind per day, at fixed positions.
                if i == 7:
                    row[4] = "n/a"
                elif i == 19:
                    row[2] = f"{day.isoformat()} 25:61:00"
                elif i == 31:
                    row[1] = ""
                w.writerow(row)
                total += 1
    return {"customers": customers, "orders": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/raw/retail"))
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    counts = generate(args.out, days=args.days, seed=args.seed)
    print(
        f"generated {counts['customers']} customers and {counts['orders']} orders "
        f"({args.days} daily files) in {args.out}"
    )


if __name__ == "__main__":
    main()
