"""Clusters: deterministic under shuffling, stable ids across snapshots, unique readable names."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from models.clusters import CENTROIDS_SCHEMA, cluster_customers, cluster_names, fnv1a_64, nearest_centroid, stable_hash
from models.settings import ClusterSettings, load_segmentation_settings

SNAPSHOT = date(2026, 11, 21)
NEXT = date(2026, 11, 22)

# Three well-separated behaviours; customers spread symmetrically (5 levels) around the centre, so
# a blob's mean in original units is its centre (blob sizes are multiples of 5).
BLOBS: dict[str, dict[str, float]] = {
    "big": {"frequency": 12, "monetary": 5000, "recency_days": 3, "sessions_90d": 40},
    "mid": {"frequency": 3, "monetary": 300, "recency_days": 45, "sessions_90d": 6},
    "low": {"frequency": 1, "monetary": 20, "recency_days": 300, "sessions_90d": 0},
}


def _blobs(sizes: dict[str, int], jitter: float = 0.05, snapshot: date = SNAPSHOT) -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    for blob, n in sizes.items():
        centre = BLOBS[blob]
        for i in range(n):
            sign = ((i % 5) - 2) / 2  # -1, -0.5, 0, 0.5, 1: symmetric, so blob means equal the centre
            rows.append(
                {
                    "customer_id": f"{blob}-{i:03d}",
                    "blob": blob,
                    "is_buyer": True,
                    "frequency": int(centre["frequency"]),
                    "monetary": Decimal(str(round(centre["monetary"] * (1 + sign * jitter), 2))),
                    "recency_days": round(centre["recency_days"] * (1 + sign * jitter)),
                    "sessions_90d": round(centre["sessions_90d"] * (1 + sign * jitter)),
                }
            )
    frame = pl.DataFrame(rows, schema_overrides={"monetary": pl.Decimal(18, 2)})
    return frame.with_columns(snapshot_date=pl.lit(snapshot))


def _settings(**overrides: Any) -> ClusterSettings:
    return load_segmentation_settings({"clusters": {"k": 3, **overrides}}).clusters


def _blob_ids(frame: pl.DataFrame, assignments: pl.DataFrame) -> dict[str, int]:
    """Blob -> its single cluster id (asserting that each blob is one cluster)."""
    joined = frame.select("customer_id", "blob").join(assignments, on="customer_id")
    per_blob = joined.group_by("blob").agg(pl.col("cluster_id").unique())
    out = {}
    for blob, ids in per_blob.iter_rows():
        assert len(ids) == 1, f"blob {blob} split over clusters {ids}"
        out[blob] = ids[0]
    return out


def test_fnv1a_64_matches_reference_vectors() -> None:
    hashes = fnv1a_64(pl.Series(["", "a", "foobar"]))
    assert hashes.tolist() == [0xCBF29CE484222325, 0xAF63DC4C8601EC8C, 0x85944171F73967E8]


def test_sampling_hash_spreads_ids_sharing_a_prefix() -> None:
    ids = pl.Series([f"c-{i:04d}" for i in range(1000)])
    first_100 = np.argsort(stable_hash(ids), kind="stable")[:100]
    assert first_100.min() < 100 and first_100.max() > 900  # not one run of neighbouring ids


def test_nearest_centroid_ties_go_to_the_lowest_id() -> None:
    z = np.array([[0.0], [0.9], [-2.0]])
    assert nearest_centroid(z, np.array([[-1.0], [1.0]])).tolist() == [0, 1, 0]


def test_shuffled_input_gives_identical_results() -> None:
    frame = _blobs({"big": 10, "mid": 20, "low": 30})
    settings = _settings(sample_size=25)  # fit on a bounded sample, assign everyone
    first = cluster_customers(frame, settings, SNAPSHOT)
    second = cluster_customers(frame.sample(fraction=1.0, shuffle=True, seed=7), settings, SNAPSHOT)
    assert_frame_equal(first.assignments, second.assignments)
    assert_frame_equal(first.profiles, second.profiles)
    assert_frame_equal(first.centroids, second.centroids)
    assert first.assignments["cluster_id"].null_count() == 0
    assert first.params["sample_size"] == 25 and first.params["k"] == 3


def test_each_blob_is_one_cluster_with_a_readable_unique_name() -> None:
    frame = _blobs({"big": 10, "mid": 20, "low": 30})
    result = cluster_customers(frame, _settings(), SNAPSHOT)
    ids = _blob_ids(frame, result.assignments)
    assert sorted(ids.values()) == [0, 1, 2]
    names = dict(result.profiles.select("cluster_id", "cluster_name").iter_rows())
    assert names[ids["big"]] == "high spend · frequent · recent · highly engaged"
    assert names[ids["low"]] == "low spend · rare · lapsed · offline"
    assert len(set(names.values())) == 3


def test_profiles_are_in_original_units() -> None:
    frame = _blobs({"big": 10, "mid": 20, "low": 30})
    result = cluster_customers(frame, _settings(), SNAPSHOT)
    ids = _blob_ids(frame, result.assignments)
    big = result.profiles.filter(pl.col("cluster_id") == ids["big"]).row(0, named=True)
    assert big["snapshot_date"] == SNAPSHOT
    assert big["customers"] == 10 and big["share"] == pytest.approx(10 / 60)
    assert big["monetary_mean"] == pytest.approx(5000.0)
    assert big["frequency_median"] == 12.0
    assert big["sessions_90d_mean"] == pytest.approx(40.0)
    assert result.profiles["share"].sum() == pytest.approx(1.0)


def test_next_snapshot_keeps_ids_matched_to_previous_centroids() -> None:
    before = _blobs({"big": 30, "mid": 20, "low": 10})
    first = cluster_customers(before, _settings(), SNAPSHOT)
    ids_before = _blob_ids(before, first.assignments)
    assert ids_before == {"big": 0, "mid": 1, "low": 2}  # without history: largest cluster first

    # Next day: sizes reversed (so size order alone would swap ids), values perturbed, rows shuffled.
    after = _blobs({"big": 10, "mid": 20, "low": 30}, jitter=0.08, snapshot=NEXT)
    after = after.sample(fraction=1.0, shuffle=True, seed=3)
    fresh = cluster_customers(after, _settings(), NEXT)
    assert _blob_ids(after, fresh.assignments) != ids_before  # the test would catch a no-op

    matched = cluster_customers(after, _settings(), NEXT, previous_centroids=first.centroids)
    assert _blob_ids(after, matched.assignments) == ids_before
    assert matched.params["matched_previous"] is True
    assert [m["cluster_id"] for m in matched.params["matches"]] == [0, 1, 2]


def test_a_new_cluster_gets_the_lowest_unused_id() -> None:
    two = _blobs({"big": 15, "low": 10})
    first = cluster_customers(two, _settings(k=2), SNAPSHOT)
    assert _blob_ids(two, first.assignments) == {"big": 0, "low": 1}
    three = _blobs({"big": 10, "mid": 40, "low": 15})
    second = cluster_customers(three, _settings(k=3), NEXT, previous_centroids=first.centroids)
    assert _blob_ids(three, second.assignments) == {"big": 0, "low": 1, "mid": 2}


def test_centroids_persist_in_log_space_with_the_scaler() -> None:
    frame = _blobs({"big": 10, "mid": 20, "low": 30}, jitter=0.0)
    result = cluster_customers(frame, _settings(), SNAPSHOT)
    assert result.centroids.schema == pl.Schema(CENTROIDS_SCHEMA)
    assert result.centroids.height == 3 * 4
    ids = _blob_ids(frame, result.assignments)
    big_monetary = result.centroids.filter(
        (pl.col("cluster_id") == ids["big"]) & (pl.col("feature") == "monetary")
    ).row(0, named=True)
    assert big_monetary["center"] == pytest.approx(np.log1p(5000.0))
    assert big_monetary["center_std"] * big_monetary["scale_std"] + big_monetary["scale_mean"] == pytest.approx(
        big_monetary["center"]
    )


def test_previous_centroids_over_other_features_restart_ids_with_a_warning() -> None:
    frame = _blobs({"big": 10, "mid": 20, "low": 30})
    previous = cluster_customers(frame, _settings(), SNAPSHOT).centroids.filter(pl.col("feature") != "monetary")
    result = cluster_customers(frame, _settings(), NEXT, previous_centroids=previous)
    assert result.params["matched_previous"] is False
    assert any("cluster ids start afresh" in w for w in result.warnings)


def test_k_chosen_by_silhouette_in_range() -> None:
    frame = _blobs({"big": 10, "mid": 20, "low": 30})
    result = cluster_customers(frame, _settings(k=None, k_range=[2, 5]), SNAPSHOT)
    assert result.params["k"] == 3
    assert set(result.params["silhouette"]) == {"2", "3", "4", "5"}


def test_buyers_population_leaves_non_buyers_unclustered() -> None:
    frame = pl.concat(
        [
            _blobs({"big": 10, "low": 10}),
            pl.DataFrame(
                {
                    "customer_id": ["p-1"],
                    "blob": ["none"],
                    "is_buyer": [False],
                    "frequency": [0],
                    "monetary": [Decimal("0")],
                    "recency_days": [None],
                    "sessions_90d": [3],
                    "snapshot_date": [SNAPSHOT],
                },
                schema_overrides={"monetary": pl.Decimal(18, 2), "recency_days": pl.Int64},
            ),
        ],
        how="diagonal_relaxed",
    )
    buyers = cluster_customers(frame, _settings(k=2), SNAPSHOT)
    assert buyers.assignments.filter(pl.col("customer_id") == "p-1")["cluster_id"].item() is None
    assert buyers.profiles["customers"].sum() == 20
    everyone = cluster_customers(frame, _settings(k=3, population="all"), SNAPSHOT)
    assert everyone.assignments["cluster_id"].null_count() == 0


def test_fewer_distinct_points_than_k_lowers_k_with_a_warning() -> None:
    frame = _blobs({"big": 5, "low": 5}, jitter=0.0)
    result = cluster_customers(frame, _settings(k=5), SNAPSHOT)
    assert result.params["k"] == 2
    assert any("k lowered from 5 to 2" in w for w in result.warnings)


def test_identical_centroids_fall_back_to_the_id() -> None:
    settings = _settings()
    centers = np.zeros((2, len(settings.features)))
    names = cluster_names(centers, [4, 7], settings)
    assert names == {4: "typical #4", 7: "typical #7"}


def test_a_feature_equal_for_everyone_never_names_a_cluster() -> None:
    """Defect: with nobody browsing, every cluster was named "... · browsing"."""
    frame = _blobs({"big": 10, "mid": 20, "low": 30}).with_columns(sessions_90d=pl.lit(0, pl.Int64))
    result = cluster_customers(frame, _settings(), SNAPSHOT)
    names = result.profiles["cluster_name"].to_list()
    assert len(set(names)) == 3
    assert not any(word in name for name in names for word in ("offline", "browsing", "highly engaged"))
    ids = _blob_ids(frame, result.assignments)
    by_id = dict(result.profiles.select("cluster_id", "cluster_name").iter_rows())
    assert by_id[ids["big"]] == "high spend · frequent · recent"


def test_clusters_sharing_words_are_told_apart_by_the_feature_separating_them() -> None:
    """Defect: two distant clusters differed only by "#3/#4"."""
    settings = _settings()
    centers = np.array([[2.5, 0.0, 0.0, 0.0], [0.8, 0.1, 0.0, 0.0], [-1.6, 0.0, 0.0, 0.0]])
    names = cluster_names(centers, [3, 4, 5], settings)
    # only monetary separates the clusters (span 4.1 > 0.5); frequency spans 0.1 and names nothing
    assert names == {3: "high spend (more spend)", 4: "high spend (less spend)", 5: "low spend"}


def test_matched_clusters_keep_their_names_while_centroids_stay_put() -> None:
    """Defect: names flipped between snapshots while centroids barely moved."""
    before = _blobs({"big": 30, "mid": 20, "low": 10})
    first = cluster_customers(before, _settings(), SNAPSHOT)
    # the previous snapshot's names (as stored with its centroids) are what a matched cluster keeps
    previous = first.centroids.with_columns(cluster_name=pl.format("segment {}", pl.col("cluster_id")))
    after = _blobs({"big": 30, "mid": 20, "low": 10}, jitter=0.08, snapshot=NEXT)
    kept = cluster_customers(after, _settings(), NEXT, previous_centroids=previous)
    assert sorted(kept.profiles["cluster_name"].to_list()) == ["segment 0", "segment 1", "segment 2"]
    assert kept.params["names_kept"] == [0, 1, 2]
    assert kept.centroids.filter(pl.col("cluster_id") == 0)["cluster_name"].unique().to_list() == ["segment 0"]
    # a centroid that moved further than name_keep_distance is named afresh
    fresh = cluster_customers(after, _settings(name_keep_distance=0.0), NEXT, previous_centroids=previous)
    assert not any(n.startswith("segment") for n in fresh.profiles["cluster_name"].to_list())


def test_a_fresh_name_equal_to_a_kept_one_is_told_apart() -> None:
    settings = _settings()
    centers = np.array([[2.5, 0.0, 0.0, 0.0], [0.8, 0.1, 0.0, 0.0], [-1.6, 0.0, 0.0, 0.0]])
    names = cluster_names(centers, [3, 4, 5], settings, kept={3: "high spend"})
    assert names == {3: "high spend", 4: "high spend (less spend)", 5: "low spend"}


# ------------------------------------------------------------------ reuse between re-fits (cluster_reuse)


def test_nightly_snapshot_reuses_the_stored_fit_and_assigns_with_its_scaler() -> None:
    from models.cluster_reuse import fit_key

    settings = _settings()
    first = cluster_customers(_blobs({"big": 10, "mid": 20, "low": 30}), settings, SNAPSHOT)
    assert first.params["refit"] is True and first.params["refit_reason"] == "no previous centroids"
    assert first.centroids["fitted_date"].unique().to_list() == [SNAPSHOT]
    assert first.centroids["fit_key"].unique().to_list() == [fit_key(settings)]
    fit_distance = first.centroids["fit_distance"][0]
    assert 0 < fit_distance < 0.5  # tight blobs: every customer is close to its centre

    # The next day: a new customer between "mid" and "big" and 5 more "low"; the stored fit is reused.
    extra = pl.DataFrame(
        {
            "customer_id": ["new-1"],
            "blob": ["new"],
            "is_buyer": [True],
            "frequency": [12],
            "monetary": [Decimal("4000.00")],
            "recency_days": [5],
            "sessions_90d": [35],
        },
        schema_overrides={"monetary": pl.Decimal(18, 2)},
    ).with_columns(snapshot_date=pl.lit(NEXT))
    frame = pl.concat([_blobs({"big": 10, "mid": 20, "low": 35}, snapshot=NEXT), extra], how="vertical_relaxed")
    second = cluster_customers(frame, settings, NEXT, previous_centroids=first.centroids)
    assert second.params["refit"] is False, second.params["refit_reason"]
    assert second.params["refit_reason"] == f"reused the centroids fitted on {SNAPSHOT}"
    keep = [
        "cluster_id",
        "cluster_name",
        "feature",
        "center",
        "center_std",
        "scale_mean",
        "scale_std",
        "fitted_date",
        "fit_distance",
        "fit_key",
    ]
    assert_frame_equal(second.centroids.select(keep), first.centroids.select(keep))
    assert second.centroids["snapshot_date"].unique().to_list() == [NEXT]
    ids = _blob_ids(frame.filter(pl.col("blob") != "new"), second.assignments)
    assert ids == _blob_ids(_blobs({"big": 10, "mid": 20, "low": 30}), first.assignments)
    # the new customer goes to the nearest stored centre in the stored scaler's units, computed here by hand
    cols = [f.column for f in settings.features]
    wide = first.centroids.pivot(on="feature", index="cluster_id", values="center_std").sort("cluster_id")
    scale = first.centroids.group_by("feature").agg(pl.col("scale_mean", "scale_std").first())
    mean = np.array([scale.filter(pl.col("feature") == c)["scale_mean"][0] for c in cols])
    std = np.array([scale.filter(pl.col("feature") == c)["scale_std"][0] for c in cols])
    z = (np.log1p(np.array([4000.0, 12, 5, 35])) - mean) / std
    expected = wide["cluster_id"][int(np.argmin(((wide.select(cols).to_numpy() - z) ** 2).sum(axis=1)))]
    got = second.assignments.filter(pl.col("customer_id") == "new-1")["cluster_id"][0]
    assert got == expected == ids["big"]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("cadence", "days or more ago (refit_every_days)"),
        ("every_snapshot", "refit_every_days = 0"),
        ("settings_changed", "the cluster settings changed since the last fit"),
        ("old_version", "previous centroids do not say when they were fitted"),
        ("drift", "segmentation.clusters.refit_distance_growth"),
    ],
)
def test_stored_fit_is_refitted_on_cadence_settings_change_old_rows_or_drift(case: str, reason: str) -> None:
    settings = _settings()
    first = cluster_customers(_blobs({"big": 10, "mid": 20, "low": 30}), settings, SNAPSHOT)
    previous, when, now = first.centroids, NEXT, settings
    frame = _blobs({"big": 10, "mid": 20, "low": 30}, snapshot=NEXT)
    if case == "cadence":
        when = date(2026, 11, 28)  # 7 days after the fit, refit_every_days = 7
    elif case == "every_snapshot":
        now = _settings(refit_every_days=0)
    elif case == "settings_changed":
        now = _settings(n_init=2)
    elif case == "old_version":
        previous = previous.drop("fitted_date", "fit_distance", "fit_key")
    else:  # every customer's spend x 20: the sample now lies far from every stored centre
        frame = frame.with_columns(pl.col("monetary") * 20)
    out = cluster_customers(frame, now, when, previous_centroids=previous)
    assert out.params["refit"] is True
    assert reason in out.params["refit_reason"]
    assert out.centroids["fitted_date"].unique().to_list() == [when]
    assert any("re-fitted" in w for w in out.warnings) == (case == "drift")
    if case != "drift":  # same data: the re-fit finds the same clusters and keeps their ids
        assert _blob_ids(frame, out.assignments) == _blob_ids(frame, first.assignments)


def test_day_six_still_reuses_and_a_backfill_before_the_fit_refits() -> None:
    settings = _settings()
    first = cluster_customers(_blobs({"big": 10, "mid": 20, "low": 30}), settings, SNAPSHOT)
    frame = _blobs({"big": 10, "mid": 20, "low": 30})
    assert cluster_customers(frame, settings, date(2026, 11, 27), first.centroids).params["refit"] is False
    assert cluster_customers(frame, settings, date(2026, 11, 20), first.centroids).params["refit"] is True
