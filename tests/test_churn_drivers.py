"""Churn drivers on a hand-made customer_segments snapshot: rates, lifts and counts worked out by hand."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.churn_drivers import DRIVERS, DRIVERS_SCHEMA, churn_drivers

D = date(2026, 11, 21)
COLUMNS = [
    "customer_id", "is_buyer", "lifecycle_stage", "nps_class", "complaints_90d", "avg_rating", "source_channel",
    "region", "top_category", "cluster_id", "cluster_name", "predicted_churn",
]  # fmt: skip
ROWS = [
    ("b1", True, "churned", "detractor", 1, 2.0, "ads", "east", "books", 0, "lapsed", "churn"),
    ("b2", True, "churned", "detractor", 0, None, "ads", "east", "toys", 0, "lapsed", "churn"),
    ("b3", True, "at_risk", "passive", 1, 3.5, "ads", "west", "books", 1, "recent", "alive"),
    ("b4", True, "active", "promoter", 0, 4.5, "seo", "west", "books", 1, "recent", "alive"),
    ("b5", True, "active", None, 0, None, "seo", None, "toys", 1, "recent", "alive"),
    ("b6", True, "churned", "promoter", 0, 5.0, "seo", "east", "books", 0, "lapsed", "churn"),
    ("b7", True, "new", "passive", 0, 4.0, None, "west", None, 1, "recent", "alive"),
    ("b8", True, "at_risk", "detractor", 0, 1.0, "ads", "east", "toys", 0, "lapsed", "churn"),
    ("p1", False, "prospect", "detractor", 3, 1.0, "ads", "east", None, None, None, None),  # not a buyer
]


def _warehouse(path: Path, with_prediction: bool = True) -> duckdb.DuckDBPyConnection:
    frame = pl.DataFrame(ROWS, schema=COLUMNS, orient="row").with_columns(snapshot_date=pl.lit(D))
    other_day = frame.head(2).with_columns(snapshot_date=pl.lit(date(2026, 11, 20)), lifecycle_stage=pl.lit("new"))
    data = pl.concat([frame, other_day])
    if not with_prediction:
        data = data.drop("predicted_churn")
    con = duckdb.connect(str(path))
    con.register("_rows", data.to_arrow())
    con.execute("create table customer_segments as select * from _rows")
    con.unregister("_rows")
    return con


def _row(table: pl.DataFrame, driver: str, value: str) -> dict:
    return table.filter((pl.col("driver") == driver) & (pl.col("driver_value") == value)).row(0, named=True)


def test_rates_and_lifts_by_driver_hand_computed(tmp_path: Path) -> None:
    table = churn_drivers(_warehouse(tmp_path / "w.duckdb"), D)
    # Overall: 8 buyers (the prospect and the other snapshot left out), churned b1 b2 b6 = 3/8,
    # at risk b3 b8 = 2/8, predicted churn b1 b2 b6 b8 = 4/8.
    overall = _row(table, "all", "all")
    assert (overall["buyers"], overall["churned"], overall["at_risk"]) == (8, 3, 2)
    assert (overall["churn_rate"], overall["at_risk_rate"], overall["predicted_churn_rate"]) == (0.375, 0.25, 0.5)
    assert (overall["churn_lift"], overall["at_risk_lift"]) == (1.0, 1.0)

    got = table.filter(pl.col("driver").is_in(["nps_class", "satisfaction"])).select(
        "driver", "driver_value", "buyers", "churned", "at_risk", "churn_rate", "churn_lift", "at_risk_lift"
    )
    expected = pl.DataFrame(
        [
            # detractors b1 b2 b8: churned 2/3, lift (2/3)/(3/8) = 16/9; at risk 1/3, lift (1/3)/(1/4) = 4/3
            ("nps_class", "detractor", 3, 2, 1, 2 / 3, 16 / 9, 4 / 3),
            ("nps_class", "passive", 2, 0, 1, 0.0, 0.0, 2.0),  # b3 b7
            ("nps_class", "promoter", 2, 1, 0, 0.5, 4 / 3, 0.0),  # b4 b6
            ("nps_class", "unknown", 1, 0, 0, 0.0, 0.0, 0.0),  # b5 never answered
            ("satisfaction", "dissatisfied", 2, 1, 1, 0.5, 4 / 3, 2.0),  # b1 2.0, b8 1.0
            ("satisfaction", "neutral", 1, 0, 1, 0.0, 0.0, 4.0),  # b3 3.5
            ("satisfaction", "satisfied", 3, 1, 0, 1 / 3, 8 / 9, 0.0),  # b4 4.5, b6 5.0, b7 4.0 (boundary)
            ("satisfaction", "unknown", 2, 1, 0, 0.5, 4 / 3, 0.0),  # b2 b5: no rating
        ],
        schema={c: DRIVERS_SCHEMA[c] for c in got.columns},
        orient="row",
    )
    assert_frame_equal(got, expected)

    complaint = _row(table, "recent_complaint", "yes")  # b1 b3
    assert (complaint["buyers"], complaint["churn_rate"], complaint["at_risk_lift"]) == (2, 0.5, 2.0)
    lapsed = _row(table, "cluster", "0")
    assert (lapsed["value_label"], lapsed["buyers"], lapsed["churn_lift"]) == ("lapsed", 4, 2.0)
    assert (lapsed["predicted_churn_rate"], lapsed["predicted_churn_lift"]) == (1.0, 2.0)
    assert _row(table, "source_channel", "unknown")["buyers"] == 1  # b7
    assert _row(table, "region", "east")["buyer_share"] == 0.5


def test_every_driver_covers_every_buyer_once(tmp_path: Path) -> None:
    table = churn_drivers(_warehouse(tmp_path / "w.duckdb"), D)
    assert sorted(table["driver"].unique().to_list()) == sorted(["all", *DRIVERS])
    per_driver = table.group_by("driver").agg(pl.col("buyers").sum(), pl.col("churned").sum())
    assert per_driver["buyers"].unique().to_list() == [8]
    assert per_driver["churned"].unique().to_list() == [3]
    assert table.select("driver", "driver_value").is_duplicated().sum() == 0
    assert table.columns == list(DRIVERS_SCHEMA)


def test_without_predictions_the_predicted_rates_are_null(tmp_path: Path) -> None:
    table = churn_drivers(_warehouse(tmp_path / "w.duckdb", with_prediction=False), D)
    assert table["predicted_churn_rate"].null_count() == table.height
    assert _row(table, "all", "all")["churn_rate"] == 0.375


def test_a_snapshot_without_buyers_gives_an_empty_table(tmp_path: Path) -> None:
    assert churn_drivers(_warehouse(tmp_path / "w.duckdb"), date(2020, 1, 1)).height == 0


def test_the_complaint_window_column_is_found_by_name(tmp_path: Path) -> None:
    """A configured complaint window of 60 days names the column complaints_60d."""
    con = _warehouse(tmp_path / "w.duckdb")
    con.execute("alter table customer_segments rename column complaints_90d to complaints_60d")
    assert _row(churn_drivers(con, D), "recent_complaint", "yes")["buyers"] == 2


def test_the_satisfaction_classification_is_used_when_published(tmp_path: Path) -> None:
    con = _warehouse(tmp_path / "w.duckdb")
    con.execute("alter table customer_segments add column satisfaction varchar default 'satisfied'")
    table = churn_drivers(con, D)
    assert table.filter(pl.col("driver") == "satisfaction")["driver_value"].to_list() == ["satisfied"]


def test_missing_table_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="customer_segments"):
        churn_drivers(duckdb.connect(str(tmp_path / "empty.duckdb")), D)
