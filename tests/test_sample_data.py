"""Tests for the synthetic landing-zone generator (segments.sample_data)."""

from __future__ import annotations

import gzip
import io
import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from segments import sample_data
from segments.sample_data import (
    BAD_EXPORT_NAME,
    BROWSING_COLUMNS,
    CUSTOMER_COLUMNS,
    EVENT_TYPES,
    FEEDBACK_COLUMNS,
    ORDER_COLUMNS,
    generate,
)

END = date(2026, 11, 21)
END_TS = datetime(2026, 11, 21, 23, 59, 59)
SMALL = {"customers": 1_500, "days": 400, "end_date": END, "seed": 7}
TS_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


# ---------------------------------------------------------------------------------------------
# Helpers and fixtures
# ---------------------------------------------------------------------------------------------
def _csv_bytes(path: Path) -> bytes:
    """File content, gunzipped when the name ends in .gz."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def _read_csv_source(root: Path, source: str) -> pl.DataFrame:
    """All regular period files of a CSV source as text columns, plus the file name in ``_file``."""
    frames = []
    for path in sorted((root / source).glob(f"{source}_*")):
        if path.name == BAD_EXPORT_NAME:
            continue
        df = pl.read_csv(io.BytesIO(_csv_bytes(path)), infer_schema=False)
        frames.append(df.with_columns(_file=pl.lit(path.name)))
    return pl.concat(frames)


def _read_browsing(root: Path) -> pl.DataFrame:
    """All browsing Parquet files, plus the file name in ``_file``."""
    frames = [
        pl.read_parquet(p).with_columns(_file=pl.lit(p.name)) for p in sorted((root / "browsing").glob("*.parquet"))
    ]
    return pl.concat(frames)


def _all_files(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under ``root``."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A small clean landing dir (defects=False)."""
    root = tmp_path_factory.mktemp("clean")
    return root, generate(root, defects=False, **SMALL)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """The same data with planted defects (defects=True)."""
    root = tmp_path_factory.mktemp("dirty")
    return root, generate(root, defects=True, **SMALL)


@pytest.fixture(scope="module")
def orders(clean: tuple[Path, dict[str, int]]) -> pl.DataFrame:
    """Clean order lines with typed columns."""
    return _read_csv_source(clean[0], "orders").with_columns(
        pl.col("order_ts").str.to_datetime("%Y-%m-%d %H:%M:%S"),
        pl.col("line_id", "quantity").cast(pl.Int64),
        pl.col("amount", "unit_price").cast(pl.Decimal(18, 2)),
    )


@pytest.fixture(scope="module")
def per_customer(orders: pl.DataFrame) -> pl.DataFrame:
    """Completed purchases per customer: first/last day, order count, largest gap in days."""
    days = (
        orders.filter(pl.col("status") == "completed")
        .select("customer_id", "order_id", day=pl.col("order_ts").dt.date())
        .unique()
    )
    return (
        days.group_by("customer_id")
        .agg(
            first=pl.col("day").min(),
            last=pl.col("day").max(),
            n_orders=pl.col("order_id").n_unique(),
            max_gap=pl.col("day").unique().sort().diff().dt.total_days().max(),
        )
        .with_columns(
            recency=(pl.lit(END) - pl.col("last")).dt.total_days(),
            age=(pl.lit(END) - pl.col("first")).dt.total_days(),
        )
    )


# ---------------------------------------------------------------------------------------------
# Determinism and layout
# ---------------------------------------------------------------------------------------------
def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    args = {"customers": 400, "days": 120, "end_date": END, "seed": 3, "daily_days": 5}
    first = generate(tmp_path / "a", **args)
    second = generate(tmp_path / "b", **args)
    assert first == second
    files_a, files_b = _all_files(tmp_path / "a"), _all_files(tmp_path / "b")
    assert files_a.keys() == files_b.keys()
    assert [name for name in files_a if files_a[name] != files_b[name]] == []


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    generate(tmp_path / "a", customers=300, days=60, seed=1)
    generate(tmp_path / "b", customers=300, days=60, seed=2)
    name = "customers/customers.csv"
    assert _all_files(tmp_path / "a")[name] != _all_files(tmp_path / "b")[name]


def test_layout_daily_recent_days_monthly_history_and_gzip_every_other_month(
    dirty: tuple[Path, dict[str, int]],
) -> None:
    root, counts = dirty
    daily = [(END - timedelta(days=i)).isoformat() for i in range(14)]
    months = [f"{y}-{m:02d}" for y, m in [(2025, 10), (2025, 11), (2025, 12)]] + [f"2026-{m:02d}" for m in range(1, 12)]
    gz_months = {m for m in months if int(m[5:]) % 2 == 0}
    expected = {"customers/customers.csv", f"orders/{BAD_EXPORT_NAME}"}
    for period in daily + months:
        orders_ext = ".csv.gz" if period in gz_months else ".csv"
        expected |= {
            f"orders/orders_{period}{orders_ext}",
            f"browsing/browsing_{period}.parquet",
            f"feedback/feedback_{period}.csv",
        }
    assert set(_all_files(root)) == expected
    assert counts["files"] == len(expected) == 86
    assert gzip.decompress((root / "orders" / "orders_2026-10.csv.gz").read_bytes()).startswith(b"order_id,")


@pytest.mark.parametrize(
    ("days", "daily_days", "n_daily", "n_monthly"),
    [(10, 30, 10, 0), (40, 0, 0, 2), (31, 5, 5, 2)],
)
def test_short_spans_split_into_daily_and_monthly_files(
    tmp_path: Path, days: int, daily_days: int, n_daily: int, n_monthly: int
) -> None:
    generate(tmp_path, customers=200, days=days, end_date=END, daily_days=daily_days)
    names = [p.name for p in (tmp_path / "feedback").iterdir()]
    assert sum(bool(re.fullmatch(r"feedback_\d{4}-\d{2}-\d{2}\.csv", n)) for n in names) == n_daily
    assert sum(bool(re.fullmatch(r"feedback_\d{4}-\d{2}\.csv", n)) for n in names) == n_monthly


def test_columns_are_exactly_the_contract_columns_in_order(dirty: tuple[Path, dict[str, int]]) -> None:
    root, _ = dirty
    for source, columns in (("orders", ORDER_COLUMNS), ("feedback", FEEDBACK_COLUMNS)):
        for path in (root / source).glob(f"{source}_*"):
            if path.name != BAD_EXPORT_NAME:
                assert _csv_bytes(path).split(b"\n", 1)[0].decode() == ",".join(columns), path.name
    header = (root / "customers" / "customers.csv").read_bytes().split(b"\n", 1)[0].decode()
    assert header == ",".join(CUSTOMER_COLUMNS)
    assert ORDER_COLUMNS[:4] == ("order_id", "line_id", "customer_id", "order_ts")
    for path in (root / "browsing").glob("*.parquet"):
        schema = pl.read_parquet_schema(path)
        assert tuple(schema) == BROWSING_COLUMNS
        assert schema["event_ts"] == pl.Datetime("us", time_zone=None)
        assert schema["duration_s"].is_integer()


def test_csv_is_utf8_with_unix_line_ends_and_quotes_commas(clean: tuple[Path, dict[str, int]]) -> None:
    root, _ = clean
    text = b"".join(_csv_bytes(p) for p in (root / "feedback").iterdir()).decode("utf-8")
    assert "\r" not in text
    feedback = _read_csv_source(root, "feedback")
    comments = set(feedback["comment"].drop_nulls())
    assert any(re.search(r"[\u4e00-\u9fff]", c) for c in comments)
    assert any("," in c for c in comments)
    assert any('"' in c for c in comments)
    assert feedback.filter(pl.col("comment").is_null()).height > 0  # empty field = null


def test_counts_match_rows_written(dirty: tuple[Path, dict[str, int]]) -> None:
    root, counts = dirty
    assert counts["orders_lines"] == _read_csv_source(root, "orders").height
    assert counts["feedback_rows"] == _read_csv_source(root, "feedback").height
    assert counts["browsing_events"] == _read_browsing(root).height
    assert counts["customers"] == SMALL["customers"]
    assert pl.read_csv(root / "customers" / "customers.csv", infer_schema=False).height == SMALL["customers"]


def test_every_row_sits_in_the_file_of_its_period_and_files_are_sorted(
    clean: tuple[Path, dict[str, int]],
) -> None:
    root, _ = clean
    sources = {
        "orders": (_read_csv_source(root, "orders"), "order_ts"),
        "feedback": (_read_csv_source(root, "feedback"), "submitted_ts"),
        "browsing": (_read_browsing(root), "event_ts"),
    }
    for source, (df, ts) in sources.items():
        typed = df.with_columns(pl.col(ts).cast(pl.String).str.slice(0, 19).str.to_datetime())
        period = pl.col("_file").str.extract(r"_(\d{4}-\d{2}(?:-\d{2})?)\.")
        wrong = typed.filter(~pl.col(ts).dt.strftime("%Y-%m-%d").str.starts_with(period))
        assert wrong.height == 0, (source, wrong.head())
        unsorted = typed.group_by("_file").agg(ok=pl.col(ts).is_sorted()).filter(~pl.col("ok"))
        assert unsorted.height == 0, (source, unsorted)


# ---------------------------------------------------------------------------------------------
# Archetypes
# ---------------------------------------------------------------------------------------------
def test_lapsed_customers_have_nothing_for_over_180_days(per_customer: pl.DataFrame) -> None:
    lapsed = per_customer.filter((pl.col("recency") > 180) & (pl.col("n_orders") >= 3))
    assert lapsed.height >= 50


def test_new_customers_first_bought_within_30_days(per_customer: pl.DataFrame) -> None:
    assert per_customer.filter(pl.col("age") < 30).height >= 40


def test_winback_customers_return_after_a_gap_over_180_days(per_customer: pl.DataFrame) -> None:
    winback = per_customer.filter((pl.col("max_gap") > 180) & (pl.col("recency") <= 90))
    assert winback.height >= 40


def test_at_risk_customers_last_bought_91_to_180_days_ago(per_customer: pl.DataFrame) -> None:
    assert per_customer.filter(pl.col("recency").is_between(91, 180)).height >= 80


def test_one_off_and_loyal_frequent_recent_buyers_exist(per_customer: pl.DataFrame) -> None:
    assert per_customer.filter(pl.col("n_orders") == 1).height >= 100
    loyal = per_customer.filter((pl.col("n_orders") >= 10) & (pl.col("recency") <= 30))
    assert loyal.height >= 50


def test_spend_is_heavy_tailed(orders: pl.DataFrame) -> None:
    spend = (
        orders.filter(pl.col("status") == "completed")
        .group_by("customer_id")
        .agg(pl.col("amount").sum().cast(pl.Float64))
    )["amount"]
    assert spend.quantile(0.99) > 10 * spend.median()


def test_prospects_and_unknown_ids_follow_the_archetypes(
    clean: tuple[Path, dict[str, int]], orders: pl.DataFrame
) -> None:
    root, _ = clean
    customers = set(pl.read_csv(root / "customers" / "customers.csv", infer_schema=False)["customer_id"])
    buyers = set(orders["customer_id"])
    browsing = _read_browsing(root)
    browsers = set(browsing["customer_id"].drop_nulls())
    feedback = set(_read_csv_source(root, "feedback")["customer_id"])
    assert buyers <= customers
    assert feedback <= customers
    assert len((browsers & customers) - buyers) >= 100  # browse-only
    assert len(customers - buyers - browsers - feedback) >= 100  # registered, never active
    assert len(feedback - buyers - browsers) >= 20  # feedback-only
    assert 0 < len(browsers - customers) <= 0.02 * len(browsers)  # a few ids unknown to customers
    anonymous = browsing["customer_id"].null_count() / browsing.height
    assert 0.10 < anonymous < 0.20


def test_buyers_browse_more_and_checkout_precedes_online_orders(
    clean: tuple[Path, dict[str, int]], orders: pl.DataFrame, per_customer: pl.DataFrame
) -> None:
    browsing = _read_browsing(clean[0])
    events = browsing.group_by("customer_id").len()
    joined = per_customer.join(events, on="customer_id", how="left").fill_null(0)
    frequent = joined.filter(pl.col("n_orders") >= 5)["len"].mean()
    one_off = joined.filter(pl.col("n_orders") == 1)["len"].mean()
    assert frequent > 2 * one_off
    online = (
        orders.filter(pl.col("channel") != "offline", pl.col("line_id") == 1, pl.col("status") != "refunded")
        .select("customer_id", "order_ts")
        .sort("order_ts")
    )
    checkouts = (
        browsing.filter(pl.col("event_type") == "checkout")
        .select("customer_id", checkout_ts="event_ts")
        .sort("checkout_ts")
    )
    near = online.join_asof(
        checkouts,
        left_on="order_ts",
        right_on="checkout_ts",
        by="customer_id",
        strategy="backward",
        tolerance=timedelta(minutes=15),
        check_sortedness=False,  # sorted by time overall; polars cannot verify that per group
    )
    assert near["checkout_ts"].is_not_null().mean() > 0.7


def test_signup_precedes_first_activity(clean: tuple[Path, dict[str, int]], per_customer: pl.DataFrame) -> None:
    customers = pl.read_csv(clean[0] / "customers" / "customers.csv", infer_schema=False)
    signup = customers.select("customer_id", signup=pl.col("signup_ts").str.to_datetime().dt.date())
    late = per_customer.join(signup, on="customer_id").filter(pl.col("signup") > pl.col("first"))
    assert late.height == 0
    assert customers["email"].null_count() < customers.height
    assert set(customers["gender"]) <= {"F", "M", "U"}


# ---------------------------------------------------------------------------------------------
# Order semantics
# ---------------------------------------------------------------------------------------------
def test_orders_have_1_to_5_sale_lines_sharing_time_and_channel(orders: pl.DataFrame) -> None:
    sales = orders.filter(pl.col("status") != "refunded")
    per_order = sales.group_by("order_id").agg(
        n=pl.len(),
        max_line=pl.col("line_id").max(),
        ts=pl.col("order_ts").n_unique(),
        channel=pl.col("channel").n_unique(),
        status=pl.col("status").n_unique(),
    )
    assert per_order["n"].min() >= 1
    assert per_order["n"].max() <= 5
    assert (per_order["n"] == per_order["max_line"]).all()
    assert (per_order["ts"] == 1).all()
    assert (per_order["channel"] == 1).all()
    assert (per_order["status"] == 1).all()  # cancelled orders: every line cancelled
    cancelled = per_order.filter(pl.col("order_id").is_in(sales.filter(pl.col("status") == "cancelled")["order_id"]))
    assert 0.01 < cancelled.height / per_order.height < 0.06


def test_sale_lines_are_priced_consistently(orders: pl.DataFrame) -> None:
    sales = orders.filter(pl.col("status") != "refunded")
    assert (sales["amount"] == sales["quantity"] * sales["unit_price"]).all()
    assert (orders["amount"] > 0).all()
    assert (orders["quantity"] >= 1).all()
    assert set(orders["currency"]) == {"CNY"}
    offline = orders["channel"] == "offline"
    assert orders.filter(offline)["store_id"].str.contains(r"^S\d{3}$").all()
    assert orders.filter(~offline)["store_id"].is_null().all()
    assert orders["category"].n_unique() == 10


def test_refunds_follow_their_order_and_never_pass_the_end_date(orders: pl.DataFrame) -> None:
    refunds = orders.filter(pl.col("status") == "refunded")
    sales = (
        orders.filter(pl.col("status") != "refunded")
        .group_by("order_id")
        .agg(
            sold_ts=pl.col("order_ts").first(),
            last_line=pl.col("line_id").max(),
            biggest_line=pl.col("amount").max(),
            cancelled=(pl.col("status") == "cancelled").any(),
        )
    )
    joined = refunds.join(sales, on="order_id", how="left")
    assert refunds.height > 0
    assert joined["sold_ts"].is_not_null().all()
    assert (joined["order_ts"] > joined["sold_ts"]).all()
    assert (joined["order_ts"] <= END_TS).all()
    assert (joined["line_id"] == joined["last_line"] + 1).all()  # a new line number
    assert (joined["amount"] <= joined["biggest_line"]).all()
    assert not joined["cancelled"].any()
    share = refunds.height / sales.filter(~pl.col("cancelled")).height
    assert 0.02 < share < 0.06


# ---------------------------------------------------------------------------------------------
# Clean vs planted defects
# ---------------------------------------------------------------------------------------------
def test_clean_data_passes_every_row_rule(clean: tuple[Path, dict[str, int]], orders: pl.DataFrame) -> None:
    root, counts = clean
    assert counts["defect_rows"] == 0
    assert counts["bad_file_rows"] == 0
    assert not (root / "orders" / BAD_EXPORT_NAME).exists()
    assert orders.select(pl.col("order_id", "line_id")).is_duplicated().sum() == 0
    assert orders["customer_id"].null_count() == 0
    assert set(orders["status"]) <= {"completed", "cancelled", "refunded"}
    assert orders["order_ts"].max() <= END_TS
    feedback = _read_csv_source(root, "feedback").with_columns(
        pl.col("submitted_ts").str.to_datetime("%Y-%m-%d %H:%M:%S"), pl.col("rating", "nps").cast(pl.Int64)
    )
    assert feedback["submitted_ts"].max() <= END_TS
    assert feedback["rating"].drop_nulls().is_between(1, 5).all()
    assert feedback["nps"].drop_nulls().is_between(0, 10).all()
    assert feedback["feedback_id"].is_unique().all()
    assert feedback.filter(pl.all_horizontal(pl.col("rating", "nps", "comment").is_null())).height == 0
    surveys = feedback.filter(pl.col("kind") == "survey")
    assert surveys["nps"].is_not_null().mean() > feedback.filter(pl.col("kind") != "survey")["nps"].is_not_null().mean()
    browsing = _read_browsing(root)
    assert browsing["session_id"].null_count() == 0
    assert set(browsing["event_type"]) <= set(EVENT_TYPES)
    assert browsing["event_ts"].max() <= END_TS
    assert (browsing["duration_s"] >= 0).all()
    customers = pl.read_csv(root / "customers" / "customers.csv", infer_schema=False)
    assert customers["customer_id"].is_unique().all()
    assert customers["signup_ts"].str.contains(TS_TEXT.pattern).all()


def test_defects_are_planted_in_every_source(dirty: tuple[Path, dict[str, int]]) -> None:
    root, counts = dirty
    orders = _read_csv_source(root, "orders")
    amount = orders["amount"]
    assert (amount == "abc").any()
    assert (amount == "NaN").any()
    assert amount.str.starts_with("-").any()
    assert (amount.cast(pl.Float64, strict=False) >= 1e12).any()
    assert (orders["order_ts"] == "2026-13-45 25:00:00").any()
    assert orders["order_ts"].str.starts_with("2031-").any()
    assert orders["customer_id"].is_null().any()
    assert (orders["status"] == "shipped").any()
    assert (orders["currency"] == "XYZ").any()
    assert orders.drop("_file").is_duplicated().any()  # verbatim copies
    key = orders.select("order_id", "line_id").is_duplicated()
    assert (
        orders.filter(key).drop("_file").unique().height
        > orders.filter(key).select("order_id", "line_id").unique().height
    )

    feedback = _read_csv_source(root, "feedback")
    assert (feedback["rating"] == "7").any()
    assert (feedback["nps"] == "11").any()
    assert feedback["customer_id"].is_null().any()
    assert feedback["submitted_ts"].str.starts_with("2031-").any()
    assert feedback.drop("_file").is_duplicated().any()

    browsing = _read_browsing(root)
    assert browsing["session_id"].is_null().any()
    assert (~browsing["event_type"].is_in(EVENT_TYPES)).any()
    assert (browsing["event_ts"].dt.year() == 2031).any()

    bad = pl.read_csv(root / "orders" / BAD_EXPORT_NAME, infer_schema=False)
    assert "amount" not in bad.columns
    assert bad.height == counts["bad_file_rows"] > 0


def test_defect_count_matches_the_rows_that_differ_from_the_clean_run(
    clean: tuple[Path, dict[str, int]], dirty: tuple[Path, dict[str, int]]
) -> None:
    """Defects use their own random stream, so the dirty run is the clean run plus the defects."""

    def extra_rows(dirty_df: pl.DataFrame, clean_df: pl.DataFrame) -> int:
        dirty_rows = Counter(dirty_df.drop("_file").hash_rows(seed=0).to_list())
        clean_rows = Counter(clean_df.drop("_file").hash_rows(seed=0).to_list())
        return sum((dirty_rows - clean_rows).values())

    extra = sum(
        extra_rows(_read_csv_source(dirty[0], s), _read_csv_source(clean[0], s)) for s in ("orders", "feedback")
    )
    extra += extra_rows(_read_browsing(dirty[0]), _read_browsing(clean[0]))
    defects = dirty[1]["defect_rows"]
    assert extra == defects
    rows = sum(dirty[1][k] for k in ("orders_lines", "browsing_events", "feedback_rows"))
    assert 0.002 < defects / rows < 0.006


def test_feedback_ratings_follow_the_kind(clean: tuple[Path, dict[str, int]]) -> None:
    feedback = _read_csv_source(clean[0], "feedback").with_columns(pl.col("rating").cast(pl.Int64))
    mean = dict(feedback.group_by("kind").agg(pl.col("rating").mean()).iter_rows())
    assert set(mean) == {"survey", "review", "complaint", "support"}
    assert mean["complaint"] < mean["review"] - 1


def test_browsing_generated_in_small_blocks_stays_sorted_and_within_the_span(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample_data, "_SESSION_BLOCK", 97)
    counts = generate(tmp_path, customers=300, days=200, end_date=END, defects=False)
    browsing = _read_browsing(tmp_path)
    assert browsing.height == counts["browsing_events"] > 0
    assert browsing.group_by("_file").agg(ok=pl.col("event_ts").is_sorted())["ok"].all()
    assert browsing["event_ts"].max() <= END_TS
    assert browsing["event_ts"].min() >= datetime.combine(END - timedelta(days=199), datetime.min.time())
    assert browsing["session_id"].null_count() == 0
    # events of a session stay in time order and close together
    spans = browsing.group_by("session_id").agg(span=pl.col("event_ts").max() - pl.col("event_ts").min())
    assert spans["span"].max() < timedelta(days=1)


def test_invalid_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="customers"):
        generate(tmp_path, customers=0)
    with pytest.raises(ValueError, match="days"):
        generate(tmp_path, days=0)
