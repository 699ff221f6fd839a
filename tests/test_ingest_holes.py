"""Regression tests for the ingestion holes an adversarial corpus found (issue 9, points 1-7).

Each test plants one defect in a hand-made landing file and asserts where every line ended up:
loaded (with its physical line), quarantined (line, column, value, reason), dropped, or the file rejected.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion.loader import Ingestor, discover, discover_files
from segments.config import ConfigError

try:
    from tests.test_ingest import GOOD, ORDERS_HEADER, RUN_TS, accounting, csv_text, ingest, quarantine, scalar, write
except ImportError:  # pragma: no cover - run from inside tests/
    from test_ingest import GOOD, ORDERS_HEADER, RUN_TS, accounting, csv_text, ingest, quarantine, scalar, write

H = ORDERS_HEADER


def _row(i: int, customer: str = "c1", ts: str = "2026-11-21 00:30:00", amount: str = "1") -> str:
    return f"o{i},{customer},{ts},{amount}"


def _lines_of(con, table: str = "orders") -> list[int]:
    return [r[0] for r in con.execute(f"select _line from {table} order by _line").fetchall()]


# ------------------------------------------------------------------------ 1. unbalanced quotes
def test_a_stray_quote_in_the_header_rejects_the_file_instead_of_swallowing_the_rows(landing, make_settings, con):
    write(landing, "orders/a.csv", csv_text(H + ',"note', *(_row(i) + ",x" for i in range(2, 8))))
    report = ingest(con, make_settings())
    assert accounting(report) == [("orders/a.csv", "rejected", 0, 0, 0, 0)]
    assert "line 1 (header) has an unbalanced quote" in report.files[0].error


def test_a_stray_quote_in_a_data_line_costs_that_line_only(landing, make_settings, con):
    rows = [_row(i) for i in range(2, 53)]  # 51 data lines on lines 2..52
    rows[8] = 'o10,c1,"2026-11-21 00:30:00,1'  # line 10: a quote that never closes
    write(landing, "orders/a.csv", csv_text(H, *rows))
    report = ingest(con, make_settings())
    assert accounting(report) == [("orders/a.csv", "loaded", 51, 50, 1, 0)]
    q = quarantine(con)
    assert [(r[1], r[2]) for r in q] == [(10, None)]
    assert q[0][4].startswith("unparseable line (unbalanced quote)")
    assert _lines_of(con) == [n for n in range(2, 53) if n != 10]


def test_two_stray_quotes_that_pair_up_across_lines_quarantine_both_lines_and_keep_the_ones_between(
    landing, make_settings, con
):
    rows = [_row(i) for i in range(2, 12)]
    rows[2] = 'o4,"c1,2026-11-21 00:30:00,1'  # line 4
    rows[6] = 'o8,c1",2026-11-21 00:30:00,1'  # line 8: closes the quote of line 4 with the wrong field count
    write(landing, "orders/a.csv", csv_text(H, *rows))
    report = ingest(con, make_settings())
    assert accounting(report) == [("orders/a.csv", "loaded", 10, 8, 2, 0)]
    assert [r[1] for r in quarantine(con)] == [4, 8]
    assert _lines_of(con) == [2, 3, 5, 6, 7, 9, 10, 11]


def test_every_physical_line_is_a_record_a_blank_line_or_quarantined(landing, make_settings, con):
    body = [
        GOOD + ',"a value\nover two lines"',  # lines 2-3: one record
        "",  # line 4: blank
        _row(5) + ",x,surplus",  # line 5: too many fields
        _row(6) + ',"never closed',  # line 6: unbalanced quote
        _row(7) + ",y",  # line 7
    ]
    write(landing, "orders/a.csv", csv_text(H + ",category", *body))
    report = ingest(con, make_settings())
    f = report.files[0]
    assert accounting(report) == [("orders/a.csv", "loaded", 4, 2, 2, 0)]
    assert [r[1] for r in quarantine(con)] == [5, 6]
    assert _lines_of(con) == [2, 7]
    assert any("blank line" in w for w in f.warnings) and any("span lines 2-3" in w for w in f.warnings)


# ------------------------------------------------------------------------ 2. one file never fails the run
def test_classic_mac_line_endings_load_with_their_line_numbers(landing, make_settings, con):
    write(landing, "orders/a.csv", (csv_text(H, GOOD, _row(2, amount="x"), _row(3))).replace("\n", "\r"))
    report = ingest(con, make_settings())
    assert accounting(report) == [("orders/a.csv", "loaded", 3, 2, 1, 0)]
    assert [r[1:3] for r in quarantine(con)] == [(3, "amount")]
    assert _lines_of(con) == [2, 4]


def test_a_file_deleted_between_listing_and_reading_is_named_and_the_run_goes_on(landing, make_settings, con):
    write(landing, "orders/1.csv", csv_text(H, GOOD))
    write(landing, "orders/2.csv", csv_text(H, _row(2)))
    settings = make_settings()
    ingestor = Ingestor(con, settings, "orders", run_id="t", run_ts=RUN_TS)
    files = discover_files(settings, "orders")
    files[0].unlink()
    results = [ingestor.ingest_file(p) for p in files]
    assert [(r.path, r.status) for r in results] == [("orders/1.csv", "rejected"), ("orders/2.csv", "loaded")]
    assert "disappeared between listing and reading" in results[0].error
    # Only logged: the next run reads the file if it comes back.
    assert scalar(con, "select count(*) from ingest_manifest where path = 'orders/1.csv'") == 0
    assert scalar(con, "select count(*) from ingest_log where path = 'orders/1.csv' and status = 'rejected'") == 1


def test_a_file_that_breaks_the_reader_is_rejected_and_later_files_still_load(landing, make_settings, con):
    (landing / "orders").mkdir()
    pq.write_table(pa.table({"order_id": [["o1", "o2"]], "customer_id": ["c1"]}), landing / "orders/1.parquet")
    write(landing, "orders/2.jsonl", b"\xff\xfe not json at all \x00\n")
    write(landing, "orders/3.csv", csv_text(H, GOOD))
    report = ingest(con, make_settings())
    assert [(f.path, f.status) for f in report.files] == [
        ("orders/1.parquet", "rejected"),
        ("orders/2.jsonl", "loaded"),
        ("orders/3.csv", "loaded"),
    ]
    assert report.files[1].rows_quarantined == 1 and report.table_rows == 1


# ------------------------------------------------------------------------ 3. PII never quoted
def test_a_header_less_customers_file_is_rejected_without_quoting_its_first_row(landing, make_settings, con):
    write(landing, "customers/a.csv", csv_text("c1,alice@example.com,+86 138 0013 8000,Alice Wang"))
    report = ingest(con, make_settings(customers={"glob": "customers/*"}), "customers")
    error = report.files[0].error
    assert report.files[0].status == "rejected"
    assert "alice" not in error.lower() and "138" not in error
    assert "4 other name(s) withheld" in error and "is it a header?" in error


def test_unparseable_lines_of_a_pii_source_and_of_files_with_extra_columns_are_withheld(landing, make_settings, con):
    write(landing, "customers/a.csv", csv_text("customer_id,email", "c1,bob@example.com,surplus"))
    write(landing, "orders/a.csv", csv_text(H + ",receiver_phone", GOOD + ",13800138000,surplus"))
    write(landing, "orders/b.csv", csv_text(H, _row(2) + ",surplus"))
    settings = make_settings(customers={"glob": "customers/*"})
    ingest(con, settings, "customers")
    ingest(con, settings, "orders")
    values = dict(((r[0], r[1]), r[3]) for r in quarantine(con))
    assert values[("customers/a.csv", 2)] == "<line withheld: it may hold PII (26 characters)>"
    assert values[("orders/a.csv", 2)].startswith("<line withheld")
    assert values[("orders/b.csv", 2)] == _row(2) + ",surplus"  # no PII column, no extra column: shown


def test_a_pii_value_breaking_a_rule_is_masked(landing, make_settings, con):
    (landing / "feedback").mkdir()
    lines = [
        {"feedback_id": "f1", "customer_id": "c1", "submitted_ts": "2026-11-21 00:30:00", "kind": "survey"},
        {
            "feedback_id": "f2",
            "customer_id": "c1",
            "submitted_ts": "2026-11-21 00:30:00",
            "kind": "survey",
            "comment": {"mail": "carol@example.com"},
        },
    ]
    write(landing, "feedback/a.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    ingest(con, make_settings(feedback={"glob": "feedback/*"}), "feedback")
    rows = quarantine(con)
    assert [(r[1], r[2], r[3]) for r in rows] == [(1, "rating,nps,comment", None), (2, "comment", "<masked: PII>")]
    assert all("carol" not in str(r) for r in rows)


# ------------------------------------------------------------------------ 4. zone names after the time
@pytest.mark.parametrize(
    ("value", "utc"),
    [
        ("2026-11-20 10:00:00 UTC", datetime(2026, 11, 20, 10)),
        ("2026-11-20 10:00:00 utc", datetime(2026, 11, 20, 10)),
        ("2026-11-20 10:00:00 GMT", datetime(2026, 11, 20, 10)),
        ("2026-11-20 10:00:00Z", datetime(2026, 11, 20, 10)),
        ("2026-11-20 10:00:00 America/New_York", datetime(2026, 11, 20, 15)),
        ("2026-07-20 10:00:00 America/New_York", datetime(2026, 7, 20, 14)),
        ("2026-11-20 10:00:00 Asia/Shanghai", datetime(2026, 11, 20, 2)),
        ("2026-11-20 10:00:00", datetime(2026, 11, 20, 2)),  # naive: the source zone (Asia/Shanghai)
    ],
)
def test_zone_names_after_the_time_are_honoured(landing, make_settings, con, value, utc):
    write(landing, "orders/a.csv", csv_text(H, f"o1,c1,{value},1"))
    ingest(con, make_settings(time_zone="Asia/Shanghai"))
    assert quarantine(con) == []
    assert scalar(con, "select order_ts from orders") == utc


@pytest.mark.parametrize(
    ("value", "reason_start"),
    [
        ("2026-11-20 10:00:00 CST", "ambiguous time-zone abbreviation after the time"),
        ("2026-11-20 10:00:00 EST", "ambiguous time-zone abbreviation after the time"),
        ("2026-11-20 10:00:00 Mars/Olympus_Mons", "unknown time-zone name after the time"),
    ],
)
def test_ambiguous_or_unknown_zone_names_are_quarantined_with_the_reason(
    landing, make_settings, con, value, reason_start
):
    write(landing, "orders/a.csv", csv_text(H, f"o1,c1,{value},1"))
    ingest(con, make_settings())
    [(_, line, column, shown, reason)] = quarantine(con)
    assert (line, column, shown) == (2, "order_ts", value)
    assert reason.startswith(reason_start)


def test_am_pm_in_the_configured_format_is_not_taken_for_a_zone(landing, make_settings, con):
    write(landing, "orders/a.csv", csv_text(H, "o1,c1,2026-11-20 10:00:00 PM,1"))
    ingest(con, make_settings(orders={"glob": "orders/*", "timestamp_format": "%Y-%m-%d %I:%M:%S %p"}))
    assert scalar(con, "select order_ts from orders") == datetime(2026, 11, 20, 22)


# ------------------------------------------------------------------------ 5. values of the wrong shape
def _orders_parquet(landing: Path, name: str, **columns: pa.Array) -> None:
    base = {
        "order_id": pa.array(["o1", "o2"]),
        "customer_id": pa.array(["c1", "c2"]),
        "order_ts": pa.array(["2026-11-21 00:30:00"] * 2),
        "amount": pa.array([1.0, 2.0]),
    }
    (landing / "orders").mkdir(exist_ok=True)
    pq.write_table(pa.table({**base, **columns}), landing / "orders" / name)


@pytest.mark.parametrize(
    ("column", "array", "shown"),
    [
        ("customer_id", pa.array([["c1", "c2"], ["c3"]]), "customer_id is VARCHAR[], a nested value"),
        ("category", pa.array([{"l1": "a"}, {"l1": "b"}]), "category is STRUCT"),
        ("customer_id", pa.array([{"id": "c1"}, {"id": "c2"}]), "customer_id is STRUCT"),
    ],
)
def test_nested_parquet_columns_never_become_ids_or_categories(landing, make_settings, con, column, array, shown):
    _orders_parquet(landing, "a.parquet", **{column: array})
    report = ingest(con, make_settings())
    assert accounting(report) == [("orders/a.parquet", "rejected", 0, 0, 0, 0)]
    assert shown in report.files[0].error


def test_a_double_id_becomes_its_integer_text_and_a_fractional_one_is_quarantined(landing, make_settings, con):
    _orders_parquet(landing, "a.parquet", customer_id=pa.array([123.0, 123.5]))
    report = ingest(con, make_settings())
    assert accounting(report) == [("orders/a.parquet", "loaded", 2, 1, 1, 0)]
    assert scalar(con, "select customer_id from orders") == "123"
    assert quarantine(con) == [
        ("orders/a.parquet", 2, "customer_id", "123.5", "a fractional number where an identifier or text is expected")
    ]


def test_json_objects_and_arrays_are_quarantined_and_json_numbers_are_normalized(landing, make_settings, con):
    rows = [
        {"order_id": "o1", "customer_id": 123.0, "order_ts": "2026-11-21 00:30:00", "amount": 1},
        {"order_id": "o2", "customer_id": {"id": "c1"}, "order_ts": "2026-11-21 00:30:00", "amount": 1},
        {"order_id": "o3", "customer_id": "c3", "order_ts": "2026-11-21 00:30:00", "amount": 1, "category": ["a"]},
    ]
    write(landing, "orders/a.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    report = ingest(con, make_settings())
    assert accounting(report) == [("orders/a.jsonl", "loaded", 3, 1, 2, 0)]
    assert scalar(con, "select customer_id from orders") == "123"
    assert [(r[1], r[2], r[3], r[4]) for r in quarantine(con)] == [
        (2, "customer_id", "<a JSON object>", "a nested value (a JSON object) where one string is expected"),
        (3, "category", "<a JSON array>", "a nested value (a JSON array) where one string is expected"),
    ]


# ------------------------------------------------------------------------ 6. earliest plausible date
def test_dates_before_the_earliest_plausible_date_are_quarantined(landing, make_settings, con):
    write(
        landing,
        "orders/a.csv",
        csv_text(H, _row(1, ts="0001-01-01 00:00:00"), _row(2, ts="1999-12-31 23:00:00"), GOOD.replace("o1", "o3")),
    )
    report = ingest(con, make_settings())
    assert accounting(report) == [("orders/a.csv", "loaded", 3, 1, 2, 0)]
    reasons = [r[4] for r in quarantine(con)]
    assert (
        reasons
        == ["before the earliest plausible date 2000-01-01 (config earliest_date or sources.orders.earliest_date)"] * 2
    )


def test_the_earliest_date_is_configurable_per_run_and_per_source(landing, make_settings, con):
    write(landing, "orders/a.csv", csv_text(H, _row(1, ts="1995-06-01 00:00:00")))
    report = ingest(con, make_settings(earliest_date="1990-01-01"))
    assert accounting(report)[0][3] == 1
    with pytest.raises(ConfigError, match="earliest_date"):
        make_settings(orders={"glob": "orders/*", "earliest_date": "not a date"})


# ------------------------------------------------------------------------ 7. smaller holes
def test_sub_cent_amounts_are_quarantined_not_rounded(landing, make_settings, con):
    write(landing, "orders/a.csv", csv_text(H, _row(1, amount="10.005"), _row(2, amount="10.500"), _row(3, amount="7")))
    report = ingest(con, make_settings())
    assert accounting(report) == [("orders/a.csv", "loaded", 3, 2, 1, 0)]
    assert quarantine(con)[0][1:4] == (2, "amount", "10.005")
    assert quarantine(con)[0][4].startswith("more than 2 decimal places")
    assert sorted(r[0] for r in con.execute("select amount from orders").fetchall()) == [Decimal("7"), Decimal("10.5")]


def test_unicode_white_space_is_trimmed_like_spaces(landing, make_settings, con):
    write(landing, "orders/a.csv", csv_text(H, "\to1\t,\u3000c2\u00a0,2026-11-21 00:30:00\u200b,\u202f1"))
    ingest(con, make_settings())
    assert con.execute("select order_id, customer_id, amount from orders").fetchall() == [("o1", "c2", Decimal("1"))]


def test_one_order_naming_two_customers_is_a_key_conflict(landing, make_settings, con):
    head = "order_id,line_id,customer_id,order_ts,amount"
    write(
        landing,
        "orders/a.csv",
        csv_text(
            head, "o1,1,c1,2026-11-21 00:30:00,1", "o1,2,c2,2026-11-21 00:30:00,2", "o2,1,c1,2026-11-21 00:30:00,3"
        ),
    )
    write(landing, "orders/b.csv", csv_text(head, "o2,2,c9,2026-11-21 00:30:00,4"))
    report = ingest(con, make_settings())
    assert accounting(report) == [("orders/a.csv", "loaded", 3, 1, 2, 0), ("orders/b.csv", "loaded", 1, 0, 1, 0)]
    q = quarantine(con)
    assert [(r[0], r[1], r[2]) for r in q] == [
        ("orders/a.csv", 2, "order_id"),
        ("orders/a.csv", 3, "order_id"),
        ("orders/b.csv", 2, "order_id"),
    ]
    assert q[0][4].startswith("key conflict: order_id o1 names more than one customer_id (c1, c2)")
    assert "(c1, c9)" in q[2][4]
    assert con.execute("select order_id, customer_id from orders").fetchall() == [("o2", "c1")]


def test_dst_skipped_local_times_are_quarantined_and_repeated_ones_read_as_the_earlier_instant(
    landing, make_settings, con
):
    write(
        landing,
        "orders/a.csv",
        csv_text(
            H, _row(1, ts="2026-03-08 02:30:00"), _row(2, ts="2026-11-01 01:30:00"), _row(3, ts="2026-11-01 03:00:00")
        ),
    )
    ingest(con, make_settings(time_zone="America/New_York"))
    q = quarantine(con)
    assert [(r[1], r[2]) for r in q] == [(2, "order_ts")]
    assert q[0][4].startswith("a local time that does not exist in America/New_York")
    rows = dict(con.execute("select order_id, order_ts from orders").fetchall())
    assert rows == {"o2": datetime(2026, 11, 1, 5, 30), "o3": datetime(2026, 11, 1, 8)}  # 01:30 EDT = 05:30 UTC


def test_json_lines_with_a_bom_load_and_a_non_object_line_is_quarantined(landing, make_settings, con):
    obj = {"order_id": "o1", "customer_id": "c1", "order_ts": "2026-11-21 00:30:00", "amount": 1}
    write(
        landing,
        "orders/a.jsonl",
        "\ufeff" + json.dumps(obj) + "\n[1, 2]\n" + json.dumps({**obj, "order_id": "o2"}) + "\n",
    )
    report = ingest(con, make_settings())
    assert accounting(report) == [("orders/a.jsonl", "loaded", 3, 2, 1, 0)]
    assert [(r[1], r[4]) for r in quarantine(con)] == [(2, "unparseable line (not a JSON object): found a JSON array")]


def test_a_source_folder_symlinked_outside_the_landing_dir_is_named(tmp_path, landing, make_settings):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    write(outside, "a.csv", csv_text(H, GOOD))
    (landing / "orders").symlink_to(outside, target_is_directory=True)
    found = discover(make_settings(), "orders")
    assert found.files == []
    assert found.problems and "resolve outside landing_dir" in found.problems[0] and "orders/a.csv" in found.problems[0]


def test_a_missing_landing_dir_and_an_empty_glob_are_named(tmp_path, landing, make_settings):
    assert discover(make_settings(), "orders").problems == [
        f"sources.orders.glob 'orders/*' matched no file in landing_dir {landing.resolve()}"
    ]
    landing.rmdir()
    assert "does not exist" in discover(make_settings(), "orders").problems[0]


@pytest.mark.parametrize(
    ("zone", "repeated", "earlier", "then", "then_utc"),
    [
        # Lord Howe falls back half an hour (02:00 +11:00 -> 01:30 +10:30): 01:45 is 14:45 UTC, not 15:15.
        ("Australia/Lord_Howe", "2026-04-05 01:45:00", datetime(2026, 4, 4, 14, 45), "02:30", datetime(2026, 4, 4, 16)),
        # Troll falls back two hours (03:00 +02:00 -> 01:00 +00:00): 02:30 is 00:30 UTC, not 02:30.
        ("Antarctica/Troll", "2026-10-25 02:30:00", datetime(2026, 10, 25, 0, 30), "04:00", datetime(2026, 10, 25, 4)),
    ],
)
def test_a_repeated_local_time_is_the_earlier_instant_whatever_the_size_of_the_fall_back(
    landing, make_settings, con, zone, repeated, earlier, then, then_utc
):
    after = f"{repeated[:10]} {then}:00"  # after the change: one instant only
    write(landing, "orders/a.csv", csv_text(H, _row(1, ts=repeated), _row(2, ts=after)))
    ingest(con, make_settings(time_zone=zone))
    assert quarantine(con) == []
    rows = dict(con.execute("select order_id, order_ts from orders").fetchall())
    assert rows == {"o1": earlier, "o2": then_utc}


def test_a_file_whose_name_holds_glob_characters_is_read_as_itself(landing, make_settings, con):
    """DuckDB's readers expand ``[1]``, ``*`` and ``?`` in a path: ``more[1].csv`` was read as ``more1.csv``."""
    write(landing, "orders/more[1].csv", csv_text(H, _row(1)))
    write(landing, "orders/more1.csv", csv_text(H, _row(2)))
    write(landing, "orders/a*b?.csv", csv_text(H, _row(3)))
    write(landing, "orders/axbq.csv", csv_text(H, _row(4)))
    pq.write_table(
        pa.table({"order_id": ["p5"], "customer_id": ["c1"], "order_ts": ["2026-11-21 00:30:00"], "amount": [1.0]}),
        landing / "orders" / "p[5].parquet",
    )
    pq.write_table(
        pa.table({"order_id": ["p6"], "customer_id": ["c1"], "order_ts": ["2026-11-21 00:30:00"], "amount": [1.0]}),
        landing / "orders" / "p5.parquet",
    )
    ingest(con, make_settings())
    rows = con.execute("select _file, order_id from orders order by _file").fetchall()
    assert rows == [
        ("orders/a*b?.csv", "o3"),
        ("orders/axbq.csv", "o4"),
        ("orders/more1.csv", "o2"),
        ("orders/more[1].csv", "o1"),
        ("orders/p5.parquet", "p6"),
        ("orders/p[5].parquet", "p5"),
    ]
