"""Churn models between re-fits: closed-form scoring equals pymc-marketing's own predictions on the same
parameters, the stored parameters are reused or re-fitted for the documented reasons, and a nightly
prediction stage that reuses them never imports pymc, pymc-marketing, pytensor or arviz."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from models import clv_closed_form as closed
from models.clv import FittedModels, fit_models, run_predictions
from models.clv_reuse import FIT_VERSION, PARAMETERS_SCHEMA, fit_key, parameter_rows, stored_parameters
from models.settings import PredictionSettings, load_segmentation_settings

try:
    from tests.conftest import run_script_json
    from tests.conftest_features_helpers import make_warehouse
    from tests.test_clv import _orders_from_summary, simulate
except ImportError:  # tests/ is not a package: pytest put it on sys.path itself
    from conftest import run_script_json
    from conftest_features_helpers import make_warehouse
    from test_clv import _orders_from_summary, simulate

D = date(2025, 6, 30)
HEAVY = ("pymc", "pymc_marketing", "pymc_extras", "pytensor", "arviz")


def _settings(**overrides: object) -> PredictionSettings:
    return load_segmentation_settings({"prediction": overrides}).prediction


# --------------------------------------------------------------------- closed form vs the library
# Edge cases on top of simulated buyers: one-time buyers (x = 0) young and old, a huge age T, a large
# frequency, recency = T, recency 0 with repeats impossible, and a fractional history.
PROBE = {
    "frequency": [0.0, 0.0, 0.0, 1.0, 5.0, 60.0, 150.0, 3.0, 12.0],
    "recency": [0.0, 0.0, 0.0, 1.0, 100.0, 700.0, 720.0, 400.0, 35.5],
    "t_days": [1.0, 700.0, 100_000.0, 1.0, 100_000.0, 730.0, 720.0, 400.0, 90.25],
    "monetary_value": [0.0, 0.0, 0.0, 12.5, 80.0, 45.0, 20.0, 1.0, 333.3],
}


@pytest.fixture(scope="module", params=["bg_nbd", "modified_bg_nbd"])
def fitted(request: pytest.FixtureRequest) -> tuple[pl.DataFrame, FittedModels]:
    sim = simulate(1500, seed=11)
    models = fit_models(sim, _settings(purchase_model=request.param))
    assert models.fitted and models.gg is not None and models.purchase_model == request.param
    probe = pl.DataFrame(PROBE).with_columns(customer_id=pl.format("probe-{}", pl.int_range(pl.len())))
    columns = ["customer_id", *PROBE]
    frame = pl.concat([sim.head(300).select(columns), probe.select(columns)], how="vertical_relaxed")
    return frame, models


def _library_inputs(frame: pl.DataFrame):
    return frame.select(
        "customer_id", "frequency", "recency", pl.col("t_days").alias("T"), "monetary_value"
    ).to_pandas()


def _flat(array) -> np.ndarray:
    return np.asarray(array.values, dtype=np.float64).reshape(-1)


def test_closed_form_equals_pymc_marketing_predictions(fitted: tuple[pl.DataFrame, FittedModels]) -> None:
    """Same parameters, same buyers: p_alive, expected purchases, expected spend and CLV within 1e-9."""
    from pymc_marketing.clv.utils import customer_lifetime_value

    frame, models = fitted
    assert models.bg_params is not None and models.gg_params is not None
    data = _library_inputs(frame)
    x, t_x, big_t, m = (frame[c].to_numpy().astype(float) for c in ("frequency", "recency", "t_days", "monetary_value"))
    kind = models.purchase_model
    pairs = {
        "p_alive": (
            closed.probability_alive(kind, models.bg_params, x, t_x, big_t),
            _flat(models.bg.expected_probability_alive(data=data)),
        ),
        "expected_purchases_90d": (
            closed.expected_purchases(kind, models.bg_params, x, t_x, big_t, 90),
            _flat(models.bg.expected_purchases(data=data, future_t=90)),
        ),
        "expected_spend": (
            closed.expected_spend(models.gg_params, x, m),
            _flat(models.gg.expected_customer_spend(data=data.copy())),
        ),
        "clv_360d": (
            closed.expected_spend(models.gg_params, x, m)
            * closed.discounted_purchases(kind, models.bg_params, x, t_x, big_t, 360, 0.10),
            _flat(
                customer_lifetime_value(
                    models.bg,
                    data.assign(future_spend=_flat(models.gg.expected_customer_spend(data=data.copy()))),
                    future_t=12,
                    discount_rate=1.10 ** (30 / 365) - 1,
                    time_unit="D",
                )
            ),
        ),
    }
    for name, (ours, library) in pairs.items():
        assert np.isfinite(ours).all() and np.isfinite(library).all(), name
        np.testing.assert_allclose(ours, library, rtol=1e-9, atol=0, err_msg=name)
    one_time = x == 0
    if kind == "bg_nbd":  # a one-time buyer of BG/NBD is alive for sure, however old
        assert (pairs["p_alive"][0][one_time] == 1.0).all()
    else:
        assert (pairs["p_alive"][0][one_time] < 1.0).all()


def test_unknown_purchase_model_is_refused_with_the_setting_to_change() -> None:
    params = {"r": 1, "alpha": 1, "a": 1, "b": 1}
    with pytest.raises(ValueError, match=r"segmentation\.prediction\.purchase_model"):
        closed.probability_alive("pareto_nbd", params, np.zeros(1), np.zeros(1), np.ones(1))


# ------------------------------------------------------------------------------ reuse decisions
def _stored(fitted_on: date, snapshot: date, settings: PredictionSettings, **row: object) -> pl.DataFrame:
    predict = {"purchase_model": "bg_nbd", "fitted": True, "r": 0.5, "alpha": 10.0, "a": 0.8, "b": 2.5} | row
    fits = {"predict": predict, "calibration": predict}
    return parameter_rows(fits, settings, snapshot, fitted_on)


F = date(2026, 11, 21)


@pytest.mark.parametrize(
    ("case", "reused", "reason"),
    [
        ("day_six", True, f"reused the parameters fitted on {F}"),
        ("scoring_setting_changed", True, f"reused the parameters fitted on {F}"),
        ("cadence", False, "7 days or more ago (refit_every_days)"),
        ("every_snapshot", False, "segmentation.prediction.refit_every_days = 0"),
        ("none_stored", False, "no stored model parameters"),
        ("fit_setting_changed", False, "the prediction settings changed since the last fit"),
        ("holdout_changed", False, "the prediction settings changed since the last fit"),
        ("backfill", False, "is before the fit on 2026-11-21 (backfill)"),
        ("old_rows", False, "written by an older version"),
        ("other_version", False, "written by an older version"),
        ("not_fitted", False, "has no purchase model (only 3 repeat buyers"),
    ],
)
def test_stored_parameters_are_reused_or_refitted_for_the_documented_reasons(
    case: str, reused: bool, reason: str
) -> None:
    settings = _settings()
    stored = _stored(F, F + timedelta(days=5), settings)
    now, when = settings, F + timedelta(days=6)
    if case == "scoring_setting_changed":  # horizons, discounting and the churn threshold only change scoring
        now = _settings(purchase_horizon_days=30, clv_horizon_days=90, annual_discount_rate=0.2, churn_threshold=0.3)
    elif case == "cadence":
        when = F + timedelta(days=7)
    elif case == "every_snapshot":
        now = _settings(refit_every_days=0)
    elif case == "none_stored":
        stored = stored.head(0)
    elif case == "fit_setting_changed":
        now = _settings(random_state=7)
    elif case == "holdout_changed":
        now = _settings(calibration={"holdout_days": 60})
    elif case == "backfill":
        when = F - timedelta(days=1)
    elif case == "old_rows":
        stored = stored.drop("fit_version")
    elif case == "other_version":
        stored = stored.with_columns(fit_version=pl.lit(FIT_VERSION + 1, pl.Int64))
    elif case == "not_fitted":
        stored = _stored(F, F, settings, fitted=False, reason="only 3 repeat buyers to fit on")
    rows, why = stored_parameters(stored, now, when)
    assert (rows is not None, why) == (reused, why) and reason in why
    if reused:
        assert rows is not None and set(rows) == {"predict", "calibration"}
        assert rows["predict"]["fitted_date"] == F


def test_fit_key_ignores_scoring_and_reuse_settings_only() -> None:
    base = fit_key(_settings())
    assert fit_key(_settings(refit_every_days=1, churn_threshold=0.2, calibration={"max_error": 0.9})) == base
    assert fit_key(_settings(purchase_model="modified_bg_nbd")) != base
    assert fit_key(_settings(fit_sample_size=500)) != base
    assert fit_key(_settings(min_repeat_buyers=50)) != base


def test_a_reused_snapshot_differs_from_the_refitted_one_only_by_the_refit_reason() -> None:
    """Same data, same date: scoring from the stored rows gives the fitted run's tables exactly."""
    summary = simulate(800, seed=21)
    holdout = simulate(700, seed=22).with_columns(pl.col("frequency").alias("holdout_purchases"))
    settings = _settings()
    first = run_predictions(summary, holdout, settings, D)
    assert first.params["refit"] is True and first.params["refit_reason"] == "no stored model parameters"
    assert first.parameters["role"].to_list() == ["predict", "calibration"]
    assert first.parameters.schema == pl.Schema(PARAMETERS_SCHEMA)
    assert first.parameters["fit_sample"].to_list() == [800, 700]
    again = run_predictions(summary, holdout, settings, D, first.parameters)
    assert again.params["refit"] is False and again.params["refit_reason"] == f"reused the parameters fitted on {D}"
    assert_frame_equal(again.predictions, first.predictions)
    assert_frame_equal(again.calibration, first.calibration)
    assert_frame_equal(again.parameters, first.parameters)
    assert again.warnings == first.warnings
    differ = {k for k in first.params if first.params[k] != again.params.get(k)}
    assert differ == {"refit", "refit_reason"}, {k: (first.params[k], again.params.get(k)) for k in differ}


# -------------------------------------------------------------------- the stage, no pymc imported
def _warehouse(tmp_path: Path) -> Path:
    """A real DuckDB file: simulated orders up to D and a customer_segments snapshot for D - 1 and D."""
    summary = simulate(400, seed=5).with_columns(
        pl.col("recency").floor().cast(pl.Int64), pl.col("t_days").floor().cast(pl.Int64)
    )
    path = tmp_path / "warehouse.duckdb"
    con = make_warehouse(path, orders=_orders_from_summary(summary, D - timedelta(days=1)))
    ids = summary["customer_id"].to_list()
    segments = pl.DataFrame(
        {"snapshot_date": [D - timedelta(days=1)] * 400 + [D] * 400, "customer_id": ids + ids, "is_buyer": True}
    )
    con.register("_seg", segments.to_arrow())
    con.execute("create table customer_segments as select * from _seg")
    con.close()
    return path


_NIGHTLY = """
import json, sys
from datetime import date
import duckdb
from models.settings import load_segmentation_settings
from models.stages import prediction_stage

settings = load_segmentation_settings({"prediction": {"min_repeat_buyers": 20, "calibration": {"holdout_days": 60}}})
con = duckdb.connect(sys.argv[1])
stage = prediction_stage(con, date.fromisoformat(sys.argv[2]), settings.prediction)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in %r)
print(json.dumps({"params": stage.result.params, "heavy": heavy, "rows": stage.rows}, default=str))
"""


def test_nightly_stage_reuses_stored_parameters_without_importing_pymc(tmp_path: Path) -> None:
    """Day one fits (in this process); day two, in a fresh process, scores from the stored rows and never
    imports pymc / pymc-marketing / pytensor / arviz."""
    import duckdb

    from models.stages import prediction_stage

    path = _warehouse(tmp_path)
    settings = load_segmentation_settings(
        {"prediction": {"min_repeat_buyers": 20, "calibration": {"holdout_days": 60}}}
    ).prediction
    con = duckdb.connect(str(path))
    day_one = prediction_stage(con, D - timedelta(days=1), settings)
    con.close()
    assert day_one.result.params["refit"] is True and day_one.rows == 400
    out = run_script_json(_NIGHTLY % (HEAVY,), str(path), D.isoformat())
    assert out["heavy"] == [] and out["rows"] == 400
    assert out["params"]["refit"] is False
    assert out["params"]["refit_reason"] == f"reused the parameters fitted on {D - timedelta(days=1)}"
    assert out["params"]["model"]["bg_nbd"] == day_one.result.params["model"]["bg_nbd"]
    with duckdb.connect(str(path), read_only=True) as check:
        stored = check.sql("select * from prediction_parameters order by snapshot_date, role").pl()
        predicted = check.sql("select snapshot_date, count(p_alive) from customer_segments group by 1 order by 1")
        counts = predicted.fetchall()
        calibration = check.sql("select distinct snapshot_date from model_calibration order by 1").fetchall()
    assert stored["role"].to_list() == ["calibration", "predict"] * 2
    assert stored["fitted_date"].unique().to_list() == [D - timedelta(days=1)]
    same = [c for c in PARAMETERS_SCHEMA if c != "snapshot_date"]
    assert_frame_equal(stored.filter(pl.col("snapshot_date") == D).select(same), stored.head(2).select(same))
    assert counts == [(D - timedelta(days=1), 400), (D, 400)]
    assert calibration == [(D - timedelta(days=1),), (D,)]  # measured every run, from the stored holdout model
