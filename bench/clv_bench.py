"""Benchmark: churn prediction (BG/NBD + Gamma-Gamma by MAP, pymc-marketing) — fit, predict, calibrate.

Two modes, each printing seconds per stage and the peak RSS of this process:

- ``--customers N``: a simulated per-buyer summary with known BG/NBD and Gamma-Gamma parameters
  (vectorised simulation; N = 1,000,000 is reference scale "L"), fitted on the configured bounded
  sample (default 100,000) and predicted for all N. The fitted parameters are printed next to the true ones.
- ``--warehouse FILE --as-of D``: the SQL summary of a real warehouse (e.g. after ``segments run`` on
  the sample data), then fit, predict and the holdout calibration table, as the pipeline does.

    .venv/bin/python bench/clv_bench.py --customers 1000000
    .venv/bin/python bench/clv_bench.py --warehouse data/warehouse.duckdb --as-of 2026-11-21

pytensor compiles once into .pytensor/ (about 15-60 s on a cold cache): run twice for warm numbers.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import date

import numpy as np
import polars as pl

BG_TRUE = {"r": 0.5, "alpha": 10.0, "a": 0.8, "b": 2.5}
GG_TRUE = {"p": 6.0, "q": 4.0, "v": 15.0}


def simulate(n: int, seed: int = 1) -> pl.DataFrame:
    """BG/NBD purchase histories and Gamma-Gamma mean spends, vectorised over customers (days)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(BG_TRUE["r"], 1 / BG_TRUE["alpha"], n)
    drop = rng.beta(BG_TRUE["a"], BG_TRUE["b"], n)
    t_end = rng.integers(30, 731, n).astype(np.float64)
    frequency = np.zeros(n, dtype=np.int64)
    recency = np.zeros(n)
    clock = np.zeros(n)
    active = np.arange(n)
    while active.size:
        clock[active] += rng.exponential(1 / lam[active])
        bought = clock[active] <= t_end[active]
        active = active[bought]
        frequency[active] += 1
        recency[active] = clock[active]
        active = active[rng.random(active.size) >= drop[active]]
    nu = rng.gamma(GG_TRUE["q"], 1 / GG_TRUE["v"], n)
    # the mean of f Gamma(p, nu) draws is Gamma(f p, f nu)
    f = np.maximum(frequency, 1)
    monetary = np.where(frequency > 0, rng.gamma(f * GG_TRUE["p"], 1 / (f * nu)), 0.0)
    return pl.DataFrame(
        {
            "customer_id": [f"C{i:08d}" for i in range(n)],
            "frequency": frequency,
            "recency": np.floor(recency).astype(np.int64),
            "t_days": t_end.astype(np.int64),
            "monetary_value": monetary,
            "holdout_purchases": np.zeros(n, dtype=np.int64),
        }
    )


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=0)
    parser.add_argument("--warehouse", default="")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 11, 21))
    parser.add_argument("--purchase-model", default="bg_nbd", choices=["bg_nbd", "modified_bg_nbd"])
    parser.add_argument("--fit-sample-size", type=int, default=100_000)
    args = parser.parse_args()

    from models.clv import fit_models, predict
    from models.clv_calibration import bucket_calibration
    from models.settings import load_segmentation_settings

    settings = load_segmentation_settings(
        {"prediction": {"purchase_model": args.purchase_model, "fit_sample_size": args.fit_sample_size}}
    ).prediction
    stages: dict[str, tuple[float, float]] = {}
    clock: list[float] = []

    def start() -> None:
        clock[:] = [time.perf_counter(), time.process_time()]

    def stop(name: str) -> None:
        stages[name] = (time.perf_counter() - clock[0], time.process_time() - clock[1])

    start()
    import models.clv as clv

    clv._library(settings.purchase_model)  # import pymc-marketing up front so it is timed apart
    stop("import pymc-marketing")

    holdout = None
    if args.warehouse:
        import duckdb

        from features.clv_summary import clv_summary

        con = duckdb.connect(args.warehouse, read_only=True)
        start()
        summary = clv_summary(con, args.as_of)
        holdout = clv_summary(con, args.as_of, settings.calibration.holdout_days)
        stop("SQL summaries (now + holdout)")
    else:
        start()
        summary = simulate(args.customers)
        stop("simulate summary")

    start()
    models = fit_models(summary, settings)
    stop(f"fit on {models.info.get('fit_sample')} buyers")
    start()
    predictions = predict(summary, models, settings)
    stop(f"predict {summary.height} buyers (p_alive, 90d purchases, 365d CLV)")
    if holdout is not None:
        start()
        cal_models = fit_models(holdout, settings)
        ordered = holdout.sort("customer_id")
        expected = clv._expected_purchases(cal_models, ordered, settings.calibration.holdout_days)
        table = bucket_calibration(ordered.with_columns(predicted=pl.Series(expected)), settings, args.as_of)
        stop("calibration (refit on D-90 + predict)")
        with pl.Config(tbl_rows=20, tbl_cols=20, tbl_width_chars=200, float_precision=3):
            print(table.drop("snapshot_date", "holdout_days", "bucket_order"))
    print(f"{'stage':<60} {'wall s':>8} {'CPU s':>8}")
    for name, (wall, cpu) in stages.items():
        print(f"{name:<60} {wall:8.2f} {cpu:8.2f}")
    print(f"{'peak RSS':<60} {_rss_gb():8.2f} GB")
    print("fitted:", json.dumps({"bg_nbd": models.bg_params, "gamma_gamma": models.gg_params, "reason": models.reason}))
    if not args.warehouse:
        print("true:  ", json.dumps({"bg_nbd": BG_TRUE, "gamma_gamma": GG_TRUE}))
    print(predictions.select("p_alive", "expected_purchases_90d", "clv_365d").describe())


if __name__ == "__main__":
    main()
