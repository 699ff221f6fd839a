"""Benchmark: KMeans clusters re-fitted vs the stored fit reused (what a nightly run does between re-fits).

Simulates N buyers (four long-tailed features like the shipped cluster features), then times, each
``--reps`` times (median printed, wall and CPU seconds): the first snapshot (fit on the hash sample with the
shipped settings, assign everyone) and the next day's snapshot with the stored centroids (reused: assign
only), plus the same next day with ``refit_every_days: 0`` (re-fit and match ids). Prints bytecode status.

    .venv/bin/python bench/cluster_bench.py --customers 1000000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from models.clusters import cluster_customers
from models.settings import load_segmentation_settings

DAY = date(2026, 11, 21)


def simulated(n: int, seed: int) -> pl.DataFrame:
    """N buyers with long-tailed spend, orders, recency and sessions (seeded)."""
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "customer_id": [f"c{i:08d}" for i in range(n)],
            "is_buyer": np.ones(n, dtype=bool),
            "monetary": rng.lognormal(6, 1.2, n).round(2),
            "frequency": rng.geometric(0.35, n),
            "recency_days": rng.integers(0, 400, n),
            "sessions_90d": rng.poisson(rng.gamma(1.0, 6.0, n)),
        }
    )


def timed(fn: Callable[[], Any], reps: int) -> tuple[float, float, Any]:
    walls, cpus, out = [], [], None
    for _ in range(reps):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    frame = simulated(args.customers, args.seed)
    reuse = load_segmentation_settings({"clusters": {"features": _features()}}).clusters
    refit = load_segmentation_settings({"clusters": {"features": _features(), "refit_every_days": 0}}).clusters
    print(f"customers {args.customers:,}  reps {args.reps}  bytecode written: {not sys.dont_write_bytecode}")
    w0, c0, first = timed(lambda: cluster_customers(frame, reuse, DAY), args.reps)
    nxt = DAY + timedelta(days=1)
    w1, c1, again = timed(lambda: cluster_customers(frame, reuse, nxt, first.centroids), args.reps)
    w2, c2, fitted = timed(lambda: cluster_customers(frame, refit, nxt, first.centroids), args.reps)
    assert again.params["refit"] is False and fitted.params["refit"] is True
    same = again.assignments.equals(fitted.assignments)
    print(f"{'first snapshot (fit + assign)':36} wall {w0:7.2f} s  cpu {c0:7.2f} s")
    print(f"{'next day, stored fit reused':36} wall {w1:7.2f} s  cpu {c1:7.2f} s  ({w0 / w1:.1f}x faster)")
    print(f"{'next day, refit_every_days: 0':36} wall {w2:7.2f} s  cpu {c2:7.2f} s")
    print(f"same assignments reused vs re-fitted on unchanged data: {same}")


def _features() -> list[dict[str, Any]]:
    return [
        {"column": "monetary", "fill_null": 0, "labels": ["low spend", "mid spend", "high spend"], "name": "spend"},
        {"column": "frequency", "fill_null": 0, "labels": ["rare", "regular", "frequent"], "name": "orders"},
        {"column": "recency_days", "fill_null": 3650, "labels": ["recent", "lapsing", "lapsed"], "name": "recency"},
        {"column": "sessions_90d", "fill_null": 0, "labels": ["offline", "browsing", "engaged"], "name": "sessions"},
    ]


if __name__ == "__main__":
    main()
