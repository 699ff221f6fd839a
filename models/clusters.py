"""KMeans clusters with ids that stay stable across snapshots, readable names and profiles.

How it works, and why:

- Population: ``all`` customers (default; nulls filled per feature, e.g. recency of a non-buyer =
  3650 days, counts = 0) or only ``buyers`` (others get a null cluster).
- Features: each is filled, clipped at 0, ``log1p``-transformed (long-tailed counts and money) and
  standardized with the mean and population std of the fitting sample (std 0 -> 1).
- Sample: rows are sorted by customer_id, then the ``sample_size`` customers with the smallest
  hash of their UTF-8 customer_id (FNV-1a 64 then murmur3's fmix64) are taken, in customer_id
  order. The hash is computed here, so it is stable across runs, versions and row order, and a customer stays in the
  sample from one snapshot to the next.
- k: fixed (``k``) or the k in ``k_range`` with the best silhouette on the first
  ``silhouette_sample_size`` sampled customers (by hash); ties go to the smaller k. sklearn
  ``KMeans`` with the configured ``random_state`` and ``n_init``.
- Every customer in the population is assigned to the nearest centroid (squared Euclidean
  distance in standardized space); ties go to the lowest cluster id.
- Stable ids: centroids are persisted in log1p space (``center``) with the scaler used. The previous
  snapshot's centroids are standardized with THIS snapshot's scaler and matched to the new ones by
  ``scipy.optimize.linear_sum_assignment`` on Euclidean distance; a matched cluster keeps its id,
  an unmatched new cluster gets the lowest id not used by the previous snapshot. Without previous
  centroids, ids 0..k-1 go by cluster size in the sample (largest first).
- Names come from the features that separate the clusters: a feature whose centroid z-scores span
  no more than ``name_threshold`` across clusters (e.g. sessions when nobody browsed) never names
  anything. A cluster is named by its distinctive words (z below -``name_threshold``: labels[0],
  above: labels[2]) joined with " · ", in feature order; a cluster distinctive on nothing is named by
  the middle words of the separating features. Clusters sharing a name are told apart by the feature
  on which they differ most: " (more spend)" / " (less spend)" (most/mid/least for three, rank i/n
  beyond), using each feature's ``name``; " #<id>" only as a last resort (identical centroids).
- Stable names: a cluster matched to a previous centroid within ``name_keep_distance`` (Euclidean,
  in this snapshot's standardized units) keeps the previous snapshot's name, so names do not flip
  while centroids barely move; others are named afresh and told apart from the kept names. The
  stable key for exports and joins is ``cluster_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from models.cluster_reuse import assign_ids, fit_key, mean_nearest_distance, nearest, previous_matrix, stored_fit
from models.settings import ClusterSettings

if TYPE_CHECKING:
    from sklearn.cluster import KMeans

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)

CENTROIDS_SCHEMA: dict[str, pl.DataType] = {
    "snapshot_date": pl.Date(),
    "cluster_id": pl.Int64(),
    "cluster_name": pl.String(),
    "feature": pl.String(),
    "center": pl.Float64(),  # log1p space (after fill and clip at 0), unstandardized
    "center_std": pl.Float64(),  # standardized with scale_mean / scale_std of this snapshot
    "scale_mean": pl.Float64(),
    "scale_std": pl.Float64(),
    "fill_null": pl.Float64(),
    "fitted_date": pl.Date(),  # when these centers were fitted (models/cluster_reuse.py)
    "fit_distance": pl.Float64(),
    "fit_key": pl.String(),
}


@dataclass(frozen=True)
class ClusterResult:
    """Per-customer assignments, profiles in original units, centroids to persist, and run facts."""

    assignments: pl.DataFrame  # customer_id, cluster_id, cluster_name (every input customer)
    profiles: pl.DataFrame
    centroids: pl.DataFrame
    params: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def fnv1a_64(values: pl.Series) -> np.ndarray:
    """FNV-1a 64-bit hash of each string's UTF-8 bytes (null hashes like ""), vectorised by byte position."""
    arr = values.cast(pl.String).to_arrow()
    arr = pc.cast(arr, pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    hashes = np.full(n, FNV_OFFSET, dtype=np.uint64)
    if n == 0:
        return hashes
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1]
    lengths = np.diff(offsets)
    if arr.null_count:
        lengths = np.where(np.asarray(arr.is_null()), 0, lengths)
    for pos in range(int(lengths.max(initial=0))):
        active = np.nonzero(lengths > pos)[0]
        byte = data[starts[active] + pos].astype(np.uint64)
        hashes[active] = (hashes[active] ^ byte) * FNV_PRIME
    return hashes


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: spreads every input bit over the high bits used for ordering."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def stable_hash(values: pl.Series) -> np.ndarray:
    """Sampling hash of ids: fmix64(FNV-1a 64). Plain FNV-1a barely moves the high bits on the last
    byte, so ids sharing a prefix would sort together; the finalizer fixes that."""
    return fmix64(fnv1a_64(values))


def transformed_matrix(frame: pl.DataFrame, settings: ClusterSettings) -> np.ndarray:
    """Feature matrix in log1p space: fill nulls, clip at 0, log1p (rows as in ``frame``)."""
    cols = [
        frame.get_column(f.column).cast(pl.Float64).fill_null(f.fill_null).clip(lower_bound=0.0).to_numpy()
        for f in settings.features
    ]
    return np.log1p(np.column_stack(cols)) if cols else np.zeros((frame.height, 0))


def nearest_centroid(z: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest center for each row (squared Euclidean); ties go to the lowest index."""
    return nearest(z, centers)[0]


def _fit(z: np.ndarray, k: int, settings: ClusterSettings) -> KMeans:
    from sklearn.cluster import KMeans  # imported on use: sklearn is slow to import

    return KMeans(n_clusters=k, n_init=settings.n_init, random_state=settings.random_state).fit(z)


def _choose_k(
    z_sample: np.ndarray, sil_rows: np.ndarray, n_unique: int, settings: ClusterSettings, warnings: list[str]
) -> tuple[int, KMeans, dict[int, float]]:
    """Fixed k (capped at the number of distinct points) or the best silhouette in k_range."""
    if settings.k is not None:
        k = min(settings.k, n_unique)
        if k < settings.k:
            warnings.append(
                f"clusters: only {n_unique} distinct points in the sample; k lowered from {settings.k} to {k}"
            )
        return k, _fit(z_sample, k, settings), {}
    lo, hi = settings.k_range
    candidates = [k for k in range(lo, hi + 1) if k <= n_unique - 1 and k <= len(sil_rows) - 1]
    if not candidates:
        k = max(1, min(lo, n_unique))
        warnings.append(f"clusters: too few distinct points ({n_unique}) to choose k in {[lo, hi]}; using k={k}")
        return k, _fit(z_sample, k, settings), {}
    from sklearn.metrics import silhouette_score

    scores: dict[int, float] = {}
    models: dict[int, KMeans] = {}
    for k in candidates:
        model = _fit(z_sample, k, settings)
        labels = model.labels_[sil_rows]
        scores[k] = float(silhouette_score(z_sample[sil_rows], labels)) if len(np.unique(labels)) > 1 else -1.0
        models[k] = model
    best = max(candidates, key=lambda k: (scores[k], -k))
    return best, models[best], scores


_QUALIFIERS: dict[int, tuple[str, ...]] = {2: ("more", "less"), 3: ("most", "mid", "least")}


def _feature_noun(feature: Any) -> str:
    return feature.name or feature.column.replace("_", " ")


def _base_name(center: np.ndarray, separating: list[int], settings: ClusterSettings) -> str:
    """Distinctive words of one centroid over the separating features (middle words if none)."""
    t = settings.name_threshold
    feats = settings.features
    words = [feats[d].labels[0] if center[d] < -t else feats[d].labels[2] for d in separating if abs(center[d]) > t]
    if not words:
        words = [feats[d].labels[1] for d in separating]
    return " · ".join(words) if words else "typical"


def _tell_apart(
    members: list[int], anchor: int | None, z: dict[int, np.ndarray], base: str, settings: ClusterSettings
) -> dict[int, str]:
    """Qualified names for ``members`` sharing ``base`` (``anchor``, a kept cluster, keeps ``base``)."""
    group = [*members, *([anchor] if anchor is not None else [])]
    stacked = np.stack([z[c] for c in group])
    spread = stacked.max(axis=0) - stacked.min(axis=0)
    d = int(np.argmax(spread))  # first feature on ties: deterministic
    if spread[d] <= 1e-9:  # identical centroids: nothing to tell them apart by
        return {c: f"{base} #{c}" for c in members}
    noun = _feature_noun(settings.features[d])
    ranked = sorted(group, key=lambda c: (-z[c][d], c))
    n = len(ranked)
    words = _QUALIFIERS.get(n) or tuple(f"{noun} rank {i + 1}/{n}" for i in range(n))
    out: dict[int, str] = {}
    for rank, cid in enumerate(ranked):
        if cid == anchor:
            continue
        qualifier = f"{words[rank]} {noun}" if n in _QUALIFIERS else words[rank]
        out[cid] = f"{base} ({qualifier})"
    return out


def cluster_names(
    centers_z: np.ndarray, ids: list[int], settings: ClusterSettings, kept: dict[int, str] | None = None
) -> dict[int, str]:
    """Readable, unique name per cluster id from its standardized centroid (see module docstring).

    ``kept`` maps ids whose matched centroid stayed put to the name they keep from the previous snapshot.
    """
    kept = {cid: name for cid, name in (kept or {}).items() if cid in ids}
    z = {cid: np.asarray(center, dtype=np.float64) for cid, center in zip(ids, centers_z, strict=True)}
    if len(ids) > 1:
        spread = centers_z.max(axis=0) - centers_z.min(axis=0)
        separating = [d for d in range(centers_z.shape[1]) if spread[d] > settings.name_threshold]
    else:
        separating = []
    fresh = {cid: _base_name(z[cid], separating, settings) for cid in ids if cid not in kept}
    names = dict(kept)
    by_base: dict[str, list[int]] = {}
    for cid in sorted(fresh):
        by_base.setdefault(fresh[cid], []).append(cid)
    owner = {name: cid for cid, name in kept.items()}
    for base, members in sorted(by_base.items()):
        anchor = owner.get(base)
        if len(members) == 1 and anchor is None:
            names[members[0]] = base
        else:
            names.update(_tell_apart(members, anchor, z, base, settings))
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {cid: (f"{names[cid]} #{cid}" if counts[names[cid]] > 1 else names[cid]) for cid in sorted(names)}


def _empty_result(frame: pl.DataFrame, id_column: str, settings: ClusterSettings, warnings: list[str]) -> ClusterResult:
    assignments = frame.select(
        pl.col(id_column), cluster_id=pl.lit(None, pl.Int64), cluster_name=pl.lit(None, pl.String)
    )
    return ClusterResult(
        assignments=assignments,
        profiles=pl.DataFrame(schema=_profile_schema(settings)),
        centroids=pl.DataFrame(schema=CENTROIDS_SCHEMA),
        params={"enabled": settings.enabled, "k": None, "random_state": settings.random_state},
        warnings=warnings,
    )


def _profile_schema(settings: ClusterSettings) -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {
        "snapshot_date": pl.Date(),
        "cluster_id": pl.Int64(),
        "cluster_name": pl.String(),
        "customers": pl.Int64(),
        "share": pl.Float64(),
    }
    for f in settings.features:
        schema[f"{f.column}_mean"] = pl.Float64()
        schema[f"{f.column}_median"] = pl.Float64()
    return schema


def cluster_customers(
    features: pl.DataFrame,
    settings: ClusterSettings,
    snapshot_date: date | None,
    previous_centroids: pl.DataFrame | None = None,
    *,
    id_column: str = "customer_id",
    buyer_column: str = "is_buyer",
) -> ClusterResult:
    """Fit KMeans on a bounded deterministic sample and assign every customer (see module docstring)."""
    names = [f.column for f in settings.features]
    missing = [c for c in names if c not in features.columns]
    if missing:
        raise ValueError(f"clusters.features: columns {missing} are not in the features frame")
    frame = features.select(id_column, buyer_column, *names).sort(id_column)
    warnings: list[str] = []
    if not settings.enabled:
        return _empty_result(frame, id_column, settings, warnings)
    in_pop = pl.col(buyer_column).fill_null(False) if settings.population == "buyers" else pl.lit(True)
    pop = frame.filter(in_pop)
    if pop.height == 0:
        warnings.append(f"clusters: no customers in population {settings.population!r}; no clusters")
        return _empty_result(frame, id_column, settings, warnings)

    x = transformed_matrix(pop, settings)
    order_by_hash = np.lexsort((np.arange(pop.height), stable_hash(pop[id_column])))
    picked = order_by_hash[: settings.sample_size]
    sample_rows = np.sort(picked)  # customer_id order
    sil_rows = np.searchsorted(sample_rows, np.sort(picked[: settings.silhouette_sample_size]))

    x_sample = x[sample_rows]
    mean = x_sample.mean(axis=0)
    std = x_sample.std(axis=0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    stored, reason, drift = stored_fit(previous_centroids, settings, snapshot_date, names, x_sample)
    facts: dict[str, Any] = {
        "enabled": True,
        "population": settings.population,
        "population_size": pop.height,
        "features": names,
        "random_state": settings.random_state,
        "n_init": settings.n_init,
        "sample_size": len(sample_rows),
        "refit": stored is None,
        "refit_reason": reason,
    }
    if drift:
        warnings.append(f"clusters: re-fitted, {reason}")
    if stored is not None:
        facts |= {"k": len(stored.ids), "fitted_date": stored.fitted_date.isoformat()}
        facts |= {"sample_distance": round(stored.sample_distance, 6), "fit_distance": round(stored.fit_distance, 6)}
        fit = (stored.ids, stored.centers_z, stored.mean, stored.std, stored.names)
        return _assigned(
            frame,
            pop,
            x,
            fit,
            (stored.fitted_date, stored.fit_distance),
            settings,
            snapshot_date,
            id_column,
            facts,
            warnings,
        )

    z_sample = (x_sample - mean) / std
    n_unique = int(np.unique(z_sample, axis=0).shape[0])
    k, model, sil_scores = _choose_k(z_sample, sil_rows, n_unique, settings, warnings)
    centers = np.asarray(model.cluster_centers_, dtype=np.float64)
    sizes = np.bincount(model.labels_, minlength=k)
    order = sorted(range(k), key=lambda j: (-int(sizes[j]), tuple(centers[j])))

    previous = None
    if previous_centroids is not None:
        previous = previous_matrix(previous_centroids, names, warnings)
    mapping, matches = assign_ids(centers, order, previous, mean, std)
    ids = sorted(mapping.values())
    by_id = {cid: j for j, cid in mapping.items()}
    centers_by_id = np.stack([centers[by_id[cid]] for cid in ids])
    kept: dict[int, str] = {}
    if previous is not None and previous_centroids is not None and "cluster_name" in previous_centroids.columns:
        prev_names = dict(
            previous_centroids.group_by("cluster_id").agg(pl.col("cluster_name").drop_nulls().first()).iter_rows()
        )
        kept = {
            cid: prev_names[cid]
            for cid, dist in matches
            if dist <= settings.name_keep_distance and prev_names.get(cid) is not None
        }
    cluster_name = cluster_names(centers_by_id, ids, settings, kept)
    fit_distance = mean_nearest_distance(z_sample, centers_by_id)
    facts |= {
        "k": k,
        "k_requested": settings.k,
        "k_range": list(settings.k_range) if settings.k is None else None,
        "silhouette": {str(kk): round(v, 6) for kk, v in sil_scores.items()},
        "silhouette_sample_size": len(sil_rows),
        "matched_previous": previous is not None,
        "matches": [{"cluster_id": cid, "distance": round(dist, 6)} for cid, dist in matches],
        "names_kept": sorted(kept),
        "fitted_date": snapshot_date.isoformat() if snapshot_date else None,
        "fit_distance": round(fit_distance, 6),
    }
    fit = (ids, centers_by_id, mean, std, cluster_name)
    return _assigned(
        frame, pop, x, fit, (snapshot_date, fit_distance), settings, snapshot_date, id_column, facts, warnings
    )


def _assigned(
    frame: pl.DataFrame,
    pop: pl.DataFrame,
    x: np.ndarray,
    fit: tuple[list[int], np.ndarray, np.ndarray, np.ndarray, dict[int, str]],
    fitted: tuple[date | None, float],
    settings: ClusterSettings,
    snapshot_date: date | None,
    id_column: str,
    params: dict[str, Any],
    warnings: list[str],
) -> ClusterResult:
    """Assign the population to the nearest of ``fit`` (ids, standardized centers, scaler, names)."""
    ids, centers_by_id, mean, std, cluster_name = fit
    z_all = (x - mean) / std
    labels = np.asarray(ids, dtype=np.int64)[nearest_centroid(z_all, centers_by_id)]
    name_map = pl.DataFrame(
        {"cluster_id": ids, "cluster_name": [cluster_name[c] for c in ids]},
        schema={"cluster_id": pl.Int64, "cluster_name": pl.String},
    )
    assigned = pop.select(id_column).with_columns(cluster_id=pl.Series(labels, dtype=pl.Int64))
    assignments = (
        frame.select(id_column)
        .join(assigned, on=id_column, how="left", maintain_order="left")
        .join(name_map, on="cluster_id", how="left", maintain_order="left")
    )
    profiles = _profiles(
        pop.with_columns(cluster_id=pl.Series(labels, dtype=pl.Int64)), name_map, settings, snapshot_date
    )
    fitted_date, fit_distance = fitted
    centroid_rows = [
        {
            "cluster_id": cid,
            "cluster_name": cluster_name[cid],
            "feature": f.column,
            "center": float(centers_by_id[i, d] * std[d] + mean[d]),
            "center_std": float(centers_by_id[i, d]),
            "scale_mean": float(mean[d]),
            "scale_std": float(std[d]),
            "fill_null": float(f.fill_null),
            "fitted_date": fitted_date,
            "fit_distance": fit_distance,
            "fit_key": fit_key(settings),
        }
        for i, cid in enumerate(ids)
        for d, f in enumerate(settings.features)
    ]
    centroids = (
        pl.DataFrame(centroid_rows)
        .with_columns(snapshot_date=pl.lit(snapshot_date, pl.Date))
        .select([pl.col(c).cast(t) for c, t in CENTROIDS_SCHEMA.items()])
    )
    return ClusterResult(assignments, profiles, centroids, params, warnings)


def _profiles(
    pop: pl.DataFrame, name_map: pl.DataFrame, settings: ClusterSettings, snapshot_date: date | None
) -> pl.DataFrame:
    """Per cluster: customers, share of the population, mean/median of each raw feature in original
    units (before null filling; nulls are left out of the mean and median)."""
    aggs: list[pl.Expr] = [pl.len().cast(pl.Int64).alias("customers")]
    for f in settings.features:
        value = pl.col(f.column).cast(pl.Float64)
        aggs += [value.mean().alias(f"{f.column}_mean"), value.median().alias(f"{f.column}_median")]
    stats = pop.group_by("cluster_id").agg(aggs)
    total = pop.height
    return (
        name_map.join(stats, on="cluster_id", how="left", maintain_order="left")
        .with_columns(
            pl.col("customers").fill_null(0),
            snapshot_date=pl.lit(snapshot_date, pl.Date),
        )
        .with_columns(share=pl.col("customers") / total)
        .sort("cluster_id")
        .select([pl.col(c).cast(t) for c, t in _profile_schema(settings).items()])
    )
