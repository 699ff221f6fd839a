"""Clusters across snapshots: stable ids when re-fitting, stored centroids reused between re-fits.

Stable ids: see models/clusters.py (``assign_ids`` matches new centroids to the previous ones).

Reuse (nightly runs assign, they do not re-fit):

A snapshot's centroids carry the date they were fitted (``fitted_date``), the mean distance of the fitting
sample to its nearest centroid in the fit's standardized space (``fit_distance``) and a key of the cluster
settings they were fitted with (``fit_key``). The next snapshot keeps them (same ids, names, scaler and
centers; every customer assigned to the nearest one) unless one of these holds, in this order:

- ``clusters.refit_every_days`` is 0, there are no previous centroids, or they lack the three columns
  (written by an older version);
- the cluster settings changed (features, fills, labels, k, sample sizes, seeds, names);
- ``refit_every_days`` or more days passed since ``fitted_date`` (the cadence);
- drift: the same hash sample of this snapshot, standardized with the stored scaler, lies on average more
  than ``refit_distance_growth`` (a share) farther from its nearest centroid than the fitting sample did.

Everything here is a pure function of the previous centroids, the settings and this snapshot's sample, so a
re-run of the same date over the same warehouse gives the same answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from models.settings import ClusterSettings

REUSE_COLUMNS = ("fitted_date", "fit_distance", "fit_key")
_NOT_FIT_SETTINGS = {"refit_every_days", "refit_distance_growth", "name_keep_distance"}
_CHUNK = 262_144  # rows per block of the nearest-centre search


def fit_key(settings: ClusterSettings) -> str:
    """A short hash of every cluster setting that changes the fit or the names (not the reuse settings)."""
    fields = settings.model_dump(mode="json", exclude=_NOT_FIT_SETTINGS)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def nearest(z: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest center of each row (ties to the lowest index) and its squared Euclidean
    distance, in chunks of rows so memory stays bounded."""
    index = np.empty(z.shape[0], dtype=np.int64)
    dist = np.empty(z.shape[0], dtype=np.float64)
    for start in range(0, z.shape[0], _CHUNK):
        block = z[start : start + _CHUNK]
        sq = np.stack([((block - c) ** 2).sum(axis=1) for c in centers], axis=1)
        index[start : start + _CHUNK] = np.argmin(sq, axis=1)
        dist[start : start + _CHUNK] = sq.min(axis=1)
    return index, dist


def mean_nearest_distance(z: np.ndarray, centers: np.ndarray) -> float:
    """Mean Euclidean distance of the rows of ``z`` to their nearest center (0.0 for no rows)."""
    if z.shape[0] == 0:
        return 0.0
    return float(np.sqrt(nearest(z, centers)[1]).mean())


@dataclass(frozen=True)
class StoredFit:
    """The previous snapshot's centroids, ready to assign with (rows in cluster id order)."""

    ids: list[int]
    names: dict[int, str]
    centers_z: np.ndarray  # standardized with mean / std below
    mean: np.ndarray
    std: np.ndarray
    fitted_date: date
    fit_distance: float
    sample_distance: float


def stored_fit(
    previous: pl.DataFrame | None,
    settings: ClusterSettings,
    snapshot_date: date | None,
    columns: list[str],
    x_sample: np.ndarray,
) -> tuple[StoredFit | None, str, bool]:
    """The previous fit to reuse, or None; the reason (for the run's parameters) and whether it is drift."""
    if settings.refit_every_days == 0:
        return None, "refit every snapshot (segmentation.clusters.refit_every_days = 0)", False
    if previous is None or previous.height == 0:
        return None, "no previous centroids", False
    if (
        any(c not in previous.columns for c in REUSE_COLUMNS)
        or previous.select(pl.any_horizontal(pl.col(list(REUSE_COLUMNS)).is_null()).any()).item()
    ):
        return None, "previous centroids do not say when they were fitted", False
    if previous["fit_key"].n_unique() != 1 or previous["fit_key"][0] != fit_key(settings):
        return None, "the cluster settings changed since the last fit", False
    fitted = previous["fitted_date"][0]
    if snapshot_date is None or not 0 <= (snapshot_date - fitted).days < settings.refit_every_days:
        return None, f"fitted {fitted}: {settings.refit_every_days} days or more ago (refit_every_days)", False
    wide = previous.pivot(on="feature", index="cluster_id", values="center_std").sort("cluster_id")
    scale = previous.group_by("feature").agg(pl.col("scale_mean").first(), pl.col("scale_std").first())
    if (
        sorted(scale["feature"].to_list()) != sorted(columns)
        or wide.select(pl.any_horizontal(pl.col(columns).is_null()).any()).item()
    ):
        return None, "previous centroids do not cover every feature", False
    scale = {r["feature"]: (r["scale_mean"], r["scale_std"]) for r in scale.iter_rows(named=True)}
    mean = np.array([scale[c][0] for c in columns], dtype=np.float64)
    std = np.array([scale[c][1] for c in columns], dtype=np.float64)
    centers = wide.select(columns).to_numpy().astype(np.float64)
    fit_distance = float(previous["fit_distance"][0])
    distance = mean_nearest_distance((x_sample - mean) / std, centers)
    limit = fit_distance * (1 + settings.refit_distance_growth)
    if distance > limit + 1e-12:
        growth = f"{distance / fit_distance - 1:.0%}" if fit_distance > 0 else "from 0"
        return (
            None,
            f"drift: the sample lies {distance:.4f} from its nearest centroid against {fit_distance:.4f} when "
            f"fitted on {fitted} (+{growth} > {settings.refit_distance_growth:.0%}, "
            "segmentation.clusters.refit_distance_growth)",
            True,
        )
    names = dict(previous.group_by("cluster_id").agg(pl.col("cluster_name").first()).iter_rows())
    ids = wide["cluster_id"].cast(pl.Int64).to_list()
    fit = StoredFit(ids, {int(i): names.get(i) or "" for i in ids}, centers, mean, std, fitted, fit_distance, distance)
    return fit, f"reused the centroids fitted on {fitted}", False


def previous_matrix(
    previous: pl.DataFrame, names: list[str], warnings: list[str]
) -> tuple[list[int], np.ndarray] | None:
    """Previous centroids as (ids, matrix in log1p space, columns in ``names`` order), or None."""
    needed = {"cluster_id", "feature", "center"}
    missing = sorted(needed - set(previous.columns))
    if missing:
        raise ValueError(f"previous_centroids: missing columns {missing}; expected at least {sorted(needed)}")
    if previous.height == 0:
        return None
    if previous.select(pl.struct("cluster_id", "feature").is_duplicated().any()).item():
        raise ValueError("previous_centroids: more than one row per (cluster_id, feature)")
    prev_features = sorted(previous["feature"].unique().to_list())
    if prev_features != sorted(names):
        warnings.append(
            f"clusters: previous centroids are over features {prev_features}, now {sorted(names)}; "
            "cluster ids start afresh"
        )
        return None
    wide = previous.pivot(on="feature", index="cluster_id", values="center").sort("cluster_id")
    if wide.select(pl.any_horizontal(pl.col(names).is_null()).any()).item():
        warnings.append("clusters: previous centroids lack some features for some clusters; cluster ids start afresh")
        return None
    return wide["cluster_id"].cast(pl.Int64).to_list(), wide.select(names).to_numpy().astype(np.float64)


def assign_ids(
    centers_z: np.ndarray,
    order: list[int],
    previous: tuple[list[int], np.ndarray] | None,
    mean: np.ndarray,
    std: np.ndarray,
) -> tuple[dict[int, int], list[tuple[int, float]]]:
    """Model cluster index -> stable id; also (id, distance) of each match to the previous centroid."""
    if previous is None:
        return {j: i for i, j in enumerate(order)}, []
    from scipy.optimize import linear_sum_assignment

    prev_ids, prev_log = previous
    prev_z = (prev_log - mean) / std
    ordered = centers_z[order]
    cost = np.sqrt(((ordered[:, None, :] - prev_z[None, :, :]) ** 2).sum(axis=2))
    rows, cols = linear_sum_assignment(cost)
    mapping: dict[int, int] = {}
    matches: list[tuple[int, float]] = []
    for r, c in zip(rows, cols, strict=True):
        mapping[order[r]] = prev_ids[c]
        matches.append((prev_ids[c], float(cost[r, c])))
    taken = set(prev_ids)
    next_id = 0
    for j in order:
        if j in mapping:
            continue
        while next_id in taken:
            next_id += 1
        mapping[j] = next_id
        taken.add(next_id)
    return mapping, sorted(matches)
