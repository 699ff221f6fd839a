"""Churn probability and CLV: the SQL summary by hand, parameter recovery on simulated data, gating,
CLV discounting against pymc-marketing's own function, calibration buckets and the WARN finding.

Model fits are slow-ish (seconds each, pytensor's compiled code is cached in .pytensor/), so the
simulated data is small and fitted once per module.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.clv_summary import clv_summary
from models.clv import (
    FittedModels,
    fit_models,
    fit_sample,
    predict,
    prediction_columns,
    prediction_segmentations,
    run_predictions,
)
from models.clv_calibration import bucket_calibration, calibration_error, calibration_finding
from models.settings import PredictionSettings, load_segmentation_settings

try:
    from tests.conftest_features_helpers import make_warehouse, order
except ImportError:  # tests/ is not a package: pytest put it on sys.path itself
    from conftest_features_helpers import make_warehouse, order

D = date(2025, 6, 30)


def _settings(**overrides: object) -> PredictionSettings:
    return load_segmentation_settings({"prediction": overrides}).prediction


# ------------------------------------------------------------------------------------- SQL summary
ORDERS = [
    # a: purchase days 01-01 (first, 100), 01-11 (30 + 20 = two orders, one day), 03-01 (40); a refund and a
    # cancelled order change nothing; an order after D is ignored.
    order("A1", "a", "2025-01-01", "100.00"),
    order("A2", "a", "2025-01-11", "30.00"),
    order("A3", "a", "2025-01-11", "20.00"),
    order("A4", "a", "2025-03-01", "40.00"),
    order("A5", "a", "2025-03-02", "15.00", "refunded"),
    order("A6", "a", "2025-04-01", "999.00", "cancelled"),
    order("A7", "a", "2025-07-01", "500.00"),
    # b: one purchase on D itself
    order("B1", "b", "2025-06-30", "25.00"),
    # c: two purchases, the second in the last 30 days
    order("C1", "c", "2025-05-01", "10.00"),
    order("C2", "c", "2025-06-15", "70.00"),
    # n: never completed
    order("N1", "n", "2025-06-01", "10.00", "cancelled"),
]


def test_summary_matches_hand_worked_values(tmp_path: Path) -> None:
    con = make_warehouse(tmp_path / "w.duckdb", orders=ORDERS)
    got = clv_summary(con, D)
    expected = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            # a: 3 purchase days -> 2 repeats; first 01-01, last 03-01 = 59 days; T = 01-01 -> 06-30 = 180
            #    days; repeat spend (50 + 40) / 2 = 45. b: no repeat, T 0. c: 1 repeat 45 days later, T 60.
            "frequency": [2, 0, 1],
            "recency": [59, 0, 45],
            "t_days": [180, 0, 60],
            "monetary_value": [45.0, 0.0, 70.0],
            "holdout_purchases": [0, 0, 0],
        }
    )
    assert_frame_equal(got, expected)


def test_summary_with_a_holdout_observes_up_to_d_minus_h_and_counts_the_rest(tmp_path: Path) -> None:
    con = make_warehouse(tmp_path / "w.duckdb", orders=ORDERS)
    got = clv_summary(con, D, holdout_days=30)  # observed up to 05-31
    expected = pl.DataFrame(
        {
            "customer_id": ["a", "c"],  # b first bought after 05-31
            "frequency": [2, 0],
            "recency": [59, 0],
            "t_days": [150, 30],
            "monetary_value": [45.0, 0.0],
            "holdout_purchases": [0, 1],  # c bought on 06-15
        }
    )
    assert_frame_equal(got, expected)


# ------------------------------------------------------------------------------------ simulation
BG_TRUE = {"r": 0.5, "alpha": 10.0, "a": 0.8, "b": 2.5}
GG_TRUE = {"p": 6.0, "q": 4.0, "v": 15.0}


def simulate(n: int, seed: int = 7) -> pl.DataFrame:
    """BG/NBD purchases (continuous time, days) and Gamma-Gamma spends with the known parameters."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(BG_TRUE["r"], 1 / BG_TRUE["alpha"], n)
    drop = rng.beta(BG_TRUE["a"], BG_TRUE["b"], n)
    t_end = rng.uniform(60, 720, n)
    frequency = np.zeros(n, dtype=np.int64)
    recency = np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > t_end[i]:
                break
            frequency[i] += 1
            recency[i] = t
            if rng.random() < drop[i]:
                break
    nu = rng.gamma(GG_TRUE["q"], 1 / GG_TRUE["v"], n)
    monetary = np.array([rng.gamma(GG_TRUE["p"], 1 / nu[i], f).mean() if f else 0.0 for i, f in enumerate(frequency)])
    return pl.DataFrame(
        {
            "customer_id": [f"s{i:05d}" for i in range(n)],
            "frequency": frequency,
            "recency": recency,
            "t_days": t_end,
            "monetary_value": monetary,
            "holdout_purchases": np.zeros(n, dtype=np.int64),
        }
    )


@pytest.fixture(scope="module")
def simulated() -> tuple[pl.DataFrame, FittedModels]:
    summary = simulate(6000)
    return summary, fit_models(summary, _settings())


# Tolerance: relative error of each parameter. With 6000 customers the MAP (= maximum likelihood with flat
# priors) estimate has a sampling error of a few % for r and alpha, ~10-15 % for the dropout a, b and the
# spend p, q, v (measured over seeds 1-5); 25 % leaves margin without letting a wrong model pass.
TOLERANCE = 0.25


def test_fitted_parameters_recover_the_simulated_ones(simulated: tuple[pl.DataFrame, FittedModels]) -> None:
    _, models = simulated
    assert models.fitted and models.gg is not None
    for truth, got in ((BG_TRUE, models.bg_params), (GG_TRUE, models.gg_params)):
        assert got is not None
        for name, value in truth.items():
            assert got[name] == pytest.approx(value, rel=TOLERANCE), f"{name}: fitted {got[name]}, true {value}"


def test_predictions_are_probabilities_and_ordered_sensibly(simulated: tuple[pl.DataFrame, FittedModels]) -> None:
    summary, models = simulated
    out = predict(summary, models, _settings())
    assert out.columns == ["customer_id", *prediction_columns(_settings())]
    assert out.height == summary.height and out["p_alive"].null_count() == 0
    assert out["p_alive"].min() >= 0 and out["p_alive"].max() <= 1
    assert out["clv_365d"].min() >= 0
    # the same history, seen long ago vs recently: the recent one is more likely alive
    probe = pl.DataFrame(
        {
            "customer_id": ["old", "recent"],
            "frequency": [5, 5],
            "recency": [100.0, 350.0],
            "t_days": [360.0, 360.0],
            "monetary_value": [50.0, 50.0],
        }
    )
    p = predict(probe, models, _settings())["p_alive"].to_list()
    assert p[0] < p[1]
    assert set(out["predicted_churn"].unique().to_list()) <= {"churn", "alive"}
    assert out.filter(pl.col("p_alive") < 0.5)["predicted_churn"].unique().to_list() in ([], ["churn"])


def test_clv_discounting_matches_pymc_marketing(simulated: tuple[pl.DataFrame, FittedModels]) -> None:
    """On whole 30-day periods our CLV equals the library's customer_lifetime_value with a monthly rate."""
    from pymc_marketing.clv.utils import customer_lifetime_value

    from models.clv_closed_form import discounted_purchases

    summary, models = simulated
    data = (
        summary.head(50)
        .select("customer_id", "frequency", "recency", pl.col("t_days").alias("T"), "monetary_value")
        .to_pandas()
    )
    annual = 0.10
    x, t_x, big_t = (data[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    assert models.bg_params is not None
    ours = discounted_purchases("bg_nbd", models.bg_params, x, t_x, big_t, 360, annual)
    lib = customer_lifetime_value(
        models.bg,
        data.assign(future_spend=1.0),
        future_t=12,
        discount_rate=(1 + annual) ** (30 / 365) - 1,
        time_unit="D",
    )
    np.testing.assert_allclose(ours, np.asarray(lib.values).reshape(-1), rtol=1e-9)


def test_fit_sample_is_bounded_seeded_and_order_free() -> None:
    summary = simulate(300, seed=3)
    a = fit_sample(summary, 100, 42)
    b = fit_sample(summary.reverse(), 100, 42)
    assert a.height == 100 and a["customer_id"].is_sorted()
    assert_frame_equal(a, b)
    assert not a.equals(fit_sample(summary, 100, 43))
    assert fit_sample(summary, 1000, 42).height == 300


# --------------------------------------------------------------------------------------- gating
def test_too_few_repeat_buyers_fit_nothing_and_say_why() -> None:
    summary = simulate(300, seed=3)
    repeat = int((summary["frequency"] > 0).sum())
    settings = _settings(min_repeat_buyers=repeat + 1, calibration={"enabled": False})
    result = run_predictions(summary, None, settings, D)
    assert result.predictions.height == 300
    assert result.predictions.drop("customer_id").null_count().row(0) == (300, 300, 300, 300)
    assert result.params["model"]["fitted"] is False
    assert result.warnings == [
        f"prediction: only {repeat} repeat buyers to fit on (< segmentation.prediction.min_repeat_buyers = "
        f"{repeat + 1}); predictions left null"
    ]


# ----------------------------------------------------------------------------------- calibration
def test_calibration_buckets_hand_computed() -> None:
    frame = pl.DataFrame(
        {
            "frequency": [0, 0, 1, 3, 7],
            "holdout_purchases": [0, 1, 1, 2, 4],
            "predicted": [0.2, 0.2, 0.5, 2.5, 3.0],
        }
    )
    table = bucket_calibration(frame, _settings(calibration={"top_bucket": 3}), D)
    assert table["frequency_bucket"].to_list() == ["0", "1", "3+", "all"]
    assert table["customers"].to_list() == [2, 1, 2, 5]
    assert table["predicted_total"].to_list() == pytest.approx([0.4, 0.5, 5.5, 6.4])
    assert table["actual_total"].to_list() == [1.0, 1.0, 6.0, 8.0]
    # bucket errors 0.6, 0.5, 0.5; "all" sums them: 1.6 / 8 = 0.2
    assert table["abs_error"].to_list() == pytest.approx([0.6, 0.5, 0.5, 1.6])
    assert table["predicted_mean"].to_list() == pytest.approx([0.2, 0.5, 2.75, 1.28])
    assert calibration_error(table) == pytest.approx(0.2)
    assert calibration_finding(table, 0.25) is None
    finding = calibration_finding(table, 0.1)
    assert finding is not None and finding.startswith("purchase model holdout error 20.0% > 10%")
    assert "worst bucket 0 repeat purchases" in finding


def test_calibration_table_of_a_fitted_model_has_every_bucket(simulated: tuple[pl.DataFrame, FittedModels]) -> None:
    """Buckets 0..5, 6+ and all, each with a positive expected total from the real model."""
    summary, models = simulated
    table = bucket_calibration(
        summary.with_columns(
            predicted=predict(summary, models, _settings())["expected_purchases_90d"],
            holdout_purchases=pl.lit(0),
        ),
        _settings(),
        D,
    )
    assert table.height == 8 and table["predicted_total"].min() > 0  # buckets 0..5, 6+, all


def test_prediction_registry_entry() -> None:
    (entry,) = prediction_segmentations(_settings())
    assert (entry.name, entry.column, entry.kind) == ("predicted_churn", "predicted_churn", "prediction")
    assert entry.keys == ("churn", "alive") and entry.display("churn", "zh") == "预测流失"
    assert prediction_segmentations(_settings(enabled=False)) == ()
    assert prediction_segmentations(load_segmentation_settings())[0].name == "predicted_churn"


def test_modified_bg_nbd_lets_one_time_buyers_drop_out(simulated: tuple[pl.DataFrame, FittedModels]) -> None:
    """Under BG/NBD a one-time buyer is always alive; the modified model is the configurable remedy."""
    summary, bg = simulated
    small = summary.head(2000)
    one_timers = pl.col("frequency") == 0
    assert predict(small, bg, _settings()).filter(small.select(one_timers).to_series())["p_alive"].min() == 1.0
    settings = _settings(purchase_model="modified_bg_nbd")
    mbg = fit_models(small, settings)
    assert mbg.fitted and mbg.info["purchase_model"] == "modified_bg_nbd"
    p = predict(small, mbg, settings).filter(small.select(one_timers).to_series())["p_alive"]
    assert p.max() < 1.0 and p.min() > 0.0


# ------------------------------------------------------------------------------- Dagster assets
def _orders_from_summary(summary: pl.DataFrame, as_of: date) -> list[dict]:
    """Purchase days realising each simulated (frequency, recency, T): first on D - T, repeats spread
    evenly up to first + recency (whole days), spend = the simulated mean spend."""
    from datetime import timedelta

    rows = []
    for r in summary.iter_rows(named=True):
        t, rec = int(r["t_days"]), int(r["recency"])
        freq = min(int(r["frequency"]), rec)
        first = as_of - timedelta(days=t)
        days = [first] + [first + timedelta(days=round(rec * (k + 1) / freq)) for k in range(freq)] if freq else [first]
        for k, day in enumerate(days):
            amount = f"{max(r['monetary_value'], 1.0):.2f}" if k else "10.00"
            rows.append(order(f"{r['customer_id']}-{k}", r["customer_id"], day.isoformat(), amount))
    return rows


def test_prediction_assets_materialize_into_customer_segments(tmp_path: Path) -> None:
    """Real in-process Dagster run of churn_predictions and churn_drivers over a real DuckDB file."""
    import dagster as dg
    import yaml

    from assets.predictions import prediction_assets
    from assets.resources import SegmentsResource

    summary = simulate(400, seed=5).with_columns(
        pl.col("recency").floor().cast(pl.Int64), pl.col("t_days").floor().cast(pl.Int64)
    )
    con = make_warehouse(tmp_path / "warehouse.duckdb", orders=_orders_from_summary(summary, D))
    segments = pl.DataFrame(
        {
            "snapshot_date": [D] * 401,
            "customer_id": [*summary["customer_id"], "prospect"],
            "is_buyer": [True] * 400 + [False],
            "lifecycle_stage": ["active", "churned", "at_risk", "new"] * 100 + ["prospect"],
            "nps_class": ["detractor", None] * 200 + [None],
            "complaints_90d": [0, 1] * 200 + [0],
            "avg_rating": [4.5, 2.0] * 200 + [None],
            "source_channel": "ads",
            "region": "east",
            "top_category": "books",
            "cluster_id": [0, 1] * 200 + [None],
            "cluster_name": ["recent", "lapsed"] * 200 + [None],
            **{name: pl.Series([None] * 401, dtype=t) for name, t in prediction_columns(_settings()).items()},
        }
    )
    con.register("_seg", segments.to_arrow())
    con.execute("create table customer_segments as select * from _seg")
    con.close()
    cfg = tmp_path / "segments.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "landing_dir": "landing",
                "warehouse": "warehouse.duckdb",
                "published_dir": "published",
                "sources": {"orders": {"glob": "orders/*"}},
                "segmentation": {"prediction": {"min_repeat_buyers": 20, "calibration": {"holdout_days": 60}}},
            }
        ),
        encoding="utf-8",
    )
    days = dg.DailyPartitionsDefinition(start_date="2025-06-01")
    result = dg.materialize(
        list(dg.map_asset_specs(lambda spec: spec.replace_attributes(partitions_def=days), prediction_assets)),
        partition_key=D.isoformat(),
        resources={"segments": SegmentsResource(config_path=str(cfg))},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    with duckdb_connect(tmp_path / "warehouse.duckdb") as check:
        seg = check.sql("select * from customer_segments order by customer_id").pl()
        calibration = check.sql("select * from model_calibration").pl()
        drivers = check.sql("select * from churn_drivers").pl()
    buyers = seg.filter(pl.col("is_buyer"))
    assert buyers["p_alive"].null_count() == 0 and buyers["clv_365d"].null_count() == 0
    assert seg.filter(~pl.col("is_buyer"))["p_alive"].null_count() == 1
    assert calibration["frequency_bucket"].to_list()[-1] == "all" and calibration["holdout_days"][0] == 60
    assert drivers.filter(pl.col("driver") == "all")["churned"].to_list() == [100]
    assert drivers.filter(pl.col("driver") == "all")["predicted_churn_rate"].null_count() == 0
    metadata = result.asset_materializations_for_node("churn_predictions")[0].metadata
    params = metadata["parameters"].data
    assert params["model"]["fitted"] and params["model"]["random_state"] == 42
    assert params["refit"] is True and params["fitted_date"] == D.isoformat()
    assert metadata["model_fit"].value == "re-fitted: no stored model parameters"


def duckdb_connect(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection (usable as a context manager)."""
    return duckdb.connect(str(path), read_only=True)


def test_calibration_check_reads_the_snapshot_table_and_warns_above_the_bound(tmp_path) -> None:
    import duckdb

    from data_contracts.table_checks import calibration_findings
    from segments.warehouse import replace_snapshot

    frame = pl.DataFrame(
        {"frequency": [0, 0, 1, 3, 7], "holdout_purchases": [0, 1, 1, 2, 4], "predicted": [0.2, 0.2, 0.5, 2.5, 3.0]}
    )
    table = bucket_calibration(frame, _settings(calibration={"top_bucket": 3}), D)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert calibration_findings(con, D, 0.1).success  # not fitted: nothing to warn about
    replace_snapshot(con, "model_calibration", table, D)
    assert calibration_findings(con, D, 0.25).success
    found = calibration_findings(con, D, 0.1)
    assert (found.success, found.severity) == (False, "warn")
    assert found.examples[0].startswith("purchase model holdout error 20.0% > 10%")


def test_attach_predictions_is_one_transaction_with_customer_segments(tmp_path: Path) -> None:
    """The predictions table and the copy into customer_segments change together, or neither does."""
    import duckdb

    from features.predictions import attach_predictions
    from segments.warehouse import replace_snapshot

    d, kept = date(2026, 11, 21), date(2026, 1, 1)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    # planted: customer_segments already has a p_alive column of the wrong type, so the copy fails
    segs = pl.DataFrame({"snapshot_date": [d, d], "customer_id": ["a", "b"], "p_alive": [kept, None]})
    replace_snapshot(con, "customer_segments", segs, d)
    with pytest.raises(duckdb.Error):
        attach_predictions(con, d, pl.DataFrame({"customer_id": ["a"], "p_alive": [0.25]}), {"p_alive": pl.Float64()})
    assert con.execute("select count(*) from churn_predictions").fetchall() == [(0,)]
    assert con.execute("select customer_id, p_alive from customer_segments order by 1").fetchall() == [
        ("a", kept),
        ("b", None),
    ]
