"""Churn models across snapshots: fitted parameters stored per snapshot and reused between re-fits.

Mirrors models/cluster_reuse.py (KMeans centroids). Each snapshot stores one row per model role in the
warehouse table ``prediction_parameters``: ``predict`` (the purchase and spend models every buyer is scored
with) and ``calibration`` (the same models fitted on purchases up to D - holdout). A row carries the
parameters (r, alpha, a, b; p, q, v), the purchase model kind, why a model is missing, the date it was
fitted (``fitted_date``), a key of the prediction settings it was fitted with (``fit_key``), the format
version (``fit_version``) and the fit sample's size.

The next snapshot keeps the stored parameters (every buyer scored with the closed-form formulas of
models/clv_closed_form.py, without importing pymc-marketing) unless one of these holds, in this order:

- ``prediction.refit_every_days`` is 0, or there are no stored parameters;
- the stored rows come from an older version (columns missing, or another ``fit_version``);
- the prediction settings that change a fit changed (model kind, sample size, seed, gate, holdout);
- the snapshot date lies before the fit (a backfill of an older date);
- ``refit_every_days`` or more days passed since ``fitted_date`` (the cadence);
- the stored purchase model was not fitted (too few repeat buyers, or a failed fit): try again.

Calibration: the holdout model is re-fitted only with the purchase model; between re-fits its stored
parameters score the holdout of the current snapshot (customers observed up to D - holdout, purchases in
the last holdout days), so the calibration table and its WARN are still measured every run, on data the
holdout model never saw (it was fitted up to fitted_date - holdout <= D - holdout).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any

import polars as pl

from models.settings import PredictionSettings

FIT_VERSION = 1  # raise when stored parameters must not be reused by a new version (formula or fit change)
ROLES = ("predict", "calibration")
BG_PARAMS: tuple[str, ...] = ("r", "alpha", "a", "b")
GG_PARAMS: tuple[str, ...] = ("p", "q", "v")
_NOT_FIT_SETTINGS = {
    "refit_every_days",
    "purchase_horizon_days",
    "clv_horizon_days",
    "annual_discount_rate",
    "churn_threshold",
}
_NOT_FIT_CALIBRATION = {"max_error", "top_bucket"}

PARAMETERS_SCHEMA: dict[str, pl.DataType] = {
    "snapshot_date": pl.Date(),
    "role": pl.String(),  # predict | calibration
    "purchase_model": pl.String(),  # bg_nbd | modified_bg_nbd
    "fitted": pl.Boolean(),  # the purchase model is usable
    "reason": pl.String(),  # why not fitted
    **{name: pl.Float64() for name in BG_PARAMS},
    **{name: pl.Float64() for name in GG_PARAMS},  # null when the spend model is missing
    "gamma_gamma_reason": pl.String(),
    "dropout_warning": pl.String(),
    "fit_sample": pl.Int64(),
    "fit_sample_repeat_buyers": pl.Int64(),
    "gamma_gamma_customers": pl.Int64(),
    "fitted_date": pl.Date(),
    "fit_key": pl.String(),
    "fit_version": pl.Int64(),
}
REUSE_COLUMNS = ("fitted_date", "fit_key", "fit_version")
# How a fit went (FittedModels.info), stored with the parameters and shown in the run's parameters.
FIT_INFO_COLUMNS = ("dropout_warning", "fit_sample", "fit_sample_repeat_buyers", "gamma_gamma_customers")


def fit_key(settings: PredictionSettings) -> str:
    """A short hash of every prediction setting that changes a fit (not the scoring or reuse settings)."""
    fields = settings.model_dump(mode="json", exclude=_NOT_FIT_SETTINGS)
    fields["calibration"] = {k: v for k, v in fields["calibration"].items() if k not in _NOT_FIT_CALIBRATION}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def parameter_rows(
    fits: dict[str, dict[str, Any]], settings: PredictionSettings, snapshot_date: date | None, fitted_date: date | None
) -> pl.DataFrame:
    """Rows to store for ``snapshot_date``: one per role in ``fits`` (each a dict of PARAMETERS_SCHEMA
    fields such as ``FittedModels.stored()`` gives), stamped with the fit date, key and version."""
    rows = [
        {
            **{name: None for name in PARAMETERS_SCHEMA},
            **{k: v for k, v in fit.items() if k in PARAMETERS_SCHEMA},
            "snapshot_date": snapshot_date,
            "role": role,
            "fitted_date": fitted_date,
            "fit_key": fit_key(settings),
            "fit_version": FIT_VERSION,
        }
        for role, fit in sorted(fits.items(), key=lambda kv: ROLES.index(kv[0]))
    ]
    return pl.DataFrame(rows, schema=PARAMETERS_SCHEMA, orient="row")


def stored_parameters(
    previous: pl.DataFrame | None, settings: PredictionSettings, snapshot_date: date | None
) -> tuple[dict[str, dict[str, Any]] | None, str]:
    """The stored rows to reuse per role (as dicts), or None; and the reason, for the run's parameters."""
    if settings.refit_every_days == 0:
        return None, "refit every snapshot (segmentation.prediction.refit_every_days = 0)"
    if previous is None or previous.height == 0:
        return None, "no stored model parameters"
    if (
        any(c not in previous.columns for c in (*REUSE_COLUMNS, *PARAMETERS_SCHEMA))
        or previous.select(pl.any_horizontal(pl.col(list(REUSE_COLUMNS)).is_null()).any()).item()
        or previous["fit_version"].unique().to_list() != [FIT_VERSION]
    ):
        return None, "stored model parameters were written by an older version"
    rows = {r["role"]: r for r in previous.iter_rows(named=True)}
    wanted = ["predict", "calibration"] if settings.calibration.enabled else ["predict"]
    if any(role not in rows for role in wanted) or previous["fit_key"].n_unique() != 1:
        return None, "stored model parameters lack a model role"
    if previous["fit_key"][0] != fit_key(settings):
        return None, "the prediction settings changed since the last fit"
    fitted = rows["predict"]["fitted_date"]
    if snapshot_date is None or snapshot_date < fitted:
        return None, f"snapshot {snapshot_date} is before the fit on {fitted} (backfill)"
    if (snapshot_date - fitted).days >= settings.refit_every_days:
        return None, f"fitted {fitted}: {settings.refit_every_days} days or more ago (refit_every_days)"
    if not rows["predict"]["fitted"]:
        return None, f"the stored fit of {fitted} has no purchase model ({rows['predict']['reason']})"
    return {role: rows[role] for role in wanted}, f"reused the parameters fitted on {fitted}"
