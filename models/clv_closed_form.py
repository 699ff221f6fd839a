"""Closed-form BTYD predictions from fitted parameters: numpy and scipy only, never pymc or pytensor.

Why: importing pymc-marketing costs ~15 s per process (pymc, pytensor, arviz) and its predictions go
through xarray; the formulas themselves are a few vectorised lines. Scoring every buyer from stored
parameters lets a nightly run skip the library entirely between re-fits (models/clv_reuse.py).

Each formula is written exactly as pymc-marketing 0.19 writes it (same terms, same order of operations,
so the results agree to rounding; tests/test_clv_reuse.py compares them to the library's own
predictions on the same parameters):

- BG/NBD (Fader, Hardie & Lee 2005): ``BetaGeoModel.expected_probability_alive`` (one-time buyers are
  alive with probability 1) and ``expected_purchases`` (eq. 10, Gauss hypergeometric ``hyp2f1``).
- Modified BG/NBD (Batislam, Denizel & Filiztekin 2007): ``ModifiedBetaGeoModel``, eqs. 5 and 6.
- Gamma-Gamma (Fader & Hardie 2013, eq. 5): ``GammaGammaModel.expected_customer_spend``, the weighted
  mean of the population mean spend and the customer's own mean repeat spend.

Inputs are float arrays per buyer: ``x`` repeat purchase days (frequency), ``t_x`` recency and ``T`` age
in days; ``m`` mean repeat spend. Parameters are plain dicts (``r, alpha, a, b`` and ``p, q, v``).
scipy.special is imported on first use (about 0.9 s on a cold start, kept out of the code location's load).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

PERIOD_DAYS = 30
PURCHASE_MODELS = ("bg_nbd", "modified_bg_nbd")


def _bg(params: Mapping[str, float]) -> tuple[float, float, float, float]:
    return float(params["r"]), float(params["alpha"]), float(params["a"]), float(params["b"])


def _check_kind(kind: str) -> None:
    if kind not in PURCHASE_MODELS:
        raise ValueError(
            f"unknown purchase model {kind!r}: expected one of {list(PURCHASE_MODELS)} "
            "(segmentation.prediction.purchase_model)"
        )


def probability_alive(
    kind: str, params: Mapping[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(alive) of each buyer at the end of observation."""
    from scipy.special import expit

    _check_kind(kind)
    r, alpha, a, b = _bg(params)
    if kind == "modified_bg_nbd":
        return 1.0 / (1 + (a / (b + x)) * ((alpha + T) / (alpha + t_x)) ** (r + x))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_div = (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(a / (b + np.maximum(x, 1) - 1))
        return np.where(x == 0, 1.0, expit(-log_div))


def expected_purchases(
    kind: str, params: Mapping[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray, t: float
) -> np.ndarray:
    """Expected purchase days of each buyer in the next ``t`` days (conditional on its history)."""
    from scipy.special import hyp2f1

    _check_kind(kind)
    r, alpha, a, b = _bg(params)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if kind == "modified_bg_nbd":
            hyp_term = hyp2f1(r + x, b + x + 1, a + b + x, t / (alpha + T + t))
            first_term = (a + b + x) / (a - 1)
            second_term = 1 - hyp_term * ((alpha + T) / (alpha + t + T)) ** (r + x)
            numerator = first_term * second_term
            denominator = 1 + (a / (b + x)) * ((alpha + T) / (alpha + t_x)) ** (r + x)
            return numerator / denominator
        numerator = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
            r + x, b + x, a + b + x - 1, t / (alpha + T + t)
        )
        numerator *= (a + b + x - 1) / (a - 1)
        denominator = 1 + (x > 0) * (a / (b + x - 1)) * ((alpha + T) / (alpha + t_x)) ** (r + x)
        return numerator / denominator


def expected_spend(params: Mapping[str, float], x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Gamma-Gamma conditional expected mean spend per purchase of each buyer."""
    p, q, v = float(params["p"]), float(params["q"]), float(params["v"])
    individual_weight = p * x / (p * x + q - 1)
    population_mean = v * p / (q - 1)
    return (1 - individual_weight) * population_mean + individual_weight * m


def discounted_purchases(
    kind: str,
    params: Mapping[str, float],
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    horizon_days: int,
    annual_rate: float,
) -> np.ndarray:
    """Expected purchases in the next ``horizon_days``, each 30-day period discounted to today.

    Period k ends at t_k = min(30 k, H); its purchases E[N(t_k)] - E[N(t_k-1)] are divided by
    (1 + m)^(t_k / 30) with m = (1 + annual_rate)^(30/365) - 1 (pymc-marketing's
    ``customer_lifetime_value`` scheme with a monthly rate; the last period is cut so the horizon is H days).
    """
    monthly = (1 + annual_rate) ** (PERIOD_DAYS / 365) - 1
    ends = [min(PERIOD_DAYS * k, horizon_days) for k in range(1, math.ceil(horizon_days / PERIOD_DAYS) + 1)]
    total = np.zeros(len(x))
    previous = np.zeros(len(x))
    for end in ends:
        cumulative = expected_purchases(kind, params, x, t_x, T, end)
        total += (cumulative - previous) / (1 + monthly) ** (end / PERIOD_DAYS)
        previous = cumulative
    return total
