"""The registry of segmentations: labels and flags, and one entry added in a fixture reaching every consumer."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from test_pipeline import AS_OF, write_config

from assets.resources import SegmentsResource
from models.registry import Label, RegistryError, Segmentation, builtin_registry, config_registry
from models.settings import load_segmentation_settings
from pipelines.runner import run_pipeline
from publishing.exports import export_segment
from segments.sample_data import generate

CHANNEL = Segmentation(
    "preferred_channel",
    "preferred_channel",
    "Preferred channel",
    "偏好渠道",
    (Label("online", "Online", "线上"), Label("offline", "Offline", "线下"), Label("app", "App", "应用")),
)


def test_builtin_registry_lists_every_segmentation_with_both_display_names() -> None:
    reg = builtin_registry(load_segmentation_settings())
    assert reg.names == (
        "rfm_segment",
        "value_class",
        "monetary_grade",
        "frequency_grade",
        "engagement_grade",
        "overall_grade",
        "lifecycle_stage",
        # the classifications of the config (value tier first), home store, the cluster, then one entry per tag
        "value_tier",
        "customer_source",
        "preferred_category",
        "satisfaction",
        "age_band",
        "home_region",
        "home_store",
        "cluster",
        "tag_high_value_active",
        "tag_recent_complainer",
        "tag_cart_abandoner",
        "tag_lapsing_top_customer",
    )
    assert {s.kind for s in reg if s.name.startswith("tag_")} == {"tag"}
    rfm = reg.get("rfm_segment")
    assert rfm.label("cant_lose") == Label("cant_lose", "Can't Lose", "不能失去")
    assert rfm.resolve("不能失去") == rfm.resolve("can't lose") == "cant_lose"
    assert reg.get("cluster_id").name == "cluster"  # by column too
    assert [s.name for s in reg.where("migrations")] == [
        "rfm_segment",
        "overall_grade",
        "lifecycle_stage",
        "value_tier",
        "customer_source",
        "preferred_category",
        "satisfaction",
        "age_band",
        "home_region",
        "home_store",
        "cluster",
        "tag_high_value_active",
        "tag_recent_complainer",
        "tag_cart_abandoner",
        "tag_lapsing_top_customer",
    ]
    assert len(reg.where("drift")) == len(reg.names)  # every segmentation is watched for size drift
    with pytest.raises(RegistryError, match="no label 'vip'; known: champions"):
        rfm.resolve("vip")
    with pytest.raises(RegistryError, match="names repeat"):
        reg.extended(rfm)
    # the config's registry adds the prediction, filled after segmentation
    assert config_registry({}).names == (*reg.names, "predicted_churn")


def test_a_segmentation_added_to_the_registry_reaches_summary_migrations_drift_export_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = builtin_registry(load_segmentation_settings()).extended(CHANNEL)
    monkeypatch.setattr(SegmentsResource, "registry", lambda self: registry)
    generate(tmp_path / "landing", customers=300, days=200, end_date=AS_OF, seed=3, defects=False, daily_days=3)
    cfg = write_config(tmp_path)
    for as_of in (date(2026, 11, 20), AS_OF):
        summary = run_pipeline(str(cfg), as_of=as_of, instance=dg.DagsterInstance.ephemeral())
        assert summary["success"], summary["failures"]

    pub = tmp_path / "published"
    summ = pl.read_parquet(pub / "current" / "segment_summary.parquet").filter(
        pl.col("segmentation") == "preferred_channel"
    )
    assert set(summ["segment"]) <= {"online", "offline", "app", "unassigned"} and summ["share"].sum() == pytest.approx(
        1
    )
    moves = pl.read_parquet(pub / "current" / "segment_migrations.parquet")
    assert "preferred_channel" in set(moves["segmentation"])
    segs = pl.read_parquet(pub / "current" / "customer_segments.parquet")
    online = segs.filter(pl.col("preferred_channel") == "online").height
    path, rows = export_segment(pub, registry, by="preferred_channel", segment="线上", out=tmp_path / "online.csv")
    assert rows == online > 0 and path.exists()
    page = (pub / "current" / "segment_report.html").read_text(encoding="utf-8")
    assert "Preferred channel" in page

    # the drift check ran for it: its outcome is in the check's details
    from data_contracts.table_checks import segment_summary_findings
    from segments.warehouse import connect

    with connect(tmp_path / "warehouse.duckdb") as con:
        found = segment_summary_findings(con, AS_OF, registry, max_share_change=0.1, max_unassigned_increase=0.05)
    assert "preferred_channel.segment_share_drift" in [o.check for o in found["segment_share_drift"]]


def test_english_display_names_are_published_beside_the_chinese_ones() -> None:
    from models.published_columns import customer_segments_contract, with_english_names

    settings = load_segmentation_settings()
    registry = config_registry({})
    frame = pl.DataFrame(
        {
            "rfm_segment": ["cant_lose", None],
            "rfm_segment_name": ["不能失去", None],
            "value_tier": ["high_value", "low_value"],
            "value_tier_name": ["高价值", "低价值"],
        }
    )
    out = with_english_names(frame, registry)
    assert out["rfm_segment_name_en"].to_list() == ["Can't Lose", None]
    assert out["value_tier_name_en"].to_list() == ["High value", "Low value"]
    names = customer_segments_contract(settings).column_names
    for col in ("rfm_segment", "value_class", "value_tier", "customer_source"):
        assert names.index(f"{col}_name_en") == names.index(f"{col}_name") + 1, col
