"""Point-in-time joins against a brute-force pandas oracle (issue 6, point 3): random data
with ties, null keys and values, late backfills and two feature tables; identical results
and no value from the future."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession

from lakeforge.training.pit import FeatureSource, point_in_time_join

pytestmark = pytest.mark.spark

T0 = datetime(2026, 1, 1)


def oracle(
    labels: list[dict[str, Any]],
    features: list[dict[str, Any]],
    lag: timedelta,
    ttl: timedelta | None,
    use_created: bool,
    names: list[str],
) -> list[tuple[Any, ...]]:
    """For every label, scan every feature row: the documented rule, written naively."""
    out = []
    for lab in labels:
        t = lab["t"]
        cands = [
            f
            for f in features
            if lab["k"] is not None
            and f["k"] == lab["k"]
            and f["ft"] <= t - lag
            and (ttl is None or f["ft"] >= t - ttl)
            and (not use_created or (f["created"] is not None and f["created"] <= t))
        ]

        def order(f: dict[str, Any]) -> tuple[Any, ...]:
            key: list[Any] = [-f["ft"].timestamp()]
            if use_created:
                key.append(-f["created"].timestamp())
            for n in names:  # ascending, nulls first
                key += [f[n] is not None, f[n] if f[n] is not None else 0]
            return tuple(key)

        best = sorted(cands, key=order)[0] if cands else None
        out.append((lab["id"], *[(best[n] if best else None) for n in names]))
    return sorted(out, key=lambda r: r[0])


def run(
    spark: SparkSession,
    labels: list[dict[str, Any]],
    features: list[dict[str, Any]],
    lag: timedelta,
    ttl: timedelta | None,
    use_created: bool,
) -> list[tuple[Any, ...]]:
    ldf = spark.createDataFrame(
        [(r["id"], r["k"], r["t"]) for r in labels], "id int, k bigint, t timestamp"
    )
    fdf = spark.createDataFrame(
        [(r["k"], r["ft"], r["created"], r["a"], r["b"]) for r in features],
        "k bigint, ft timestamp, created timestamp, a int, b string",
    )
    src = FeatureSource(
        fdf,
        ["k"],
        "ft",
        ["a", "b"],
        lag=lag,
        ttl=ttl,
        created_at="created" if use_created else None,
    )
    got = point_in_time_join(ldf, ["k"], "t", [src]).select("id", "a", "b").collect()
    return sorted((tuple(r) for r in got), key=lambda r: r[0])


rows = st.fixed_dictionaries(
    {
        "k": st.one_of(st.none(), st.integers(0, 3)),
        "ft": st.integers(0, 20).map(lambda h: T0 + timedelta(hours=h)),
        "created": st.one_of(st.none(), st.integers(0, 30).map(lambda h: T0 + timedelta(hours=h))),
        "a": st.one_of(st.none(), st.integers(0, 3)),
        "b": st.one_of(st.none(), st.sampled_from(["x", "y"])),
    }
)
label_rows = st.fixed_dictionaries(
    {
        "k": st.one_of(st.none(), st.integers(0, 3)),
        "t": st.integers(0, 25).map(lambda h: T0 + timedelta(hours=h)),
    }
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(label_rows, min_size=1, max_size=12),
    st.lists(rows, max_size=25),
    st.integers(0, 3),
    st.one_of(st.none(), st.integers(1, 8)),
    st.booleans(),
)
def test_matches_the_brute_force_oracle(
    spark: SparkSession,
    labels: list[dict[str, Any]],
    features: list[dict[str, Any]],
    lag_h: int,
    ttl_h: int | None,
    use_created: bool,
) -> None:
    labels = [{**r, "id": i} for i, r in enumerate(labels)]
    lag = timedelta(hours=lag_h)
    ttl = None if ttl_h is None else timedelta(hours=ttl_h)
    got = run(spark, labels, features, lag, ttl, use_created)
    assert got == oracle(labels, features, lag, ttl, use_created, ["a", "b"])


def test_two_sources_no_future_values_and_every_label_kept(spark: SparkSession) -> None:
    rng = random.Random(5)
    labels = [
        (i, rng.choice([None, *range(30)]), T0 + timedelta(minutes=rng.randint(0, 5000)))
        for i in range(400)
    ]
    orders = [
        (rng.randint(0, 29), T0 + timedelta(minutes=rng.randint(0, 5000)), rng.randint(0, 9))
        for _ in range(1500)
    ]
    ldf = spark.createDataFrame(labels, "id int, k bigint, t timestamp")
    odf = spark.createDataFrame(orders, "k bigint, ft timestamp, n int")
    # The second source's event time is the feature value itself: a future value shows.
    sdf = spark.createDataFrame(
        [(k, ft, ft) for k, ft, _ in orders], "k bigint, ft timestamp, seen timestamp"
    )
    out = point_in_time_join(
        ldf,
        ["k"],
        "t",
        [
            FeatureSource(odf, ["k"], "ft", ["n"], lag=timedelta(minutes=30), prefix="o_"),
            FeatureSource(sdf, ["k"], "ft", ["seen"], ttl=timedelta(days=1), prefix="s_"),
        ],
    )
    got = out.collect()
    assert sorted(r["id"] for r in got) == list(range(400))  # none lost, none doubled
    for r in got:
        if r["s_seen"] is not None:
            assert r["t"] - timedelta(days=1) <= r["s_seen"] <= r["t"]
    frame = pd.DataFrame(orders, columns=["k", "ft", "n"])
    for r in got[:100]:
        cands = frame[(frame.k == r["k"]) & (frame.ft <= r["t"] - timedelta(minutes=30))]
        if cands.empty:
            assert r["o_n"] is None
        else:
            best = cands[cands.ft == cands.ft.max()].n.min()
            assert r["o_n"] == best


def test_bounds_lag_ttl_and_late_backfill(spark: SparkSession) -> None:
    """Each bound on its own, at its edge: a feature exactly at t - lag is visible, one a
    second later is not; ttl excludes older ones; a backfill created after t is invisible."""
    h = timedelta(hours=1)
    t = T0 + 10 * h
    labels = [{"id": 0, "k": 1, "t": t}]

    def feat(ft: datetime, a: int, created: datetime | None = None) -> dict[str, Any]:
        return {"k": 1, "ft": ft, "created": created, "a": a, "b": None}

    at_edge = [feat(t - 2 * h, 1), feat(t - 2 * h + timedelta(seconds=1), 2)]
    assert run(spark, labels, at_edge, 2 * h, None, False) == [(0, 1, None)]
    assert run(spark, labels, at_edge, timedelta(0), None, False) == [(0, 2, None)]
    old = [feat(t - 5 * h, 3)]
    assert run(spark, labels, old, timedelta(0), 5 * h, False) == [(0, 3, None)]
    assert run(spark, labels, old, timedelta(0), 4 * h, False) == [(0, None, None)]
    backfill = [feat(t - 3 * h, 4, created=t - h), feat(t - h, 5, created=t + h)]
    assert run(spark, labels, backfill, timedelta(0), None, True) == [(0, 4, None)]
    assert run(spark, labels, backfill, timedelta(0), None, False) == [(0, 5, None)]
