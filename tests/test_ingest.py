"""Ingestion of landing files: row rules, a corpus of bad inputs, idempotence and row accounting.

Every file is built by hand inside the test (tmp_path); the run time is fixed, never the wall clock.
Expected quarantine rows are (file, line, column_name, value, reason), worked out by hand.
"""

from __future__ import annotations

import gzip
import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingestion.loader import FileRejected, IngestReport, detect_format, discover_files, ingest_source
from segments.config import Settings
from segments.warehouse import connect

RUN_TS = datetime(2026, 11, 22, 12)
ORDERS_HEADER = "order_id,customer_id,order_ts,amount"
GOOD = "o1,c1,2026-11-21 00:30:00,10"

DECIMAL_REASON = "not a valid decimal: expected a number with at most 16 digits before the point"
TIMESTAMP_REASON = "not a valid timestamp: expected a timestamp (ISO 8601)"
SYMBOL_REASON = (
    "a currency symbol in a number: set sources.orders.currency_symbol to strip it (the currency code comes "
    "from a currency column or sources.orders.currency)"
)
COMMA_REASON = (
    "a ',' in a number: set sources.orders.thousands_separator: ',' (for 1,234.50) or "
    "sources.orders.decimal_separator: ',' (for 10,50)"
)
FUTURE_REASON = "in the future: after the ingest run time 2026-11-22 12:00:00 UTC"


# ------------------------------------------------------------------------------------------------ helpers
def write(landing: Path, rel: str, content: str | bytes) -> Path:
    """Write one landing file (text as UTF-8, bytes as is)."""
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def csv_text(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


def ingest(
    con: duckdb.DuckDBPyConnection, settings: Settings, source: str = "orders", run_id: str = "t"
) -> IngestReport:
    return ingest_source(con, settings, source, run_id=run_id, run_ts=RUN_TS)


def quarantine(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute("select file, line, column_name, value, reason from quarantine order by file, line").fetchall()


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    return con.execute(sql).fetchall()[0][0]


def accounting(report: IngestReport) -> list[tuple[str, str, int, int, int, int]]:
    """(path, status, read, loaded, quarantined, dropped) per file, after checking each file balances."""
    for f in report.files:
        assert f.balanced, f
    return [
        (f.path, f.status, f.rows_read, f.rows_loaded, f.rows_quarantined, f.duplicates_dropped) for f in report.files
    ]


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Everything ingestion writes, in a stable order."""
    return {
        t: con.execute(f"select * from {t} order by all").fetchall()
        for t in ("orders", "quarantine", "ingest_manifest", "ingest_log")
    }


# ------------------------------------------------------------------------------------ 1. row rules
# A valid row per source; each case overrides some values of a second row that breaks one rule.
BASE_ROWS: dict[str, dict[str, str]] = {
    "orders": {"order_id": "o1", "customer_id": "c1", "order_ts": "2026-11-21 00:30:00", "amount": "10"},
    "browsing": {"customer_id": "c1", "session_id": "s1", "event_ts": "2026-11-21 00:30:00", "event_type": "search"},
    "feedback": {
        "feedback_id": "f1",
        "customer_id": "c1",
        "submitted_ts": "2026-11-21 00:30:00",
        "kind": "survey",
        "rating": "4",
    },
    "customers": {"customer_id": "c1"},
}
KEY_OF_SECOND_ROW = {
    "orders": {"order_id": "o2"},
    "feedback": {"feedback_id": "f2"},
    "customers": {"customer_id": "c2"},
}

RULE_CASES = [
    # (source, overrides of the bad row, column_name, value, reason)
    ("orders", {"customer_id": ""}, "customer_id", None, "missing required value"),
    ("orders", {"customer_id": "   "}, "customer_id", None, "missing required value"),
    ("orders", {"amount": ""}, "amount", None, "missing required value"),
    ("orders", {"quantity": "1.5"}, "quantity", "1.5", "not a valid integer: expected an integer"),
    ("orders", {"quantity": "two"}, "quantity", "two", "not a valid integer: expected an integer"),
    ("orders", {"line_id": "1e3"}, "line_id", "1e3", "not a valid integer: expected an integer"),
    ("orders", {"amount": "12.50.1"}, "amount", "12.50.1", DECIMAL_REASON),
    ("orders", {"amount": "¥10"}, "amount", "¥10", SYMBOL_REASON),
    ("orders", {"order_ts": "2026-02-30 10:00:00"}, "order_ts", "2026-02-30 10:00:00", TIMESTAMP_REASON),
    ("orders", {"order_ts": "yesterday"}, "order_ts", "yesterday", TIMESTAMP_REASON),
    ("orders", {"amount": "-0.01"}, "amount", "-0.01", "below the minimum 0"),
    ("orders", {"amount": "10000000.01"}, "amount", "10000000.01", "above the maximum 10000000"),
    ("orders", {"quantity": "-1"}, "quantity", "-1", "below the minimum 0"),
    ("orders", {"quantity": "100001"}, "quantity", "100001", "above the maximum 100000"),
    ("orders", {"unit_price": "-5"}, "unit_price", "-5", "below the minimum 0"),
    (
        "orders",
        {"status": "shipped"},
        "status",
        "shipped",
        "not an accepted value (expected one of: completed, cancelled, refunded)",
    ),
    (
        "orders",
        {"status": "Completed"},
        "status",
        "Completed",
        "not an accepted value (expected one of: completed, cancelled, refunded)",
    ),
    ("orders", {"channel": "web"}, "channel", "web", "not an accepted value (expected one of: online, offline, app)"),
    ("orders", {"currency": "EUR"}, "currency", "EUR", "not an accepted value (expected one of: CNY, USD)"),
    ("orders", {"order_ts": "2026-11-22 12:00:01"}, "order_ts", "2026-11-22 12:00:01", FUTURE_REASON),
    # 20:00:01 at +08:00 is 12:00:01 UTC: one second after the run.
    ("orders", {"order_ts": "2026-11-22T20:00:01+08:00"}, "order_ts", "2026-11-22T20:00:01+08:00", FUTURE_REASON),
    (
        "browsing",
        {"event_type": "click"},
        "event_type",
        "click",
        "not an accepted value (expected one of: page_view, product_view, search, add_to_cart, remove_from_cart, "
        "checkout, login)",
    ),
    ("browsing", {"session_id": ""}, "session_id", None, "missing required value"),
    ("browsing", {"duration_s": "-1"}, "duration_s", "-1", "below the minimum 0"),
    ("browsing", {"duration_s": "86401"}, "duration_s", "86401", "above the maximum 86400"),
    ("browsing", {"event_ts": "2027-01-01 00:00:00"}, "event_ts", "2027-01-01 00:00:00", FUTURE_REASON),
    (
        "feedback",
        {"rating": "", "nps": "", "comment": ""},
        "rating,nps,comment",
        None,
        "none of rating, nps, comment is present (at least one is required)",
    ),
    ("feedback", {"rating": "0"}, "rating", "0", "below the minimum 1"),
    ("feedback", {"rating": "4.5"}, "rating", "4.5", "not a valid integer: expected an integer"),
    ("feedback", {"rating": "", "nps": "11"}, "nps", "11", "above the maximum 10"),
    (
        "feedback",
        {"kind": "praise"},
        "kind",
        "praise",
        "not an accepted value (expected one of: survey, review, complaint, support)",
    ),
    ("customers", {"birth_year": "1899"}, "birth_year", "1899", "below the minimum 1900"),
    ("customers", {"signup_ts": "2026-11-23 00:00:00"}, "signup_ts", "2026-11-23 00:00:00", FUTURE_REASON),
]


@pytest.mark.parametrize(
    ("source", "overrides", "column", "value", "reason"),
    RULE_CASES,
    ids=[f"{c[0]}-{c[2]}-{c[4][:24]}-{'|'.join(c[1].values())}" for c in RULE_CASES],
)
def test_row_breaking_a_rule_is_quarantined_with_line_column_value_and_reason(
    landing, make_settings, con, source, overrides, column, value, reason
):
    good = BASE_ROWS[source]
    bad = {**good, **KEY_OF_SECOND_ROW.get(source, {}), **overrides}
    cols = list(dict.fromkeys([*good, *bad]))
    write(
        landing,
        f"{source}/day.csv",
        csv_text(",".join(cols), ",".join(good.get(c, "") for c in cols), ",".join(bad[c] for c in cols)),
    )
    settings = make_settings(**{source: {"glob": f"{source}/*"}}, currencies=["CNY", "USD"])

    report = ingest(con, settings, source)

    assert accounting(report) == [(f"{source}/day.csv", "loaded", 2, 1, 1, 0)]
    assert quarantine(con) == [(f"{source}/day.csv", 3, column, value, reason)]
    assert con.execute(f"select _line, _run_id from {source}").fetchall() == [(2, "t")]
    assert scalar(con, "select run_id from quarantine") == "t"
    assert scalar(con, "select quarantined_at from quarantine") == RUN_TS


def test_timestamp_exactly_at_the_run_time_is_not_in_the_future(landing, make_settings, con):
    write(landing, "orders/day.csv", csv_text(ORDERS_HEADER, "o1,c1,2026-11-22 12:00:00,10"))
    report = ingest(con, make_settings(), "orders")
    assert accounting(report) == [("orders/day.csv", "loaded", 1, 1, 0, 0)]


def test_an_aware_run_time_is_compared_in_utc(landing, make_settings, con):
    write(landing, "orders/day.csv", csv_text(ORDERS_HEADER, "o1,c1,2026-11-22 11:00:00,10"))
    # 20:00 at +10:00 is 10:00 UTC, so an order at 11:00 UTC is in the future.
    run_ts = datetime(2026, 11, 22, 20, tzinfo=timezone(timedelta(hours=10)))
    ingest_source(con, make_settings(), "orders", run_id="t", run_ts=run_ts)
    assert [q[4] for q in quarantine(con)] == ["in the future: after the ingest run time 2026-11-22 10:00:00 UTC"]


def test_first_broken_rule_in_contract_column_order_is_the_reason(landing, make_settings, con):
    write(landing, "orders/day.csv", csv_text(ORDERS_HEADER, "o1,,not-a-date,-5"))
    ingest(con, make_settings(), "orders")
    assert quarantine(con) == [("orders/day.csv", 2, "customer_id", None, "missing required value")]


def test_valid_row_is_stored_with_contract_types_utc_timestamp_local_date_and_defaults(landing, make_settings, con):
    write(landing, "orders/day.csv", csv_text(ORDERS_HEADER, "o1,c1,2026-11-21 00:30:00,12.34"))
    settings = make_settings(time_zone="Asia/Shanghai")

    ingest(con, settings, "orders")

    row = con.execute(
        "select order_id, line_id, customer_id, order_ts, order_date, amount, status, currency from orders"
    ).fetchall()
    # Naive 00:30 in Shanghai (UTC+8) is 16:30 UTC the day before; the local business date stays the 21st.
    assert row == [
        ("o1", 1, "c1", datetime(2026, 11, 20, 16, 30), date(2026, 11, 21), Decimal("12.34"), "completed", "CNY")
    ]
    types = dict(
        con.execute(
            "select column_name, data_type from information_schema.columns where table_name = 'orders'"
        ).fetchall()
    )
    assert types["amount"] == "DECIMAL(18,2)"
    assert types["unit_price"] == "DECIMAL(18,2)"
    assert types["order_ts"] == "TIMESTAMP"
    assert types["order_date"] == "DATE"
    assert types["line_id"] == "BIGINT"


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        ("2026-11-21T00:30:00+08:00", datetime(2026, 11, 20, 16, 30)),
        ("2026-11-21 00:30:00-05:00", datetime(2026, 11, 21, 5, 30)),
        ("2026-11-21T00:30:00Z", datetime(2026, 11, 21, 0, 30)),
        ("2026-11-21T00:30:00.250+0100", datetime(2026, 11, 20, 23, 30, 0, 250000)),
        # Naive values are read in the source's zone (Shanghai below).
        ("2026-11-21 00:30:00", datetime(2026, 11, 20, 16, 30)),
        ("2026-11-21T00:30:00", datetime(2026, 11, 20, 16, 30)),
    ],
)
def test_timestamp_offset_in_the_value_wins_over_the_source_time_zone(landing, make_settings, con, value, utc):
    write(landing, "orders/day.csv", csv_text(ORDERS_HEADER, f"o1,c1,{value},1"))
    ingest(con, make_settings(orders={"glob": "orders/*", "time_zone": "Asia/Shanghai"}), "orders")
    assert quarantine(con) == []
    assert scalar(con, "select order_ts from orders") == utc


def test_source_time_zone_reads_the_timestamp_and_business_time_zone_sets_the_local_date(landing, make_settings, con):
    write(landing, "orders/day.csv", csv_text(ORDERS_HEADER, "o1,c1,2026-11-21 20:00:00,1"))
    settings = make_settings(orders={"glob": "orders/*", "time_zone": "America/New_York"}, time_zone="Asia/Shanghai")
    ingest(con, settings, "orders")
    # 20:00 in New York (UTC-5 in November) is 01:00 UTC on the 22nd, 09:00 on the 22nd in Shanghai.
    assert con.execute("select order_ts, order_date from orders").fetchall() == [
        (datetime(2026, 11, 22, 1, 0), date(2026, 11, 22))
    ]


def test_renames_and_timestamp_format_from_config_are_honoured(landing, make_settings, con):
    write(
        landing,
        "orders/day.csv",
        csv_text("Order_ID,member_no,paid_at,amount,line_id", "o1,m7,21/11/2026 08:05,99.9,3", "o2,m8,2026-11-21,1,"),
    )
    settings = make_settings(
        orders={
            "glob": "orders/*",
            "rename": {"member_no": "customer_id", "paid_at": "order_ts"},
            "timestamp_format": "%d/%m/%Y %H:%M",
        }
    )
    report = ingest(con, settings, "orders")
    assert report.files[0].warnings == []
    assert con.execute("select order_id, line_id, customer_id, order_ts, amount from orders order by 1").fetchall() == [
        ("o1", 3, "m7", datetime(2026, 11, 21, 8, 5), Decimal("99.90")),
        # ISO values are accepted alongside the configured format.
        ("o2", 1, "m8", datetime(2026, 11, 21), Decimal("1.00")),
    ]


def test_bad_timestamp_reason_names_the_configured_format(landing, make_settings, con):
    write(landing, "orders/day.csv", csv_text(ORDERS_HEADER, "o1,c1,21.11.2026,1"))
    ingest(con, make_settings(orders={"glob": "orders/*", "timestamp_format": "%d/%m/%Y %H:%M"}), "orders")
    assert quarantine(con) == [
        ("orders/day.csv", 2, "order_ts", "21.11.2026", "not a valid timestamp: expected a timestamp (%d/%m/%Y %H:%M)")
    ]


def test_missing_currency_defaults_to_the_source_currency_and_present_one_is_kept(landing, make_settings, con):
    write(
        landing,
        "orders/day.csv",
        csv_text(ORDERS_HEADER + ",currency", "o1,c1,2026-11-21 00:30:00,1,", "o2,c1,2026-11-21 00:30:00,1,CNY"),
    )
    settings = make_settings(orders={"glob": "orders/*", "currency": "USD"}, currencies=["CNY", "USD"])
    ingest(con, settings, "orders")
    assert con.execute("select order_id, currency from orders order by 1").fetchall() == [("o1", "USD"), ("o2", "CNY")]


def test_whole_number_written_as_float_is_an_integer(landing, make_settings, con):
    write(landing, "orders/day.csv", csv_text(ORDERS_HEADER + ",quantity,line_id", f"{GOOD},3.0,+2"))
    ingest(con, make_settings(), "orders")
    assert con.execute("select quantity, line_id from orders").fetchall() == [(3, 2)]


def test_anonymous_browsing_event_is_loaded_not_quarantined(landing, make_settings, con):
    write(landing, "browsing/day.csv", csv_text("session_id,event_ts,event_type", "s1,2026-11-21 00:30:00,search"))
    report = ingest(con, make_settings(browsing={"glob": "browsing/*"}), "browsing")
    assert accounting(report) == [("browsing/day.csv", "loaded", 1, 1, 0, 0)]
    assert con.execute("select customer_id, event_date from browsing").fetchall() == [(None, date(2026, 11, 21))]


# ------------------------------------------------------------------------------- 2. bad-input corpus
def _parquet(con: duckdb.DuckDBPyConnection, tmp: Path, select_sql: str) -> bytes:
    out = tmp / "built.parquet"
    con.execute(f"copy ({select_sql}) to '{out}' (format parquet)")
    data = out.read_bytes()
    out.unlink()
    return data


def _gzip_truncated() -> bytes:
    body = csv_text(ORDERS_HEADER, *(f"o{i},c{i},2026-11-21 00:30:00,{i}" for i in range(2000)))
    data = gzip.compress(body.encode())
    return data[: len(data) // 2]


H = ORDERS_HEADER
ROW2 = "o2,c2,2026-11-21 00:30:00,20"

# id -> (files, expected accounting per file, expected quarantine rows, expected error/warning text per file)
CORPUS: dict[str, tuple[dict[str, Any], list[tuple[Any, ...]], list[tuple[Any, ...]], dict[str, str]]] = {
    "empty_file_0_bytes": (
        {"orders/a.csv": b""},
        [("orders/a.csv", "rejected", 0, 0, 0, 0)],
        [],
        {"orders/a.csv": "file is empty (0 bytes)"},
    ),
    "header_only": (
        {"orders/a.csv": csv_text(H)},
        [("orders/a.csv", "loaded", 0, 0, 0, 0)],
        [],
        {"orders/a.csv": "header only: no data rows"},
    ),
    "wrong_delimiter": (
        {"orders/a.csv": csv_text(H.replace(",", ";"), GOOD.replace(",", ";"))},
        [("orders/a.csv", "rejected", 0, 0, 0, 0)],
        [],
        {
            "orders/a.csv": "missing required column(s) order_id, customer_id, order_ts, amount "
            "(found: order_id;customer_id;order_ts;amount). The header looks ';'-delimited while the config "
            "says ',': set sources.orders.delimiter. Map your column names with sources.orders.rename in the config."
        },
    ),
    "utf8_bom": (
        {"orders/a.csv": "\ufeff" + csv_text(H, GOOD)},
        [("orders/a.csv", "loaded", 1, 1, 0, 0)],
        [],
        {},
    ),
    "crlf_line_endings": (
        {"orders/a.csv": csv_text(H, GOOD, ROW2).replace("\n", "\r\n")},
        [("orders/a.csv", "loaded", 2, 2, 0, 0)],
        [],
        {},
    ),
    "header_in_other_case_with_spaces": (
        {"orders/a.csv": csv_text(" Order_ID , Customer_ID,ORDER_TS,Amount", GOOD)},
        [("orders/a.csv", "loaded", 1, 1, 0, 0)],
        [],
        {},
    ),
    "non_utf8_byte_in_a_data_line": (
        {"orders/a.csv": csv_text(H).encode() + b"o1,c\xff1,2026-11-21 00:30:00,10\n" + csv_text(ROW2).encode()},
        [("orders/a.csv", "loaded", 2, 1, 1, 0)],
        [
            (
                "orders/a.csv",
                2,
                "customer_id",
                "o1,c?1,2026-11-21 00:30:00,10",
                "unparseable line (invalid encoding): Invalid unicode (byte sequence mismatch) detected. "
                "This file is not utf-8 encoded.",
            )
        ],
        {},
    ),
    "gbk_encoded_file": (
        # A legacy Chinese export: ASCII lines load, lines with GBK bytes are quarantined one by one.
        {
            "orders/a.csv": csv_text(H + ",category").encode()
            + "o1,c1,2026-11-21 00:30:00,10,服装\n".encode("gbk")
            + csv_text(ROW2 + ",shoes").encode()
        },
        [("orders/a.csv", "loaded", 2, 1, 1, 0)],
        [
            (
                "orders/a.csv",
                2,
                "category",
                "o1,c1,2026-11-21 00:30:00,10,??װ",
                "unparseable line (invalid encoding): Invalid unicode (byte sequence mismatch) detected. "
                "This file is not utf-8 encoded.",
            )
        ],
        {},
    ),
    "non_utf8_header": (
        {"orders/a.csv": b"order_id,customer_id,order_ts,amount\xe9\n" + csv_text(GOOD).encode()},
        [("orders/a.csv", "rejected", 0, 0, 0, 0)],
        [],
        {"orders/a.csv": "line 1 (header) is not valid UTF-8 at byte 36; re-export the file as UTF-8"},
    ),
    "missing_required_column": (
        {"orders/a.csv": csv_text("order_id,order_ts,amount", "o1,2026-11-21 00:30:00,10")},
        [("orders/a.csv", "rejected", 0, 0, 0, 0)],
        [],
        {
            "orders/a.csv": "missing required column(s) customer_id (found: order_id, order_ts, amount). "
            "Map your column names with sources.orders.rename in the config."
        },
    ),
    "two_columns_map_to_one_contract_column": (
        {"orders/a.csv": csv_text(H + ",Amount", GOOD + ",11")},
        [("orders/a.csv", "rejected", 0, 0, 0, 0)],
        [],
        {"orders/a.csv": "columns 'amount' and 'Amount' both map to contract column 'amount'"},
    ),
    "extra_unknown_column": (
        {"orders/a.csv": csv_text(H + ",coupon", GOOD + ",XMAS")},
        [("orders/a.csv", "loaded", 1, 1, 0, 0)],
        [],
        {"orders/a.csv": "ignored column(s) not in the orders contract: coupon"},
    ),
    "unparseable_date": (
        {"orders/a.csv": csv_text(H, GOOD, "o2,c2,21-11-2026 25:61,20")},
        [("orders/a.csv", "loaded", 2, 1, 1, 0)],
        [("orders/a.csv", 3, "order_ts", "21-11-2026 25:61", TIMESTAMP_REASON)],
        {},
    ),
    "future_date": (
        {"orders/a.csv": csv_text(H, GOOD, "o2,c2,2030-01-01 00:00:00,20")},
        [("orders/a.csv", "loaded", 2, 1, 1, 0)],
        [("orders/a.csv", 3, "order_ts", "2030-01-01 00:00:00", FUTURE_REASON)],
        {},
    ),
    "negative_amount": (
        {"orders/a.csv": csv_text(H, GOOD, "o2,c2,2026-11-21 00:30:00,-20")},
        [("orders/a.csv", "loaded", 2, 1, 1, 0)],
        [("orders/a.csv", 3, "amount", "-20", "below the minimum 0")],
        {},
    ),
    "nan_amount": (
        {"orders/a.csv": csv_text(H, GOOD, "o2,c2,2026-11-21 00:30:00,NaN", "o3,c3,2026-11-21 00:30:00,inf")},
        [("orders/a.csv", "loaded", 3, 1, 2, 0)],
        [("orders/a.csv", 3, "amount", "NaN", DECIMAL_REASON), ("orders/a.csv", 4, "amount", "inf", DECIMAL_REASON)],
        {},
    ),
    "absurdly_large_amount": (
        {
            "orders/a.csv": csv_text(
                H, GOOD, "o2,c2,2026-11-21 00:30:00,99999999999999999999", "o3,c3,2026-11-21 00:30:00,1e9"
            )
        },
        [("orders/a.csv", "loaded", 3, 1, 2, 0)],
        [
            ("orders/a.csv", 3, "amount", "99999999999999999999", DECIMAL_REASON),
            ("orders/a.csv", 4, "amount", "1e9", "above the maximum 10000000"),
        ],
        {},
    ),
    "duplicate_key_different_content_in_one_file": (
        {"orders/a.csv": csv_text(H, GOOD, ROW2, "o1,c1,2026-11-21 00:30:00,11")},
        [("orders/a.csv", "loaded", 3, 1, 2, 0)],
        [
            (
                "orders/a.csv",
                line,
                "order_id,line_id",
                "o1, 1",
                "duplicate key (order_id, line_id) = (o1, 1) with different content in the same file (lines 2, 4)",
            )
            for line in (2, 4)
        ],
        {},
    ),
    "duplicate_key_with_an_exact_copy_in_one_file": (
        # Lines 2 and 5 are identical: both versions are quarantined once, the extra copy is dropped.
        {"orders/a.csv": csv_text(H, GOOD, ROW2, "o1,c1,2026-11-21 00:30:00,11", GOOD)},
        [("orders/a.csv", "loaded", 4, 1, 2, 1)],
        [
            (
                "orders/a.csv",
                line,
                "order_id,line_id",
                "o1, 1",
                "duplicate key (order_id, line_id) = (o1, 1) with different content in the same file (lines 2, 4)",
            )
            for line in (2, 4)
        ],
        {},
    ),
    "duplicate_key_different_content_across_files": (
        {"orders/a.csv": csv_text(H, GOOD), "orders/b.csv": csv_text(H, ROW2, "o1,c1,2026-11-21 00:30:00,11")},
        [("orders/a.csv", "loaded", 1, 1, 0, 0), ("orders/b.csv", "loaded", 2, 1, 1, 0)],
        [
            (
                "orders/b.csv",
                3,
                "order_id,line_id",
                "o1, 1",
                "duplicate key (order_id, line_id) = (o1, 1) with different content: already loaded from "
                "orders/a.csv line 2",
            )
        ],
        {},
    ),
    "exact_duplicate_row_in_one_file": (
        {"orders/a.csv": csv_text(H, GOOD, ROW2, GOOD, GOOD)},
        [("orders/a.csv", "loaded", 4, 2, 0, 2)],
        [],
        {},
    ),
    "exact_duplicate_row_across_files": (
        {"orders/a.csv": csv_text(H, GOOD), "orders/b.csv": csv_text(H, ROW2, GOOD, GOOD)},
        [("orders/a.csv", "loaded", 1, 1, 0, 0), ("orders/b.csv", "loaded", 3, 1, 0, 2)],
        [],
        {},
    ),
    "same_row_written_differently_is_an_exact_duplicate": (
        # Equal after typing: 10 == 10.00, and the same instant with an explicit offset.
        {"orders/a.csv": csv_text(H, GOOD, "o1,c1,2026-11-21T00:30:00Z,10.00")},
        [("orders/a.csv", "loaded", 2, 1, 0, 1)],
        [],
        {},
    ),
    "truncated_gzip": (
        {"orders/a.csv.gz": _gzip_truncated()},
        [("orders/a.csv.gz", "rejected", 0, 0, 0, 0)],
        [],
        {"orders/a.csv.gz": "cannot read the file: corrupt or truncated gzip compression"},
    ),
    "gzip_csv": (
        {"orders/a.csv.gz": gzip.compress(csv_text(H, GOOD, ROW2).encode())},
        [("orders/a.csv.gz", "loaded", 2, 2, 0, 0)],
        [],
        {},
    ),
    "parquet_with_amount_as_string": (
        {
            "orders/a.parquet": "select 'o1' as order_id, 'c1' as customer_id, "
            "timestamp '2026-11-21 00:30:00' as order_ts, '10' as amount, 'x' as quantity"
        },
        [("orders/a.parquet", "rejected", 0, 0, 0, 0)],
        [],
        {
            "orders/a.parquet": "Parquet column types do not match the contract: amount is VARCHAR, expected a "
            "numeric type; quantity is VARCHAR, expected an integer type"
        },
    ),
    "parquet_with_a_bad_row": (
        {
            "orders/a.parquet": "select * from (values "
            "('o1', 'c1', timestamp '2026-11-21 00:30:00', 10.5::decimal(9,2)), "
            "('o2', 'c2', timestamp '2030-01-01 00:00:00', 3)) t(order_id, customer_id, order_ts, amount)"
        },
        [("orders/a.parquet", "loaded", 2, 1, 1, 0)],
        [("orders/a.parquet", 2, "order_ts", "2030-01-01 00:00:00", FUTURE_REASON)],
        {},
    ),
    "not_really_parquet": (
        {"orders/a.parquet": b"PAR1 this is not a parquet file"},
        [("orders/a.parquet", "rejected", 0, 0, 0, 0)],
        [],
        {"orders/a.parquet": "cannot read the file: "},
    ),
    "json_lines_with_mixed_value_types": (
        {
            "orders/a.jsonl": '{"order_id": "o1", "customer_id": 7, "order_ts": "2026-11-21 00:30:00", "amount": 10}\n'
            '{"order_id": "o2", "customer_id": "c2", "order_ts": "2026-11-21 00:30:00", "amount": "20.5"}\n'
            '{"order_id": "o3", "customer_id": "c3", "order_ts": "2026-11-21 00:30:00", "amount": "abc"}\n'
        },
        [("orders/a.jsonl", "loaded", 3, 2, 1, 0)],
        [("orders/a.jsonl", 3, "amount", "abc", DECIMAL_REASON)],
        {},
    ),
    "json_lines_with_a_malformed_line": (
        {
            "orders/a.jsonl": '{"order_id": "o1", "customer_id": "c1", "order_ts": "2026-11-21", "amount": 1}\n'
            '{"order_id": "o2", "customer_id": \n'
        },
        # The bad line is quarantined (its text withheld: it may carry keys beyond the contract), the rest loads.
        [("orders/a.jsonl", "loaded", 2, 1, 1, 0)],
        [
            (
                "orders/a.jsonl",
                2,
                None,
                "<line withheld: it may hold PII (34 characters)>",
                "unparseable line (not valid JSON): Expecting value",
            )
        ],
        {},
    ),
    "line_with_too_many_columns": (
        {"orders/a.csv": csv_text(H, GOOD, "o2,c2,2026-11-21 00:30:00,20,surplus", "o3,c3,2026-11-21 00:30:00,30")},
        [("orders/a.csv", "loaded", 3, 2, 1, 0)],
        [
            (
                "orders/a.csv",
                3,
                None,
                "o2,c2,2026-11-21 00:30:00,20,surplus",
                "unparseable line (too many columns): Expected Number of Columns: 4 Found: 5",
            )
        ],
        {},
    ),
    "line_with_too_few_columns": (
        {"orders/a.csv": csv_text(H, "o2,c2,2026-11-21 00:30:00", GOOD)},
        [("orders/a.csv", "loaded", 2, 1, 1, 0)],
        [
            (
                "orders/a.csv",
                2,
                "amount",
                "o2,c2,2026-11-21 00:30:00",
                "unparseable line (missing columns): Expected Number of Columns: 4 Found: 3",
            )
        ],
        {},
    ),
    "unknown_file_extension": (
        {"orders/a.xlsx": b"PK\x03\x04"},
        [("orders/a.xlsx", "rejected", 0, 0, 0, 0)],
        [],
        {
            "orders/a.xlsx": "cannot tell the format of a.xlsx from its extension; name it "
            ".csv/.csv.gz/.parquet/.jsonl or set sources.<source>.format in the config"
        },
    ),
    "hidden_and_in_flight_files_are_skipped": (
        {"orders/.a.csv": csv_text(H, GOOD), "orders/b.csv.part": csv_text(H, GOOD), "orders/~c.csv": b"x"},
        [],
        [],
        {},
    ),
}


@pytest.mark.parametrize("case", list(CORPUS), ids=list(CORPUS))
def test_bad_input_corpus(tmp_path, landing, make_settings, con, case):
    files, expected_files, expected_quarantine, messages = CORPUS[case]
    for rel, content in files.items():
        if rel.endswith(".parquet") and isinstance(content, str):
            content = _parquet(con, tmp_path, content)
        write(landing, rel, content)

    report = ingest(con, make_settings(), "orders")

    assert accounting(report) == expected_files
    assert quarantine(con) == expected_quarantine
    for f in report.files:
        text = f.error if f.status == "rejected" else "; ".join(f.warnings)
        assert text.startswith(messages.get(f.path, "")), text
        if f.status != "rejected":
            assert f.error is None
        if not messages.get(f.path):
            assert f.warnings == []
    loaded = {f.path: f.rows_loaded for f in report.files}
    per_file = dict(con.execute("select _file, count(*) from orders group by 1").fetchall())
    assert per_file == {p: n for p, n in loaded.items() if n}
    manifest = con.execute(
        "select path, status, rows_read, rows_loaded, rows_quarantined, duplicates_dropped from ingest_manifest "
        "order by path"
    ).fetchall()
    assert manifest == expected_files


def test_line_numbers_stay_exact_around_runs_of_unparseable_lines(landing, make_settings, con):
    lines = [H]
    bad_lines = {3, 4, 6, 9, 10, 11, 13}
    for line in range(2, 14):
        lines.append(f"o{line},c1,2026-11-21 00:30:00,1" + (",surplus" if line in bad_lines else ""))
    write(landing, "orders/a.csv", csv_text(*lines))
    ingest(con, make_settings(), "orders")
    # order o<N> sits on line N, whether it was loaded or quarantined.
    assert con.execute("select order_id, _line from orders order by _line").fetchall() == [
        (f"o{n}", n) for n in sorted(set(range(2, 14)) - bad_lines)
    ]
    assert [(q[1], q[3].split(",")[0]) for q in quarantine(con)] == [(n, f"o{n}") for n in sorted(bad_lines)]


def test_line_numbers_count_physical_lines_after_multi_line_values_and_blank_lines(landing, make_settings, con):
    write(
        landing,
        "orders/a.csv",
        csv_text(H + ",category", f'{GOOD},"two\nlines"', "o2,c2,2026-11-21 00:30:00,-1,x", "", "o3,c3,x,1,x"),
    )
    ingest(con, make_settings(), "orders")
    assert [q[1] for q in quarantine(con)] == [4, 6]


def test_unparseable_lines_after_a_multi_line_value_keep_their_physical_line(landing, make_settings, con):
    write(
        landing,
        "orders/a.csv",
        csv_text(
            H + ",category",
            f'{GOOD},"three\nline\nvalue"',
            "o2,c2,2026-11-21 00:30:00,1,x,extra",
            "",
            "o3,c3,2026-11-21 00:30:00,1,x",
        ),
    )
    report = ingest(con, make_settings(), "orders")
    assert [(q[1], q[2]) for q in quarantine(con)] == [(5, None)]
    assert sorted(r[0] for r in con.execute("select _line from orders").fetchall()) == [2, 7]
    assert accounting(report) == [("orders/a.csv", "loaded", 3, 2, 1, 0)]


def test_bom_file_recognises_its_first_column(landing, make_settings, con):
    write(landing, "orders/a.csv", "\ufeff" + csv_text(H, GOOD))
    ingest(con, make_settings(), "orders")
    assert scalar(con, "select order_id from orders") == "o1"


def test_configured_delimiter_reads_semicolon_files(landing, make_settings, con):
    write(landing, "orders/a.csv", csv_text(H.replace(",", ";"), "o1;c1;2026-11-21 00:30:00;10,5"))
    report = ingest(con, make_settings(orders={"glob": "orders/*", "delimiter": ";"}), "orders")
    # '10,5' is not a number here: decimal commas are not guessed, the reason names the keys.
    assert accounting(report) == [("orders/a.csv", "loaded", 1, 0, 1, 0)]
    assert quarantine(con)[0][2:] == ("amount", "10,5", COMMA_REASON)


def test_rejected_file_does_not_stop_the_other_files(landing, make_settings, con):
    write(landing, "orders/1.csv", b"")
    write(landing, "orders/2.csv.gz", _gzip_truncated())
    write(landing, "orders/3.csv", csv_text(H, GOOD))
    report = ingest(con, make_settings(), "orders")
    assert [(f.path, f.status) for f in report.files] == [
        ("orders/1.csv", "rejected"),
        ("orders/2.csv.gz", "rejected"),
        ("orders/3.csv", "loaded"),
    ]
    assert report.table_rows == 1
    assert scalar(con, "select count(*) from ingest_log where status = 'rejected' and error is not null") == 2


# ---------------------------------------------------------------------------------------- 3. idempotence
def _mixed_landing(landing: Path) -> None:
    write(landing, "orders/2026-11-20.csv", csv_text(H, GOOD, ROW2, "o3,,2026-11-21 00:30:00,1", GOOD))
    write(landing, "orders/2026-11-21.csv", csv_text(H, "o4,c4,2026-11-21 01:00:00,4", "o1,c1,2026-11-21 00:30:00,9"))
    write(landing, "orders/2026-11-22.csv", b"")
    write(landing, "orders/2026-11-23.csv.gz", gzip.compress(csv_text(H, "o5,c5,2026-11-21 02:00:00,5").encode()))


def test_ingesting_twice_changes_nothing(landing, make_settings):
    _mixed_landing(landing)
    settings = make_settings()
    # Two runs, two processes' worth of connections to the warehouse file, as on two nights.
    with connect(settings.warehouse, timeout_s=5) as con:
        first = ingest(con, settings, "orders", run_id="run-1")
        before = snapshot(con)
    with connect(settings.warehouse, timeout_s=5) as con:
        second = ingest(con, settings, "orders", run_id="run-2")
        after = snapshot(con)

    assert accounting(first) == [
        ("orders/2026-11-20.csv", "loaded", 4, 2, 1, 1),
        ("orders/2026-11-21.csv", "loaded", 2, 1, 1, 0),
        ("orders/2026-11-22.csv", "rejected", 0, 0, 0, 0),
        ("orders/2026-11-23.csv.gz", "loaded", 1, 1, 0, 0),
    ]
    assert [f.status for f in second.files] == ["unchanged"] * 4
    assert second.total("rows_read") == 0
    assert after == before
    assert second.table_rows == first.table_rows == 4


def test_redelivered_file_replaces_its_rows_and_quarantine(landing, make_settings, con):
    settings = make_settings()
    write(landing, "orders/day.csv", csv_text(H, GOOD, "o2,c2,2026-11-21 00:30:00,-1", "o3,c3,2026-11-21 00:30:00,3"))
    write(landing, "orders/other.csv", csv_text(H, "o9,c9,2026-11-21 00:30:00,9", "o9,c9,2026-11-21 00:30:00,8"))
    ingest(con, settings, "orders", run_id="run-1")
    assert len(quarantine(con)) == 3

    write(landing, "orders/day.csv", csv_text(H, "o1,c1,2026-11-21 00:30:00,11", "o2,c2,2026-11-21 00:30:00,2"))
    report = ingest(con, settings, "orders", run_id="run-2")

    assert accounting(report) == [
        ("orders/day.csv", "loaded", 2, 2, 0, 0),
        ("orders/other.csv", "unchanged", 0, 0, 0, 0),
    ]
    assert con.execute("select order_id, amount, _file, _run_id from orders order by 1").fetchall() == [
        ("o1", Decimal("11.00"), "orders/day.csv", "run-2"),
        ("o2", Decimal("2.00"), "orders/day.csv", "run-2"),
    ]
    # The corrected file's old quarantine entry is gone; the other file's stay.
    assert [(q[0], q[1]) for q in quarantine(con)] == [("orders/other.csv", 2), ("orders/other.csv", 3)]
    assert con.execute(
        "select path, rows_loaded, run_id from ingest_manifest where path = 'orders/day.csv'"
    ).fetchall() == [("orders/day.csv", 2, "run-2")]
    assert scalar(con, "select count(*) from ingest_log where path = 'orders/day.csv'") == 2


def test_same_content_under_a_second_name_is_a_duplicate_file(landing, make_settings, con):
    settings = make_settings()
    content = csv_text(H, GOOD, ROW2, "o3,c3,bad,1")
    write(landing, "orders/2026-11-21.csv", content)
    ingest(con, settings, "orders")
    before = snapshot(con)["orders"], quarantine(con)

    write(landing, "orders/2026-11-21 (1).csv", content)
    report = ingest(con, settings, "orders")

    assert accounting(report) == [
        ("orders/2026-11-21 (1).csv", "duplicate_file", 3, 0, 0, 3),
        ("orders/2026-11-21.csv", "unchanged", 0, 0, 0, 0),
    ]
    assert report.files[0].warnings == ["same content as orders/2026-11-21.csv, already loaded: every row dropped"]
    assert (snapshot(con)["orders"], quarantine(con)) == before


# --------------------------------------------------------------------------- 4. accounting over a mix
def _generated_files(seed: int = 7, n_files: int = 8, rows: int = 60) -> dict[str, str]:
    """Daily order files with planted defects, overlapping keys and exact copies across files."""
    rng = random.Random(seed)
    files = {}
    for day in range(n_files):
        lines = [H + ",quantity,status"]
        for _ in range(rows):
            order = rng.randrange(rows * 3)  # keys collide within and across files
            amount = order % 50 + 1  # ...mostly with the same content: exact duplicates
            ts = f"2026-11-{(order % 20) + 1:02d} 10:00:00"
            fields = [f"o{order}", f"c{order % 40}", ts, str(amount), str(order % 5), "completed"]
            defect = rng.random()
            if defect < 0.05:
                fields[1] = ""
            elif defect < 0.10:
                fields[3] = rng.choice(["-1", "abc", "NaN", "1e12"])
            elif defect < 0.15:
                fields[2] = rng.choice(["2031-01-01 00:00:00", "31/02/2026", ""])
            elif defect < 0.18:
                fields[5] = "lost"
            elif defect < 0.22:
                fields[3] = str(amount + 1)  # same key, different content
            elif defect < 0.24:
                fields.append("surplus")
            elif defect < 0.26:
                fields = fields[:3]
            lines.append(",".join(fields))
        files[f"orders/2026-11-{day + 1:02d}.csv"] = csv_text(*lines)
    files["orders/2026-11-30.csv"] = files["orders/2026-11-02.csv"]  # delivered twice under two names
    files["orders/2026-11-31.csv"] = ""  # rejected
    return files


def test_rows_read_equal_table_rows_plus_quarantine_plus_duplicates_over_a_generated_mix(landing, make_settings, con):
    for rel, content in _generated_files().items():
        write(landing, rel, content)

    report = ingest(con, make_settings(), "orders")

    assert all(f.balanced for f in report.files)
    statuses = sorted({f.status for f in report.files})
    assert statuses == ["duplicate_file", "loaded", "rejected"]
    loaded_files = [f for f in report.files if f.status == "loaded"]
    assert all(f.rows_quarantined and f.duplicates_dropped for f in loaded_files[1:])
    table_rows = scalar(con, "select count(*) from orders")
    quarantined = scalar(con, "select count(*) from quarantine")
    dropped = report.total("duplicates_dropped")
    assert report.total("rows_read") == table_rows + quarantined + dropped
    assert report.total("rows_loaded") == table_rows == report.table_rows
    assert report.total("rows_quarantined") == quarantined
    # The key is unique in the table, and every file's manifest row balances too.
    assert scalar(con, "select count(*) - count(distinct (order_id, line_id)) from orders") == 0
    assert (
        scalar(
            con,
            "select count(*) from ingest_manifest "
            "where rows_read <> rows_loaded + rows_quarantined + duplicates_dropped",
        )
        == 0
    )

    # Re-ingesting the mix is a no-op.
    again = ingest(con, make_settings(), "orders")
    assert {f.status for f in again.files} == {"unchanged"}
    assert scalar(con, "select count(*) from orders") == table_rows


# ------------------------------------------------------------------------------ discovery and formats
def test_discover_files_is_sorted_skips_temp_files_and_stays_inside_the_landing_root(tmp_path, landing, make_settings):
    for rel in ("orders/b.csv", "orders/a.csv", "orders/.hidden.csv", "orders/c.csv.tmp", "orders/d.csv.part"):
        write(landing, rel, "x")
    (landing / "orders" / "sub").mkdir()
    outside = write(tmp_path, "outside.csv", "x")
    (landing / "orders" / "link.csv").symlink_to(outside)
    settings = make_settings()
    assert [p.name for p in discover_files(settings, "orders")] == ["a.csv", "b.csv"]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("a.CSV.GZ", "csv"),
        ("a.tsv", "csv"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson.gz", "jsonl"),
    ],
)
def test_detect_format_from_extension(name, fmt):
    assert detect_format(Path(name), "auto") == fmt


def test_detect_format_uses_the_configured_format_and_rejects_unknown_extensions():
    assert detect_format(Path("export.dat"), "csv") == "csv"
    with pytest.raises(FileRejected, match=r"cannot tell the format of export\.dat"):
        detect_format(Path("export.dat"), "auto")


def test_report_totals_skip_unchanged_files(landing, make_settings, con):
    write(landing, "orders/a.csv", csv_text(H, GOOD))
    ingest(con, make_settings(), "orders")
    write(landing, "orders/b.csv", csv_text(H, ROW2, ROW2))
    report = ingest(con, make_settings(), "orders")
    assert (report.count("unchanged"), report.count("loaded")) == (1, 1)
    assert (report.total("rows_read"), report.total("duplicates_dropped")) == (2, 1)
    assert report.as_rows()[1]["warnings"] == ""


def test_native_parquet_timestamps_give_the_same_utc_values_as_text(landing, make_settings, con):
    import pyarrow as pa
    import pyarrow.parquet as pq

    local = [datetime(2026, 11, 21, 0, 30), datetime(2026, 11, 20, 23, 59, 59, 123456)]
    aware = [datetime(2026, 11, 21, 0, 30, tzinfo=UTC), None]
    (landing / "browsing").mkdir()
    pq.write_table(
        pa.table(
            {
                "customer_id": ["c1", "c2"],
                "session_id": ["s1", "s2"],
                "event_type": ["login", "search"],
                "event_ts": pa.array(local, pa.timestamp("us")),
            }
        ),
        landing / "browsing" / "naive.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "customer_id": ["c3", "c4"],
                "session_id": ["s3", "s4"],
                "event_type": ["login", "search"],
                "event_ts": pa.array(aware, pa.timestamp("us", tz="UTC")),
            }
        ),
        landing / "browsing" / "aware.parquet",
    )
    write(
        landing,
        "browsing/text.csv",
        csv_text("customer_id,session_id,event_type,event_ts", "c5,s5,login,2026-11-21 00:30:00"),
    )
    settings = make_settings(time_zone="Asia/Shanghai", browsing={"glob": "browsing/*"})
    report = ingest(con, settings, "browsing")
    assert sorted(accounting(report)) == [
        ("browsing/aware.parquet", "loaded", 2, 1, 1, 0),
        ("browsing/naive.parquet", "loaded", 2, 2, 0, 0),
        ("browsing/text.csv", "loaded", 1, 1, 0, 0),
    ]
    rows = {
        cid: (ts, d) for cid, ts, d in con.execute("select customer_id, event_ts, event_date from browsing").fetchall()
    }
    assert rows["c1"] == (datetime(2026, 11, 20, 16, 30), date(2026, 11, 21))  # 00:30 Shanghai = 16:30 UTC
    assert rows["c2"] == (datetime(2026, 11, 20, 15, 59, 59, 123456), date(2026, 11, 20))
    assert rows["c3"] == (datetime(2026, 11, 21, 0, 30), date(2026, 11, 21))  # already UTC: kept
    assert rows["c5"] == rows["c1"]  # the same instant written as text
    assert quarantine(con)[0][1:4] == (2, "event_ts", None)
