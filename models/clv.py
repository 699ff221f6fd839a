"""Churn probability and customer value per buyer: BG/NBD + Gamma-Gamma from pymc-marketing, fitted by MAP.

Why these models and this library: PRODUCT.md §3 asks for a BTYD purchase model and the Gamma-Gamma
spend model of a maintained library. pymc-marketing (successor of ``lifetimes``) implements both; we
never hand-roll a likelihood. Measured (docs/notes, ``bench/clv_bench.py``): with flat priors the MAP
fit matches the lifetimes maximum-likelihood estimate to 7e-5, and fits 1M customers in seconds;
MCMC is never used (4 × 1000 draws took 231 s and 6.8 GB for 20k customers).

Inputs are the per-buyer summary computed in SQL (``features/clv_summary.py``): ``frequency`` (repeat
purchase days), ``recency`` (age at last purchase, days), ``t_days`` (age at the end of observation)
and ``monetary_value`` (mean spend of repeat purchase days). Pure functions of that frame and the
settings: nothing reads the clock or the disk (pytensor's compile cache aside).

- Purchase model: BG/NBD (default, ``purchase_model: bg_nbd``) or the modified BG/NBD
  (``modified_bg_nbd``). BG/NBD lets a customer drop out only right after a repeat purchase, so every
  one-time buyer has p_alive = 1 however long ago they bought; the modified model lets them drop out
  after the first purchase too (on the sample data: one-time buyers' mean p_alive 0.46 instead of 1).
- Fit: the purchase model on a seeded random sample of at most ``fit_sample_size`` buyers, Gamma-Gamma on the
  repeat buyers of that sample with spend > 0 (one zero makes its MAP fail). Flat (HalfFlat) priors.
- Gating: fewer than ``min_repeat_buyers`` repeat buyers, a failed fit or non-finite parameters: no
  model, every prediction null, the reason returned (and shown by the run).
- Predict for every buyer: ``p_alive``, ``expected_purchases_<H>d`` (H = ``purchase_horizon_days``),
  ``clv_<H>d`` (H = ``clv_horizon_days``): expected spend × expected purchases per 30-day period,
  discounted per period by ``(1 + annual_discount_rate)^(30/365) - 1`` — pymc-marketing's
  ``customer_lifetime_value`` scheme, with the last period cut so the horizon is exactly H days —
  and ``predicted_churn`` = ``churn`` when p_alive < ``churn_threshold``, else ``alive``.
- Scoring is closed-form numpy/scipy from the fitted parameters (models/clv_closed_form.py), the same
  formulas pymc-marketing evaluates: the library is only imported to fit.
- Reuse: the parameters are stored per snapshot and reused between re-fits (``prediction.refit_every_days``,
  models/clv_reuse.py), so a nightly run between re-fits never imports pymc-marketing.
- Calibration: the same fit on purchases up to D - holdout, predicted purchases in the holdout
  compared with the actual ones per frequency bucket (``calibration_table``); ``calibration_finding``
  returns the WARN message when the bucket-weighted relative error exceeds ``max_error``. Between re-fits
  the stored holdout model scores the current holdout (measured every run, re-fitted with the model).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from models import clv_closed_form as closed
from models.clv_calibration import (
    CALIBRATION_SCHEMA,
    bucket_calibration,
    calibration_error,
)
from models.clv_reuse import BG_PARAMS, FIT_INFO_COLUMNS, GG_PARAMS, parameter_rows, stored_parameters
from models.registry import Label, Segmentation
from models.settings import PredictionSettings, SegmentationSettings

CHURN_LABELS: tuple[Label, ...] = (
    Label("churn", "Predicted to churn", "预测流失"),
    Label("alive", "Predicted to stay", "预测留存"),
)
ILL_DETERMINED = 1e4  # a + b above this: the Beta dropout distribution has collapsed to one value
_COMPILE_DIR_ENV = "SEGMENTS_PYTENSOR_DIR"


def prediction_columns(settings: PredictionSettings) -> dict[str, pl.DataType]:
    """The columns predictions add to ``customer_segments``, named by the configured horizons."""
    return {
        "p_alive": pl.Float64(),
        f"expected_purchases_{settings.purchase_horizon_days}d": pl.Float64(),
        f"clv_{settings.clv_horizon_days}d": pl.Float64(),
        "predicted_churn": pl.String(),
    }


def prediction_segmentations(settings: PredictionSettings | SegmentationSettings) -> tuple[Segmentation, ...]:
    """Registry entries of the prediction (``predicted_churn``), for ``Registry.extended``."""
    if isinstance(settings, SegmentationSettings):
        settings = settings.prediction
    if not settings.enabled:
        return ()
    return (
        Segmentation(
            "predicted_churn",
            "predicted_churn",
            "Predicted churn",
            "流失预测",
            CHURN_LABELS,
            migrations=True,
            kind="prediction",
        ),
    )


# --------------------------------------------------------------------------------------- the library
def _compile_dir() -> Path | None:
    """Where pytensor caches compiled C code: ``$SEGMENTS_PYTENSOR_DIR`` or the project's ``.pytensor/``."""
    if os.environ.get(_COMPILE_DIR_ENV):
        return Path(os.environ[_COMPILE_DIR_ENV])
    root = Path(__file__).resolve().parents[1]
    return root / ".pytensor" if os.access(root, os.W_OK) else None


def _library(purchase_model: str = "bg_nbd") -> tuple[Any, Any, Any]:
    """(purchase model class, GammaGammaModel, Prior), importing pymc-marketing on first use (slow)."""
    if "pytensor" not in sys.modules and "base_compiledir" not in os.environ.get("PYTENSOR_FLAGS", ""):
        target = _compile_dir()
        if target is not None:
            flags = os.environ.get("PYTENSOR_FLAGS", "")
            os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, f"base_compiledir={target}") if f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from pymc_extras.prior import Prior
        from pymc_marketing.clv import BetaGeoModel, GammaGammaModel, ModifiedBetaGeoModel
    for name in ("pymc", "pymc.stats.convergence", "pytensor"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return (ModifiedBetaGeoModel if purchase_model == "modified_bg_nbd" else BetaGeoModel), GammaGammaModel, Prior


def _flat(prior: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: prior("HalfFlat") for name in names}


def _values(array: Any) -> np.ndarray:
    """A MAP prediction (chain, draw, customer_id) as a flat float array."""
    return np.asarray(array.values, dtype=np.float64).reshape(-1)


def _pandas(summary: pl.DataFrame) -> Any:
    """The model's input frame: customer_id, frequency, recency, T, monetary_value as floats."""
    return summary.select(
        pl.col("customer_id"),
        pl.col("frequency").cast(pl.Float64),
        pl.col("recency").cast(pl.Float64),
        pl.col("t_days").cast(pl.Float64).alias("T"),
        pl.col("monetary_value").cast(pl.Float64),
    ).to_pandas()


@contextlib.contextmanager
def _quiet() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ----------------------------------------------------------------------------------------------- fit
@dataclass(frozen=True)
class FittedModels:
    """The fitted models (or why not), their parameters and how they were fitted.

    ``bg`` / ``gg`` hold pymc-marketing's model objects right after a fit (None when built from stored
    parameters); scoring uses only the parameters.
    """

    reason: str | None  # None when the purchase model is fitted
    bg_params: dict[str, float] | None = None
    gg_params: dict[str, float] | None = None
    gg_reason: str | None = None  # why CLV is null while the purchase model is fitted
    info: dict[str, Any] = field(default_factory=dict)
    bg: Any = field(default=None, repr=False)
    gg: Any = field(default=None, repr=False)
    purchase_model: str = "bg_nbd"

    @property
    def fitted(self) -> bool:
        """Whether the purchase model (p_alive, expected purchases) is usable."""
        return self.reason is None

    def stored(self) -> dict[str, Any]:
        """The fields of a ``prediction_parameters`` row (models/clv_reuse.py) describing this fit."""
        return {
            "purchase_model": self.purchase_model,
            "fitted": self.fitted,
            "reason": self.reason,
            **(self.bg_params or {}),
            **(self.gg_params or {}),
            "gamma_gamma_reason": self.gg_reason,
            **{k: self.info.get(k) for k in FIT_INFO_COLUMNS},
        }

    @classmethod
    def from_stored(cls, row: dict[str, Any]) -> FittedModels:
        """The models of a stored ``prediction_parameters`` row, ready to score (no library objects)."""
        bg = {n: float(row[n]) for n in BG_PARAMS} if row["fitted"] else None
        gg = {n: float(row[n]) for n in GG_PARAMS} if bg and all(row[n] is not None for n in GG_PARAMS) else None
        info = {k: row[k] for k in FIT_INFO_COLUMNS if row.get(k) is not None}
        info |= {"purchase_model": row["purchase_model"], "method": "map", "priors": "HalfFlat"}
        return cls(row["reason"], bg, gg, row["gamma_gamma_reason"], info, purchase_model=row["purchase_model"])


def fit_sample(summary: pl.DataFrame, size: int, random_state: int) -> pl.DataFrame:
    """At most ``size`` rows drawn without replacement with ``random_state``, from rows sorted by id."""
    ordered = summary.sort("customer_id")
    if ordered.height <= size:
        return ordered
    rows = np.random.default_rng(random_state).choice(ordered.height, size=size, replace=False)
    return ordered[np.sort(rows)]


def _fit_params(model: Any, names: tuple[str, ...]) -> dict[str, float]:
    return {name: float(_values(model.fit_result[name])[0]) for name in names}


def fit_models(summary: pl.DataFrame, settings: PredictionSettings) -> FittedModels:
    """Fit BG/NBD and Gamma-Gamma by MAP on a bounded seeded sample of ``summary`` (see module docstring)."""
    sample = fit_sample(summary, settings.fit_sample_size, settings.random_state)
    repeat = int((sample["frequency"] > 0).sum()) if sample.height else 0
    info: dict[str, Any] = {
        "buyers": summary.height,
        "fit_sample": sample.height,
        "fit_sample_repeat_buyers": repeat,
        "random_state": settings.random_state,
        "method": "map",
        "priors": "HalfFlat",
    }
    if repeat < settings.min_repeat_buyers:
        return FittedModels(
            reason=f"only {repeat} repeat buyers to fit on (< segmentation.prediction.min_repeat_buyers = "
            f"{settings.min_repeat_buyers}); predictions left null",
            info=info,
            purchase_model=settings.purchase_model,
        )
    beta_geo, gamma_gamma, prior = _library(settings.purchase_model)
    info["purchase_model"] = settings.purchase_model
    data = _pandas(sample)
    try:
        with _quiet():
            bg = beta_geo(model_config=_flat(prior, BG_PARAMS))
            bg.fit(data=data[["customer_id", "frequency", "recency", "T"]], method="map", progressbar=False)
        bg_params = _fit_params(bg, BG_PARAMS)
    except Exception as exc:  # a failed optimisation must not fail the run: no prediction, reason shown
        reason = f"BG/NBD fit failed: {type(exc).__name__}: {exc}"[:500]
        return FittedModels(reason=reason, info=info, purchase_model=settings.purchase_model)
    if not all(math.isfinite(v) and v > 0 for v in bg_params.values()):
        reason = f"BG/NBD fit gave unusable parameters {bg_params}"
        return FittedModels(reason=reason, bg_params=bg_params, info=info, purchase_model=settings.purchase_model)
    if bg_params["a"] + bg_params["b"] > ILL_DETERMINED:
        info["dropout_warning"] = (
            f"dropout parameters ill-determined (a = {bg_params['a']:.4g}, b = {bg_params['b']:.4g}): the data "
            f"shows one dropout probability {bg_params['a'] / (bg_params['a'] + bg_params['b']):.3f} for everyone; "
            "p_alive ranks customers by recency and frequency but its level is uncertain"
        )

    spenders = data[(data["frequency"] > 0) & (data["monetary_value"] > 0)]
    info["gamma_gamma_customers"] = len(spenders)
    gg = gg_params = gg_reason = None
    if len(spenders) < settings.min_repeat_buyers:
        gg_reason = (
            f"only {len(spenders)} repeat buyers with spend > 0 (< segmentation.prediction.min_repeat_buyers = "
            f"{settings.min_repeat_buyers}); CLV left null"
        )
    else:
        try:
            with _quiet():
                gg = gamma_gamma(model_config=_flat(prior, GG_PARAMS))
                gg.fit(data=spenders[["customer_id", "frequency", "monetary_value"]], method="map", progressbar=False)
            gg_params = _fit_params(gg, GG_PARAMS)
            if not all(math.isfinite(v) and v > 0 for v in gg_params.values()) or gg_params["q"] <= 1:
                gg_reason, gg = f"Gamma-Gamma fit gave unusable parameters {gg_params} (need q > 1)", None
        except Exception as exc:
            gg_reason, gg = f"Gamma-Gamma fit failed: {type(exc).__name__}: {exc}"[:500], None
    if gg is None:
        gg_params = None  # unusable spend parameters are reported in gg_reason, never scored with
    return FittedModels(None, bg_params, gg_params, gg_reason, info, bg, gg, settings.purchase_model)


# ------------------------------------------------------------------------------------------- predict
def _arrays(summary: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x (frequency), t_x (recency), T (t_days) and m (monetary_value) as float arrays, in row order."""
    return tuple(summary[c].cast(pl.Float64).to_numpy() for c in ("frequency", "recency", "t_days", "monetary_value"))


def _expected_purchases(models: FittedModels, summary: pl.DataFrame, days: float) -> np.ndarray:
    x, t_x, big_t, _ = _arrays(summary)
    assert models.bg_params is not None
    return closed.expected_purchases(models.purchase_model, models.bg_params, x, t_x, big_t, days)


def predict(summary: pl.DataFrame, models: FittedModels, settings: PredictionSettings) -> pl.DataFrame:
    """``customer_id`` plus ``prediction_columns(settings)`` for every row of ``summary`` (sorted by id).

    Closed-form from the parameters (models/clv_closed_form.py). Every prediction is null when the models
    are not fitted; CLV alone is null when only the spend model is missing.
    """
    columns = prediction_columns(settings)
    names = list(columns)
    ordered = summary.sort("customer_id")
    frame = ordered.select("customer_id")
    if not models.fitted or frame.height == 0:
        return frame.with_columns([pl.lit(None, dtype).alias(name) for name, dtype in columns.items()])
    assert models.bg_params is not None
    kind, bg = models.purchase_model, models.bg_params
    x, t_x, big_t, m = _arrays(ordered)
    p_alive = closed.probability_alive(kind, bg, x, t_x, big_t)
    expected = closed.expected_purchases(kind, bg, x, t_x, big_t, settings.purchase_horizon_days)
    clv: np.ndarray | None = None
    if models.gg_params is not None:
        spend = closed.expected_spend(models.gg_params, x, m)
        horizon, rate = settings.clv_horizon_days, settings.annual_discount_rate
        clv = spend * closed.discounted_purchases(kind, bg, x, t_x, big_t, horizon, rate)
    return frame.with_columns(
        pl.Series(names[0], p_alive, pl.Float64),
        pl.Series(names[1], expected, pl.Float64),
        pl.Series(names[2], clv, pl.Float64) if clv is not None else pl.lit(None, pl.Float64).alias(names[2]),
    ).with_columns(
        pl.when(pl.col("p_alive") < settings.churn_threshold)
        .then(pl.lit("churn"))
        .when(pl.col("p_alive").is_not_null())
        .then(pl.lit("alive"))
        .alias("predicted_churn")
    )


# --------------------------------------------------------------------------------------- calibration
def calibration_table(
    holdout_summary: pl.DataFrame, models: FittedModels, settings: PredictionSettings, snapshot_date: date | None
) -> pl.DataFrame:
    """Predicted vs actual purchases in the holdout, per frequency bucket of the observation period.

    ``holdout_summary`` is the summary observed up to D - holdout with ``holdout_purchases``; ``models``
    were fitted on it. One row per bucket ``0`` … ``<top-1>``, ``<top>+`` (``bucket_order`` 0…top) and a
    last row ``all`` (order top + 1): totals, and as ``abs_error`` the SUM of the bucket errors, so its
    ``relative_error`` is the bucket-weighted error that ``calibration_finding`` bounds. Empty when the
    models are not fitted.
    """
    if not models.fitted or holdout_summary.height == 0:
        return pl.DataFrame(schema=CALIBRATION_SCHEMA)
    ordered = holdout_summary.sort("customer_id")
    predicted = _expected_purchases(models, ordered, settings.calibration.holdout_days)
    return bucket_calibration(
        ordered.with_columns(predicted=pl.Series(predicted, dtype=pl.Float64)), settings, snapshot_date
    )


# ---------------------------------------------------------------------------------------------- run
@dataclass(frozen=True)
class PredictionResult:
    """Predictions for every buyer, the calibration table, parameters and reasons, for one snapshot."""

    predictions: pl.DataFrame  # customer_id + prediction_columns, one row per buyer
    calibration: pl.DataFrame  # CALIBRATION_SCHEMA
    params: dict[str, Any]
    warnings: list[str]
    parameters: pl.DataFrame  # rows of prediction_parameters for this snapshot (models/clv_reuse.py)


def run_predictions(
    summary: pl.DataFrame,
    holdout_summary: pl.DataFrame | None,
    settings: PredictionSettings,
    snapshot_date: date | None,
    stored: pl.DataFrame | None = None,
) -> PredictionResult:
    """Fit (or reuse ``stored`` parameters, models/clv_reuse.py), predict every buyer of ``summary`` and,
    given ``holdout_summary``, calibrate. ``parameters`` of the result are the rows to store for this
    snapshot; ``params`` say whether the models were re-fitted and why."""
    warnings_: list[str] = []
    params: dict[str, Any] = {
        "snapshot_date": None if snapshot_date is None else snapshot_date.isoformat(),
        "settings": settings.model_dump(mode="json"),
    }
    if not settings.enabled:
        empty = predict(summary.head(0), FittedModels(reason="disabled"), settings)
        return PredictionResult(
            empty,
            pl.DataFrame(schema=CALIBRATION_SCHEMA),
            {**params, "enabled": False},
            [],
            parameter_rows({}, settings, snapshot_date, None),
        )
    reuse, reason = stored_parameters(stored, settings, snapshot_date)
    calibrate = settings.calibration.enabled and holdout_summary is not None
    if reuse is not None:
        fitted_date = reuse["predict"]["fitted_date"]
        fits = {role: FittedModels.from_stored(row) for role, row in reuse.items()}
        models, cal_models = fits["predict"], fits.get("calibration")
    else:
        fitted_date = snapshot_date
        models = fit_models(summary, settings)
        cal_models = fit_models(holdout_summary, settings) if calibrate and holdout_summary is not None else None
    params |= {
        "refit": reuse is None,
        "refit_reason": reason,
        "fitted_date": None if fitted_date is None else fitted_date.isoformat(),
    }
    predictions = predict(summary, models, settings)
    params["model"] = _describe(models, settings, summary.height)
    if models.reason:
        warnings_.append(f"prediction: {models.reason}")
    elif models.gg_reason:
        warnings_.append(f"prediction: {models.gg_reason}")
    if models.info.get("dropout_warning"):
        warnings_.append(f"prediction: {models.info['dropout_warning']}")
    calibration = pl.DataFrame(schema=CALIBRATION_SCHEMA)
    if calibrate and cal_models is not None and holdout_summary is not None:
        params["calibration_model"] = _describe(cal_models, settings, holdout_summary.height)
        if cal_models.reason:
            warnings_.append(f"prediction calibration: {cal_models.reason}")
        calibration = calibration_table(holdout_summary, cal_models, settings, snapshot_date)
        params["calibration_error"] = calibration_error(calibration)
    roles = {"predict": models} | ({"calibration": cal_models} if cal_models is not None else {})
    rows = parameter_rows({r: m.stored() for r, m in roles.items()}, settings, snapshot_date, fitted_date)
    return PredictionResult(predictions, calibration, params, warnings_, rows)


def _describe(models: FittedModels, settings: PredictionSettings, buyers: int) -> dict[str, Any]:
    """The run parameters of a model, the same whether it was just fitted or read from stored rows."""
    row = models.stored()
    return {
        "fitted": models.fitted,
        "reason": models.reason,
        "purchase_model": models.purchase_model,
        "bg_nbd": models.bg_params,
        "gamma_gamma": models.gg_params,
        "gamma_gamma_reason": models.gg_reason,
        **{k: row[k] for k in FIT_INFO_COLUMNS},
        "buyers": buyers,
        "random_state": settings.random_state,
        "method": "map",
        "priors": "HalfFlat",
    }
