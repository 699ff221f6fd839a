"""segment_summary_by_group on a hand-made customer_segments table: home store and region groups."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb
import polars as pl

from features.group_summary import segment_summary_by_group
from models.registry import Label, Registry, Segmentation

D = date(2026, 11, 21)
REGISTRY = Registry(
    (
        Segmentation("tier", "tier", "Tier", "层级", (Label("hi", "High", "高"), Label("lo", "Low", "低"))),
        Segmentation("home_store", "home_store", "Home store", "所属门店"),
    )
)


def _con(home_store: list[str | None]) -> duckdb.DuckDBPyConnection:
    frame = pl.DataFrame(
        {
            "snapshot_date": [D] * 4,
            "customer_id": ["a", "b", "c", "d"],
            "region": ["east", "east", "north", None],
            "home_store": pl.Series(home_store, dtype=pl.String),
            "tier": ["hi", "lo", "lo", None],
            "monetary": [Decimal("10.00"), Decimal("20.00"), Decimal("30.00"), Decimal("0.00")],
        }
    )
    con = duckdb.connect()
    con.register("frame", frame.to_arrow())
    con.execute("create table customer_segments as select * from frame")
    return con


def test_segments_within_each_home_store_and_region() -> None:
    con = _con(["S01", "S01", "S02", None])
    out = segment_summary_by_group(con, D, REGISTRY, ("region", "home_store"))
    rows = out.select("group_by", "group_value", "segmentation", "segment", "customers", "share").rows()
    assert rows == [
        # home_store is not summarized within itself; customer d (no store purchase) is 'unknown'
        ("home_store", "S01", "tier", "hi", 1, 0.5),
        ("home_store", "S01", "tier", "lo", 1, 0.5),
        ("home_store", "S02", "tier", "lo", 1, 1.0),
        ("home_store", "unknown", "tier", "unassigned", 1, 1.0),
        ("region", "east", "home_store", "S01", 2, 1.0),
        ("region", "east", "tier", "hi", 1, 0.5),
        ("region", "east", "tier", "lo", 1, 0.5),
        ("region", "north", "home_store", "S02", 1, 1.0),
        ("region", "north", "tier", "lo", 1, 1.0),
        ("region", "unknown", "home_store", "unassigned", 1, 1.0),
        ("region", "unknown", "tier", "unassigned", 1, 1.0),
    ]
    assert out.filter(pl.col("group_value") == "S01")["revenue"].to_list() == [Decimal("10.00"), Decimal("20.00")]


def test_a_dataset_without_store_ids_has_no_home_store_rows() -> None:
    con = _con([None, None, None, None])  # orders without store_id: every home_store null
    out = segment_summary_by_group(con, D, REGISTRY, ("region", "home_store"))
    assert set(out["group_by"]) == {"region"} and out.height == 7
    con.execute("alter table customer_segments drop column home_store")  # an older snapshot's table
    out = segment_summary_by_group(con, D, Registry(REGISTRY.segmentations[:1]), ("region", "home_store"))
    assert set(out["group_by"]) == {"region"} and out.height == 4
    only_store = segment_summary_by_group(con, D, REGISTRY, ("home_store",))
    assert only_store.is_empty() and only_store.columns[:3] == ["snapshot_date", "group_by", "group_value"]
