"""Incremental feature snapshots equal full rebuilds, column for column, along a nightly chain.

The chain: sample landing files (with planted defects) whose last daily files arrive one night at a time,
ingested by the real ingestion into a real DuckDB file. Each night builds the snapshot incrementally and,
into another table, in full; every column of every customer must be equal. Along the way the chain meets
a late file (old dates, loaded tonight), a re-ingested file whose new version drops rows, a two-day step
and a same-day re-run after more data. A planted defect (a window left out of the affected set) must make
the comparison fail, so the comparison can fail.
"""

from __future__ import annotations

import csv
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import project_config
from polars.testing import assert_frame_equal

from features import activity_index, incremental
from features.customer_features import FeatureParams, build_customer_features, read_features
from features.incremental import build_features
from ingestion.loader import ingest_source
from segments.config import settings_from_dict
from segments.sample_data import generate

END = date(2026, 11, 21)
HELD_BACK = 6  # daily files that arrive one night at a time
SOURCES = ("orders", "browsing", "feedback", "customers")
PARAMS = FeatureParams(windows=(7, 30), complaint_window_days=14, reactivation_window_days=60)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("incremental-sample")
    generate(out, customers=250, days=420, end_date=END, seed=23, defects=True, daily_days=HELD_BACK + 2)
    return out


class Chain:
    """A warehouse fed night by night from the sample files, with a full rebuild beside each snapshot."""

    def __init__(self, root: Path, sample: Path, params: FeatureParams = PARAMS) -> None:
        self.sample, self.landing, self.params = sample, root / "landing", params
        for path in sample.rglob("*.*"):
            if not any(f"_{day}." in path.name for day in self._held_back_days()):
                target = self.landing / path.relative_to(sample)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
        raw = project_config(landing_dir=str(self.landing), warehouse=str(root / "w.duckdb"))
        raw["published_dir"] = str(root / "published")
        self.settings = settings_from_dict(raw, root)
        self.con = duckdb.connect(str(root / "w.duckdb"))
        self.runs = 0

    @staticmethod
    def _held_back_days() -> list[date]:
        return [END - timedelta(days=k) for k in range(HELD_BACK)]

    def arrive(self, day: date) -> None:
        for path in self.sample.rglob(f"*_{day}.*"):
            target = self.landing / path.relative_to(self.sample)
            shutil.copy(path, target)

    def ingest(self) -> None:
        self.runs += 1
        for source in SOURCES:
            ingest_source(self.con, self.settings, source, run_id=f"run-{self.runs:03d}", run_ts=datetime(2026, 12, 1))

    def night(self, day: date) -> incremental.FeatureBuild:
        """Ingest what landed, build ``day`` incrementally and in full, and compare every column."""
        self.ingest()
        build = build_features(self.con, day, self.params)
        build_customer_features(self.con, day, self.params, table="features_full")
        incremental_rows = read_features(self.con, day)
        full_rows = read_features(self.con, day, table="features_full")
        assert incremental_rows.height == full_rows.height == build.rows
        assert_frame_equal(incremental_rows, full_rows, check_exact=True)
        return build


def _write_orders(path: Path, rows: list[dict[str, str]]) -> None:
    header = "order_id,line_id,customer_id,order_ts,amount,quantity,unit_price,status,channel,store_id,category,"
    header += "product_id,currency"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header.split(","))
        writer.writeheader()
        writer.writerows(rows)


def _order(order_id: str, customer: str, day: date, amount: str, status: str = "completed") -> dict[str, str]:
    return {
        "order_id": order_id,
        "line_id": "1",
        "customer_id": customer,
        "order_ts": f"{day} 12:00:00",
        "amount": amount,
        "quantity": "1",
        "unit_price": amount,
        "status": status,
        "channel": "online",
        "store_id": "",
        "category": "books",
        "product_id": "P1",
        "currency": "CNY",
    }


def test_nightly_chain_equals_full_rebuilds(tmp_path: Path, sample: Path) -> None:
    chain = Chain(tmp_path, sample)
    first_day = END - timedelta(days=HELD_BACK)
    first = chain.night(first_day)
    assert first.mode == "full" and first.reason == "first snapshot of this warehouse"

    # night 1: tonight's files only
    day = first_day + timedelta(days=1)
    chain.arrive(day)
    build = chain.night(day)
    assert build.mode == "incremental" and build.base_date == first_day
    assert 0 < build.recomputed < build.rows and build.carried == build.rows - build.recomputed

    # night 2: tonight's files plus a late file with old dates for existing customers and a new customer
    day += timedelta(days=1)
    chain.arrive(day)
    old_customer = chain.con.execute(
        "select customer_id from customer_features where snapshot_date = $d and frequency > 2 order by customer_id "
        "limit 1",
        {"d": day - timedelta(days=1)},
    ).fetchall()[0][0]
    _write_orders(
        chain.landing / "orders" / "orders_late.csv",
        [
            _order("LATE1", old_customer, day - timedelta(days=200), "12.50"),
            _order("LATE2", old_customer, day - timedelta(days=29), "7.00", "refunded"),
            _order("LATE3", "C9999999", day - timedelta(days=400), "3.00"),
        ],
    )
    build = chain.night(day)
    assert build.mode == "incremental"
    late = read_features(chain.con, day).filter(pl.col("customer_id").is_in([old_customer, "C9999999"]))
    assert late.height == 2  # the late file's customers are there, recomputed from all their rows

    # night 3: a re-ingested file drops rows (the late file's new version keeps one line)
    day += timedelta(days=1)
    chain.arrive(day)
    _write_orders(chain.landing / "orders" / "orders_late.csv", [_order("LATE1", old_customer, day, "12.50")])
    build = chain.night(day)
    assert build.mode == "incremental"
    assert read_features(chain.con, day).filter(pl.col("customer_id") == "C9999999").is_empty()

    # nights 4 and 5 arrive together: a two-day step
    chain.arrive(day + timedelta(days=1))
    day += timedelta(days=2)
    chain.arrive(day)
    build = chain.night(day)
    assert build.mode == "incremental" and build.base_date == day - timedelta(days=2)

    # the same day again after one more late line: the base is the day itself
    _write_orders(chain.landing / "orders" / "orders_later.csv", [_order("LATE9", old_customer, day, "1.00")])
    build = chain.night(day)
    assert build.mode == "incremental" and build.base_date == day and build.recomputed >= 1

    params = chain.con.execute(
        "select snapshot_date, build_mode, base_date from feature_params order by snapshot_date"
    ).fetchall()
    assert [row[1] for row in params] == ["full"] + ["incremental"] * 4


def test_a_window_left_out_of_the_affected_set_is_caught(
    tmp_path: Path, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planted defect: without the 365-day orders window, customers whose last-year orders expire are carried
    with a stale ``orders_365d``; the comparison with the full rebuild must fail."""
    real = incremental.source_windows

    def without_365(params: FeatureParams) -> dict[str, tuple[int, ...]]:
        windows = real(params)
        return {**windows, "orders": tuple(n for n in windows["orders"] if n != 365)}

    monkeypatch.setattr(incremental, "source_windows", without_365)
    chain = Chain(tmp_path, sample)
    day = END - timedelta(days=HELD_BACK)
    chain.night(day)
    failures = 0
    for _ in range(3):
        day += timedelta(days=1)
        chain.arrive(day)
        try:
            chain.night(day)
        except AssertionError:
            failures += 1
    assert failures >= 1


def test_full_rebuild_when_the_base_cannot_be_used(tmp_path: Path, sample: Path) -> None:
    chain = Chain(tmp_path, sample)
    day = END - timedelta(days=HELD_BACK)
    chain.night(day)

    # other windows: no base built with them
    chain.params = FeatureParams(windows=(14, 30), complaint_window_days=14, reactivation_window_days=60)
    day += timedelta(days=1)
    chain.arrive(day)
    build = chain.night(day)
    assert build.mode == "full" and "no earlier snapshot built with these windows" in build.reason

    # rows written outside ingestion: the index no longer adds up, is rebuilt, and the build is full
    chain.con.execute("insert into orders by name select * from orders where order_date = $d limit 1", {"d": day})
    day += timedelta(days=1)
    chain.arrive(day)
    build = chain.night(day)
    assert build.mode == "full" and "activity index was rebuilt" in build.reason
    assert activity_index.last_rebuild(chain.con) == build.index_seq

    # and the night after is incremental again
    day += timedelta(days=1)
    chain.arrive(day)
    assert chain.night(day).mode == "incremental"


def test_index_counts_add_up_to_the_tables_and_follow_reingestion(tmp_path: Path, sample: Path) -> None:
    chain = Chain(tmp_path, sample)
    chain.ingest()
    first = activity_index.refresh(chain.con)
    assert not first.rebuilt and first.batches_added > 0
    for source, date_col in activity_index.SOURCE_DATES.items():
        table_rows, indexed = chain.con.execute(
            f"select (select count(*) from {source}), (select sum(row_count) from customer_activity_days "
            "where source = $s and removed_seq is null)",
            {"s": source},
        ).fetchall()[0]
        assert table_rows == indexed, source
        per_day = chain.con.execute(
            f"select count(*) from {source} where customer_id = 'C0000007' and {date_col} is not distinct from "
            "(select min(activity_date) from customer_activity_days where source = $s and customer_id = 'C0000007')",
            {"s": source},
        ).fetchall()[0][0]
        indexed_day = chain.con.execute(
            "select coalesce(sum(row_count), 0) from customer_activity_days where source = $s and "
            "customer_id = 'C0000007' and activity_date is not distinct from (select min(activity_date) from "
            "customer_activity_days where source = $s and customer_id = 'C0000007')",
            {"s": source},
        ).fetchall()[0][0]
        assert per_day == indexed_day, source
    again = activity_index.refresh(chain.con)
    assert (again.batches_added, again.batches_removed, again.rebuilt) == (0, 0, False)

    late = chain.landing / "orders" / "orders_late.csv"
    _write_orders(late, [_order("L1", "C0000007", END, "5.00"), _order("L2", "C0000008", END, "6.00")])
    chain.ingest()
    added = activity_index.refresh(chain.con)
    assert (added.batches_added, added.batches_removed) == (1, 0)
    _write_orders(late, [_order("L1", "C0000007", END, "5.00")])
    chain.ingest()
    replaced = activity_index.refresh(chain.con)
    assert (replaced.batches_added, replaced.batches_removed, replaced.rebuilt) == (1, 1, False)
    removed = chain.con.execute(
        "select customer_id, row_count from customer_activity_days where removed_seq = $s order by customer_id",
        {"s": replaced.seq},
    ).fetchall()
    assert removed == [("C0000007", 1), ("C0000008", 1)]
