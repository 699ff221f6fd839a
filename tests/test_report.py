"""The marketer's report: data gathered from a tiny hand-made warehouse, rendered in English and Chinese.

The warehouse (``make_report_warehouse``) holds two snapshots; every expected number below is worked
out by hand from the rows inserted here. ``tests/test_report_chromium.py`` renders the same page in a
real browser.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.publishing import segment_report
from assets.resources import SegmentsResource
from models.registry import Registry, builtin_registry
from models.settings import load_segmentation_settings
from publishing.report import build_report_data, describe_cluster, money, render_report
from segments.config import ConfigError, Settings, settings_from_dict

D0 = date(2026, 11, 14)
D = date(2026, 11, 21)
LATER = date(2026, 11, 28)  # a snapshot after D: never in D's report

# customer_segments at D: 4 customers, 3 buyers, revenue 1,000,000 + 200,000 + 34,567.40 = 1,234,567.40
SEGMENTS_AT_D = [
    ("C1", True, "1000000.00", date(2026, 11, 18)),
    ("C2", True, "200000.00", date(2026, 11, 10)),
    ("C3", True, "34567.40", date(2026, 9, 1)),
    ("C4", False, None, None),
]
# segment_summary rows: (date, segmentation, segment, customers, share, revenue, avg_monetary, avg_freq, avg_rec)
SUMMARY = [
    (D0, "rfm_segment", "champions", 1, 0.25, "900000.00", "900000.00", 9.0, 3.0),
    (D0, "rfm_segment", "loyal", 2, 0.5, "150000.00", "75000.00", 4.0, 20.0),
    (D0, "rfm_segment", "unassigned", 1, 0.25, "0.00", None, None, None),
    (D, "rfm_segment", "loyal", 1, 0.25, "34567.40", "34567.40", 3.0, 81.0),
    (D, "rfm_segment", "champions", 2, 0.5, "1200000.00", "600000.00", 8.5, 7.0),
    (D, "rfm_segment", "unassigned", 1, 0.25, "0.00", None, None, None),
    (D, "cluster", "1", 1, 0.25, "34567.40", "34567.40", 3.0, 81.0),
    (D, "cluster", "0", 2, 0.5, "1200000.00", "600000.00", 8.5, 7.0),
    (D, "cluster", "unassigned", 1, 0.25, "0.00", None, None, None),
    (LATER, "rfm_segment", "lost", 4, 1.0, "0.00", None, None, None),
]
# segment_migrations D0 -> D: C1 stayed champion, C2 loyal -> champions, C3 loyal -> loyal, C4 unassigned,
# and C5 (in D0 only) champions -> (none).
MIGRATIONS = [
    ("champions", "champions", 1),
    ("loyal", "champions", 1),
    ("loyal", "loyal", 1),
    ("unassigned", "unassigned", 1),
    ("champions", "(none)", 1),
]
# cluster_profiles (wide, as the warehouse keeps it): cluster 0 of 2 customers, cluster 1 of 1.
# Overall monetary mean = (2 * 600000 + 1 * 34567.40) / 3 = 411522.47; cluster 0 is 1.458x of it.
PROFILES = [
    (0, "high spend · frequent", 2, 2 / 3, 600000.0, 600000.0, 8.5, 8.5),
    (1, "low spend · rare", 1, 1 / 3, 34567.4, 34567.4, 3.0, 3.0),
]


def make_report_warehouse(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables the report reads, holding the rows above."""
    con.execute(
        "create table customer_segments (snapshot_date date, customer_id varchar, is_buyer boolean, "
        "monetary decimal(18,2), last_purchase_date date)"
    )
    for cid, buyer, monetary, last in SEGMENTS_AT_D:
        con.execute("insert into customer_segments values ($1, $2, $3, $4, $5)", [D, cid, buyer, monetary, last])
    con.execute("insert into customer_segments values ($1, 'C1', true, 5, $2)", [D0, D0])
    con.execute("create table orders (order_id varchar, order_date date)")
    # newest order on or before D is 2026-11-18 -> freshness 3 days; the 11-25 order is after D
    con.executemany(
        "insert into orders values (?, ?)", [("O1", date(2026, 11, 18)), ("O2", D0), ("O3", date(2026, 11, 25))]
    )
    con.execute(
        "create table segment_summary (snapshot_date date, segmentation varchar, segment varchar, customers bigint, "
        "share double, revenue decimal(18,2), avg_monetary decimal(18,2), avg_frequency double, "
        "avg_recency_days double)"
    )
    con.executemany("insert into segment_summary values (?, ?, ?, ?, ?, ?, ?, ?, ?)", SUMMARY)
    con.execute(
        "create table segment_migrations (snapshot_date date, previous_snapshot_date date, segmentation varchar, "
        "from_segment varchar, to_segment varchar, customers bigint)"
    )
    con.executemany(
        "insert into segment_migrations values (?, ?, 'rfm_segment', ?, ?, ?)",
        [(D, D0, f, t, n) for f, t, n in MIGRATIONS],
    )
    con.execute(
        "create table cluster_profiles (snapshot_date date, cluster_id integer, cluster_name varchar, "
        "customers bigint, share double, monetary_mean double, monetary_median double, frequency_mean double, "
        "frequency_median double)"
    )
    con.executemany("insert into cluster_profiles values (?, ?, ?, ?, ?, ?, ?, ?, ?)", [(D, *p) for p in PROFILES])
    con.execute(
        "create table ingest_log (source varchar, path varchar, status varchar, rows_read bigint, "
        "rows_loaded bigint, rows_quarantined bigint, duplicates_dropped bigint, error varchar, run_id varchar, "
        "ingested_at timestamp)"
    )
    con.executemany(
        "insert into ingest_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            # a.csv delivered twice: only the second (latest) attempt counts
            ("orders", "orders/a.csv", "loaded", 10, 6, 4, 0, None, "r1", "2026-11-20 01:00:00"),
            ("orders", "orders/a.csv", "loaded", 12, 7, 4, 1, None, "r2", "2026-11-21 01:00:00"),
            ("orders", "orders/a.csv", "unchanged", 0, 0, 0, 0, None, "r3", "2026-11-22 01:00:00"),
            ("orders", "orders/b.csv", "rejected", 0, 0, 0, 0, "missing required column(s) amount", "r2",
             "2026-11-21 01:00:00"),
            ("browsing", "browsing/x.jsonl", "loaded", 5, 5, 0, 0, None, "r2", "2026-11-21 01:00:00"),
        ],
    )  # fmt: skip
    con.execute(
        "create table quarantine (source varchar, file varchar, line bigint, column_name varchar, value varchar, "
        "reason varchar, run_id varchar, quarantined_at timestamp)"
    )
    con.executemany(
        "insert into quarantine values ('orders', 'orders/a.csv', ?, ?, 'x', ?, 'r2', '2026-11-21 01:00:00')",
        [
            (7, "order_ts", "not a valid timestamp"),
            (3, "order_ts", "not a valid timestamp"),
            (9, "order_ts", "not a valid timestamp"),
            (5, "amount", "below the minimum 0"),
        ],
    )


@pytest.fixture
def settings(tmp_path: Path, make_settings) -> Settings:
    return make_settings(currency="CNY")


@pytest.fixture
def registry() -> Registry:
    return builtin_registry(load_segmentation_settings({}))


@pytest.fixture
def data(con: duckdb.DuckDBPyConnection, registry: Registry, settings: Settings) -> dict:
    make_report_warehouse(con)
    return build_report_data(con, D, registry, settings, warnings=["size drift: <champions> +25 points"])


def _seg(data: dict, name: str) -> dict:
    return next(s for s in data["segmentations"] if s["name"] == name)


def test_totals_count_customers_buyers_revenue_and_data_freshness(data: dict) -> None:
    assert data["totals"] == {
        "customers": 4,
        "buyers": 3,
        "revenue": 1234567.40,
        "newest_order_date": "2026-11-18",
        "freshness_days": 3,
        "snapshots": 2,
        "previous_snapshot": "2026-11-14",
    }
    assert data["currency"] == "CNY"


def test_segment_rows_in_registry_order_with_both_display_names_and_revenue_share(data: dict) -> None:
    rows = _seg(data, "rfm_segment")["rows"]
    assert [(r["key"], r["name_en"], r["name_zh"], r["customers"]) for r in rows] == [
        ("champions", "Champions", "冠军客户", 2),
        ("loyal", "Loyal", "忠诚客户", 1),
        ("unassigned", "Unassigned", "未分配", 1),
    ]
    assert rows[0]["revenue_share"] == pytest.approx(1200000.00 / 1234567.40)
    assert rows[0]["avg_monetary"] == 600000.0
    assert rows[2]["avg_monetary"] is None


def test_every_report_segmentation_of_the_registry_gets_a_section(data: dict, registry: Registry) -> None:
    assert [s["name"] for s in data["segmentations"]] == [s.name for s in registry.where("report")]


def test_trend_holds_the_snapshots_up_to_d_and_none_after(data: dict) -> None:
    seg = _seg(data, "rfm_segment")
    assert seg["snapshots"] == ["2026-11-14", "2026-11-21"]
    assert {(t["snapshot_date"], t["key"]) for t in seg["trend"]} == {
        ("2026-11-14", "champions"),
        ("2026-11-14", "loyal"),
        ("2026-11-14", "unassigned"),
        ("2026-11-21", "champions"),
        ("2026-11-21", "loyal"),
        ("2026-11-21", "unassigned"),
    }


def test_migration_matrix_between_the_last_two_snapshots(data: dict) -> None:
    m = _seg(data, "rfm_segment")["migration"]
    assert m["previous"] == "2026-11-14"
    assert [a["key"] for a in m["from"]] == ["champions", "loyal", "unassigned"]
    assert [a["key"] for a in m["to"]] == ["champions", "loyal", "unassigned", "(none)"]
    assert m["to"][-1]["name_en"] == "(no longer present)"
    assert (m["moved"], m["total"]) == (2, 5)  # loyal -> champions and champions -> (none)
    assert _seg(data, "value_class")["migration"] is None  # not tracked in migrations (registry flag)


def test_clusters_are_named_and_compared_with_the_weighted_average(data: dict) -> None:
    assert _seg(data, "cluster")["rows"][0]["name_en"] == "0 · high spend · frequent"
    c0 = data["clusters"][0]
    monetary = next(f for f in c0["features"] if f["feature"] == "monetary")
    assert monetary["overall"] == pytest.approx((2 * 600000 + 34567.4) / 3)
    lines = describe_cluster(c0, "en", "CNY")
    assert "spend: ¥600,000 on average (everyone: ¥411,522) — 1.5× the average" in lines
    low = describe_cluster(data["clusters"][1], "en", "CNY")
    assert "spend: ¥34,567 on average (everyone: ¥411,522) — 92% below the average" in low
    assert describe_cluster(c0, "zh", "CNY")[0].startswith("消费金额：平均 ¥600,000")


def test_data_quality_counts_the_latest_attempt_of_each_file_and_top_reasons(data: dict) -> None:
    q = data["quality"]
    assert q["sources"] == [
        {"source": "browsing", "files_loaded": 1, "files_rejected": 0, "rows_read": 5, "rows_loaded": 5,
         "rows_quarantined": 0, "duplicates_dropped": 0},
        {"source": "orders", "files_loaded": 1, "files_rejected": 1, "rows_read": 12, "rows_loaded": 7,
         "rows_quarantined": 4, "duplicates_dropped": 1},
    ]  # fmt: skip
    assert [(r["reason"], r["rows"], r["example"]) for r in q["reasons"]] == [
        ("not a valid timestamp", 3, "orders/a.csv:3"),
        ("below the minimum 0", 1, "orders/a.csv:5"),
    ]
    assert q["rejected_files"] == [
        {"source": "orders", "path": "orders/b.csv", "error": "missing required column(s) amount"}
    ]


def test_english_page_shows_totals_display_names_currency_and_escaped_warnings(data: dict) -> None:
    page = render_report(data, "en")
    assert '<html lang="en">' in page
    assert 'id="total-customers">4<' in page
    assert 'id="total-revenue">¥1,234,567<' in page
    assert 'id="freshness">3 days<' in page
    assert "Champions" in page and "冠军客户" not in page
    assert "size drift: &lt;champions&gt; +25 points" in page
    assert "Movements since 2026-11-14" in page
    assert "not a valid timestamp" in page
    assert "churn_drivers" not in page  # the optional tables do not exist here


def test_chinese_page_uses_chinese_names_and_headings(data: dict) -> None:
    page = render_report(data, "zh")
    assert '<html lang="zh-CN">' in page
    for text in ("客户分群报告", "冠军客户", "忠诚客户", "未分配", "数据质量", "自 2026-11-14 以来的迁移"):
        assert text in page
    assert ">Champions<" not in page


def test_page_is_self_contained(data: dict) -> None:
    page = render_report(data, "en")
    assert "<svg" in page
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(", page, re.IGNORECASE)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", page, re.IGNORECASE)


def test_churn_drivers_and_calibration_appear_when_their_tables_exist(
    con: duckdb.DuckDBPyConnection, registry: Registry, settings: Settings
) -> None:
    make_report_warehouse(con)
    con.execute("create table churn_drivers (snapshot_date date, factor varchar, churn_rate double, lift double)")
    con.execute("insert into churn_drivers values ($1, 'nps_class=detractor', 0.42, 2.1)", [D])
    con.execute("insert into churn_drivers values ($1, 'nps_class=promoter', 0.05, 0.2)", [D0])
    page = render_report(build_report_data(con, D, registry, settings), "en")
    section = page[page.index('<section id="churn_drivers">') :]
    assert "nps_class=detractor" in section and "nps_class=promoter" not in section
    assert 'id="model_calibration"' not in page


def test_first_snapshot_says_trends_come_later(
    con: duckdb.DuckDBPyConnection, registry: Registry, settings: Settings
) -> None:
    make_report_warehouse(con)
    data = build_report_data(con, D0, registry, settings)
    assert data["totals"]["previous_snapshot"] is None
    page = render_report(data, "en")
    assert "This is the first snapshot" in page
    assert "The trend appears once there are two snapshots." in page


def test_money_uses_the_currency_symbol_or_the_code() -> None:
    assert money(1234567.4, "CNY") == "¥1,234,567"
    assert money(-5.5, "USD", 2) == "-$5.50"
    assert money(10, "SEK") == "10 SEK"
    assert money(None, "CNY") == "–"


def test_language_must_be_en_or_zh(tmp_path: Path) -> None:
    raw = {"sources": {"orders": {"glob": "orders/*"}}, "language": "fr"}
    with pytest.raises(ConfigError, match=r"language: Input should be 'en' or 'zh'"):
        settings_from_dict(raw, base_dir=tmp_path)
    assert settings_from_dict({**raw, "language": "zh"}, base_dir=tmp_path).language == "zh"


@dg.asset(
    name="published_tables",
    partitions_def=dg.DailyPartitionsDefinition(start_date="2025-01-01", timezone="Asia/Shanghai"),
    check_specs=[
        dg.AssetCheckSpec("share_drift", asset="published_tables"),
        dg.AssetCheckSpec("quiet", asset="published_tables"),
    ],
)
def published_tables_with_a_failed_warn_check() -> dg.MaterializeResult:
    """Stands in for publishing: one failed and one passed WARN check evaluated before the report runs."""
    drift = [{"segment": "champions", "share_change": 0.25}]
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="share_drift",
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"examples": dg.MetadataValue.json(drift)},
            ),
            dg.AssetCheckResult(check_name="quiet", passed=True, severity=dg.AssetCheckSeverity.WARN),
        ]
    )


def test_segment_report_asset_writes_the_dated_and_current_page(tmp_path: Path, make_settings) -> None:
    settings = make_settings(language="zh")
    db = duckdb.connect(str(settings.warehouse))
    make_report_warehouse(db)
    db.close()
    config = tmp_path / "segments.yaml"
    config.write_text(
        f"landing_dir: {tmp_path / 'landing'}\nwarehouse: {settings.warehouse}\n"
        f"published_dir: {settings.published_dir}\nlanguage: zh\nsources: {{orders: {{glob: 'orders/*'}}}}\n",
        encoding="utf-8",
    )
    partitions = published_tables_with_a_failed_warn_check.partitions_def
    report = dg.map_asset_specs(lambda spec: spec.replace_attributes(partitions_def=partitions), [segment_report])
    result = dg.materialize(
        [published_tables_with_a_failed_warn_check, *report],
        partition_key=D.isoformat(),
        resources={"segments": SegmentsResource(config_path=str(config))},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    dated = settings.published_dir / "reports" / "segment_report_2026-11-21.html"
    page = dated.read_text(encoding="utf-8")
    assert 'id="total-customers">4<' in page and "冠军客户" in page
    assert (settings.published_dir / "current" / "segment_report.html").read_text(encoding="utf-8") == page
    meta = result.asset_materializations_for_node("segment_report")[0].metadata
    assert meta["customers"].value == 4 and meta["language"].value == "zh"
    # the failed WARN check of the upstream step reaches the page with its examples; the passed one does not
    assert meta["warnings"].value == 1
    assert "published_tables / share_drift: segment champions, share_change 0.25" in page
    assert "quiet" not in page


def test_names_from_the_data_are_escaped_in_tables_and_charts(data: dict) -> None:
    cluster = _seg(data, "cluster")
    cluster["rows"][0]["name_en"] = "0 · <script>alert(1)</script>"
    page = render_report(data, "en")
    assert "<script" not in page
    assert page.count("0 · &lt;script&gt;alert(1)&lt;/script&gt;") >= 2  # the bar chart's label and the table
