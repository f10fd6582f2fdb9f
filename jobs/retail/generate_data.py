"""Generate the retail example's raw CSV drops: one folder per feed, one file per day.

Deterministic for a given ``--seed``: day N's files are identical whichever days you ask
for, so delivering days 1-3 today and 4-5 tomorrow gives the same bytes as all at once.

The feeds have what real feeds have:

- ``customers``: a full snapshot on day 1, then only new and changed customers (plus a
  re-sent unchanged one) -> silver SCD2 keeps the history.
- ``orders``: new orders, *late* orders placed on an earlier day, *updates* of earlier
  orders (a new status, a later ``updated_at``), exact *duplicates*, one bad amount, one
  impossible timestamp, one missing customer id and one *malformed* line per day; from
  day 4 the feed gains a ``channel`` column (a schema change).
- ``order_lines``: 1-3 lines per new order, one non-numeric quantity per day, one
  implausible quantity (a fat-fingered 250: quarantined by an expectation) and one line
  of a QA test product (``TEST-`` SKU: dropped by an expectation).

``generate`` also returns what a correct pipeline must make of it (rows per feed,
defects, duplicates), so tests compute expectations instead of hard-coding them.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

START = date(2026, 11, 1)
SCHEMA_CHANGE_DAY = 4
SEGMENTS = ["consumer", "small_business", "enterprise"]
COUNTRIES = ["DE", "FR", "NL", "US", "GB"]
CHANNELS = ["web", "store", "app"]
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
]
SKUS = [f"SKU-{n:04d}" for n in range(1, 41)]


@dataclass
class DayTruth:
    """What day N delivers, per feed: rows in the file and what silver must do with them."""

    day: int
    customers_rows: int = 0
    customers_changes: int = 0  # new or changed: new SCD2 versions
    customers_unchanged: int = 0  # re-sent without change: deduplicated
    orders_rows: int = 0
    orders_invalid: int = 0  # quarantined (bad cast, null key field, malformed)
    orders_duplicates: int = 0  # exact re-sends within the day: deduplicated
    orders_new_ids: list[int] = field(default_factory=list)
    orders_updated_ids: list[int] = field(default_factory=list)
    late_ids: list[int] = field(default_factory=list)
    lines_rows: int = 0
    lines_invalid: int = 0  # quarantined: quantity not a number
    lines_implausible: int = 0  # quarantined by expectation qty_plausible (qty > 100)
    lines_test_sku: int = 0  # dropped by expectation no_test_products


def _ts(day: date, rng: random.Random, lo: int = 0, hi: int = 86399) -> datetime:
    return datetime(day.year, day.month, day.day) + timedelta(seconds=rng.randint(lo, hi))


def generate(
    out: Path, days: int = 5, seed: int = 7, only: set[int] | None = None
) -> list[DayTruth]:
    """Write the feeds for days ``1..days`` (or just the days in ``only``).

    Returns:
        One :class:`DayTruth` per day written.
    """
    for feed in ("customers", "orders", "order_lines"):
        (out / feed).mkdir(parents=True, exist_ok=True)
    customers: dict[int, list[str]] = {}
    orders: dict[int, dict[str, str]] = {}
    next_customer, next_order = 1, 100000
    truths = []
    for d in range(1, days + 1):
        day = START + timedelta(days=d - 1)
        rng = random.Random(seed * 1000 + d)
        truth = DayTruth(day=d)
        write = only is None or d in only

        # customers: snapshot on day 1, then changes only.
        cust_rows: list[list[str]] = []
        for _ in range(60 if d == 1 else 3):  # a snapshot on day 1, new customers later
            cid, next_customer = next_customer, next_customer + 1
            customers[cid] = [
                f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                rng.choice(SEGMENTS),
                rng.choice(COUNTRIES),
            ]
            cust_rows.append([str(cid), *customers[cid], _ts(day, rng).isoformat(sep=" ")])
        truth.customers_changes = len(cust_rows)
        if d > 1:
            for cid in rng.sample(sorted(customers), 4):
                name, segment, _country = customers[cid]
                segment = rng.choice([s for s in SEGMENTS if s != segment])
                customers[cid] = [name, segment, rng.choice(COUNTRIES)]
                cust_rows.append([str(cid), *customers[cid], _ts(day, rng).isoformat(sep=" ")])
            truth.customers_changes += 4
            same = rng.choice(sorted(set(customers) - {int(r[0]) for r in cust_rows}))
            cust_rows.append([str(same), *customers[same], _ts(day, rng).isoformat(sep=" ")])
            truth.customers_unchanged = 1
        truth.customers_rows = len(cust_rows)

        # orders
        header = ["order_id", "customer_id", "order_ts", "status", "amount", "updated_at"]
        if d >= SCHEMA_CHANGE_DAY:
            header.append("channel")
        order_rows: list[list[str]] = []
        line_rows: list[list[str]] = []

        def new_order(
            placed: date,
            rng: random.Random = rng,
            day: date = day,
            line_rows: list[list[str]] = line_rows,
        ) -> dict[str, str]:
            nonlocal next_order
            next_order += 1
            oid = next_order
            ts = _ts(placed, rng)
            lines = []
            for line_no in range(1, rng.randint(1, 3) + 1):
                qty, price = rng.randint(1, 5), round(rng.uniform(2, 120), 2)
                lines.append([str(oid), str(line_no), rng.choice(SKUS), str(qty), f"{price:.2f}"])
            amount = sum(int(x[3]) * float(x[4]) for x in lines)
            line_rows.extend(lines)
            order = {
                "order_id": str(oid),
                "customer_id": str(rng.choice(sorted(customers))),
                "order_ts": ts.isoformat(sep=" "),
                "status": rng.choice(["completed"] * 8 + ["pending", "cancelled"]),
                "amount": f"{amount:.2f}",
                "updated_at": max(ts, _ts(day, rng, 0, 600)).isoformat(sep=" "),
                "channel": rng.choice(CHANNELS),
            }
            orders[oid] = order
            return order

        todays = [new_order(day) for _ in range(80)]
        truth.orders_new_ids = [int(o["order_id"]) for o in todays]
        if d > 1:
            late = [
                new_order(day - timedelta(days=rng.randint(1, min(2, d - 1)))) for _ in range(5)
            ]
            truth.late_ids = [int(o["order_id"]) for o in late]
            todays += late
            earlier = [oid for oid in orders if oid not in {int(o["order_id"]) for o in todays}]
            for oid in rng.sample(sorted(earlier), 4):
                update = dict(orders[oid])
                update["status"] = "returned" if update["status"] == "completed" else "completed"
                update["updated_at"] = _ts(day, rng, 43200).isoformat(sep=" ")
                orders[oid] = update
                todays.append(update)
                truth.orders_updated_ids.append(oid)
        for o in todays:
            order_rows.append([o[c] for c in header])
        # Exact re-sends of three of today's rows.
        for row in rng.sample(order_rows[:80], 3):
            order_rows.append(list(row))
        truth.orders_duplicates = 3
        # Defects: each row is a new order id that must not reach silver.
        defects = []
        for kind in ("amount", "timestamp", "customer"):
            next_order += 1
            row = {
                "order_id": str(next_order),
                "customer_id": str(rng.choice(sorted(customers))),
                "order_ts": _ts(day, rng).isoformat(sep=" "),
                "status": "completed",
                "amount": "19.99",
                "updated_at": _ts(day, rng).isoformat(sep=" "),
                "channel": "web",
            }
            if kind == "amount":
                row["amount"] = "n/a"
            elif kind == "timestamp":
                row["order_ts"] = f"{day.isoformat()} 25:61:00"
            else:
                row["customer_id"] = ""
            defects.append([row[c] for c in header])
        order_rows[10:10] = defects
        truth.orders_invalid = 4  # the three above and one malformed line
        truth.orders_rows = len(order_rows) + 1
        # One quantity that is not a number, one fat-fingered, one QA test product.
        # (Edits of generated rows, no extra random draws: other days stay the same.)
        line_rows[5] = [*line_rows[5][:3], "two", line_rows[5][4]]
        line_rows[8] = [*line_rows[8][:3], "250", line_rows[8][4]]
        line_rows[12] = [*line_rows[12][:2], "TEST-0001", *line_rows[12][3:]]
        truth.lines_rows = len(line_rows)
        truth.lines_invalid = 1
        truth.lines_implausible = 1
        truth.lines_test_sku = 1
        truths.append(truth)
        # The malformed line's order id is taken whether or not the day is written, so
        # a day's files are the same whichever days are asked for.
        next_order += 1
        malformed_id = next_order

        if not write:
            continue
        stamp = day.isoformat()
        with (out / "customers" / f"customers_{stamp}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["customer_id", "name", "segment", "country", "updated_at"])
            w.writerows(cust_rows)
        with (out / "orders" / f"orders_{stamp}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(order_rows)
            # A truncated line with a broken quote: the kind of row that arrives malformed.
            f.write(f'{malformed_id},17,"{stamp} 10:00:00,completed\n')
        with (out / "order_lines" / f"lines_{stamp}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["order_id", "line_no", "sku", "qty", "unit_price"])
            w.writerows(line_rows)
    return [t for t in truths if only is None or t.day in only]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/raw/retail"))
    parser.add_argument("--days", type=int, default=5, help="generate days 1..N")
    parser.add_argument("--only", type=str, default=None, help="write only these days, e.g. 4,5")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--truth", type=Path, default=None, help="also write the expectations as JSON"
    )
    args = parser.parse_args()
    only = {int(x) for x in args.only.split(",")} if args.only else None
    truths = generate(args.out, days=args.days, seed=args.seed, only=only)
    if args.truth:
        args.truth.write_text(json.dumps([asdict(t) for t in truths], indent=2) + "\n")
    for t in truths:
        print(
            f"day {t.day}: {t.customers_rows} customer rows, {t.orders_rows} order rows "
            f"({len(t.late_ids)} late, {len(t.orders_updated_ids)} updates, {t.orders_duplicates} "
            f"duplicates, {t.orders_invalid} invalid), {t.lines_rows} order lines -> {args.out}"
        )


if __name__ == "__main__":
    main()
