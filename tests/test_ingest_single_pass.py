"""Single-pass ingestion: hashes only pick candidates, staging stays narrow, local dates follow the zone's rules.

The planted-collision tests build ``_stg`` by hand with equal hashes on rows that differ: a hash may only
decide which rows are compared, never that two rows are the same.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

from data_contracts.contracts import load_contract
from ingestion.loader import ensure_schema, ingest_source
from ingestion.quarantine import Target, dedup
from ingestion.rules import Stage
from ingestion.zones import fixed_offset

RUN_TS = datetime(2026, 11, 22, 12)
ORDER_COLUMNS = [c.name for c in load_contract("orders").columns]


def _write(landing: Path, rel: str, text: str) -> None:
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())


def _plant_stg(con: duckdb.DuckDBPyConnection, rows: list[tuple[int, str, int, str, int, int]]) -> None:
    """``_stg`` of valid orders rows (line, order_id, line_id, customer_id, row hash, key hash)."""
    cols = ", ".join(
        f'null::varchar as "{n}"' for n in ORDER_COLUMNS if n not in ("order_id", "line_id", "customer_id")
    )
    con.execute(
        f"""
        create or replace temp table _stg as
        select _line, order_id, line_id, customer_id, {cols}, null::integer as _rule,
               cast(h as ubigint) as _h, cast(kh as ubigint) as _kh
        from (values {", ".join(str(r) for r in rows)}) v(_line, order_id, line_id, customer_id, h, kh)
        """
    )


def _target() -> Target:
    return Target("orders", "orders/a.csv", "t", RUN_TS, load_contract("orders"), False)


def test_rows_sharing_a_row_hash_are_dropped_only_when_every_value_is_equal(con):
    ensure_schema(con, ["orders"])
    _plant_stg(
        con,
        [
            (2, "o1", 1, "c1", 7, 1),  # same row hash as line 3, different customer (and key): both load
            (3, "o2", 1, "c2", 7, 2),
            (4, "o3", 1, "c3", 9, 3),  # lines 4 and 5 are identical: line 5 is the duplicate
            (5, "o3", 1, "c3", 9, 3),
        ],
    )
    assert dedup(con, _target()) == (1, 0)
    assert con.execute("select _line from _skip order by 1").fetchall() == [(5,)]
    assert con.execute("select count(*) from quarantine").fetchall() == [(0,)]


def test_keys_sharing_a_key_hash_conflict_only_when_the_keys_are_equal(con):
    ensure_schema(con, ["orders"])
    _plant_stg(
        con,
        [
            (2, "o1", 1, "c1", 1, 5),  # same key hash as line 3, different key: no conflict
            (3, "o2", 1, "c1", 2, 5),
            (4, "o3", 1, "c1", 3, 6),  # same key, different content: both quarantined
            (5, "o3", 1, "c2", 4, 6),
        ],
    )
    assert dedup(con, _target()) == (0, 2)
    rows = con.execute("select line, column_name, value, reason from quarantine order by line").fetchall()
    reason = "duplicate key (order_id, line_id) = (o3, 1) with different content in the same file (lines 4, 5)"
    assert rows == [(4, "order_id,line_id", "o3, 1", reason), (5, "order_id,line_id", "o3, 1", reason)]
    assert con.execute("select _line from _skip order by 1").fetchall() == [(4,), (5,)]


def test_staging_holds_typed_values_and_findings_not_a_text_copy_of_every_column(make_settings, con):
    settings = make_settings()
    stage = Stage(load_contract("orders"), settings, "orders", RUN_TS)
    con.execute("create temp table _raw as select 2 as _line, 'o1' as c0, 'c1' as c1, '2026-11-21' as c2, '-1' as c3")
    positions = {"order_id": "c0", "customer_id": "c1", "order_ts": "c2", "amount": "c3"}
    sql = stage.stage_sql("_raw", positions, {}, ("order_id", "line_id"))
    params = stage.params()
    con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
    names = [r[0] for r in con.execute("describe _stg").fetchall()]
    assert names == ["_line", *ORDER_COLUMNS, "_rule", "_qcol", "_qval", "_qreason", "_qcode", "_h", "_kh"]
    assert con.execute("select amount, _qcol, _qval, _qreason, _qcode from _stg").fetchall() == [
        (Decimal("-1.00"), "amount", "-1", "below the minimum 0", "min")
    ]


def test_one_offset_over_the_span_makes_the_local_date_an_addition_else_none():
    assert fixed_offset("Asia/Shanghai", date(2000, 1, 1), date(2026, 11, 22)) == timedelta(hours=8)
    assert fixed_offset("UTC", date(2000, 1, 1), date(2026, 11, 22)) == timedelta(0)
    assert fixed_offset("America/New_York", date(2026, 1, 1), date(2026, 2, 1)) == timedelta(hours=-5)
    assert fixed_offset("America/New_York", date(2026, 1, 1), date(2026, 11, 22)) is None
    # Moscow moved from UTC+4 to UTC+3 on 2014-10-26 and has kept it since.
    assert fixed_offset("Europe/Moscow", date(2015, 1, 1), date(2026, 11, 22)) == timedelta(hours=3)
    assert fixed_offset("Europe/Moscow", date(2014, 1, 1), date(2026, 11, 22)) is None


def test_business_dates_follow_daylight_saving_where_the_business_zone_has_it(landing, make_settings, con):
    _write(
        landing,
        "orders/a.csv",
        "order_id,customer_id,order_ts,amount\n"
        "o1,c1,2026-07-01 03:30:00,1\n"  # 23:30 on June 30 in New York (UTC-4 in summer)
        "o2,c1,2026-07-01 04:30:00,1\n"  # 00:30 on July 1 (a fixed UTC-5 would say June 30)
        "o3,c1,2026-01-01 04:30:00,1\n",  # 23:30 on December 31 (UTC-5 in winter)
    )
    settings = make_settings(orders={"glob": "orders/*", "time_zone": "UTC"}, time_zone="America/New_York")
    ingest_source(con, settings, "orders", run_id="t", run_ts=RUN_TS)
    assert con.execute("select order_id, order_date from orders order by order_id").fetchall() == [
        ("o1", date(2026, 6, 30)),
        ("o2", date(2026, 7, 1)),
        ("o3", date(2025, 12, 31)),
    ]


def test_white_space_at_any_edge_of_any_value_is_trimmed_by_the_per_row_search(landing, make_settings, con):
    _write(
        landing,
        "orders/a.csv",
        "order_id,customer_id,order_ts,amount,category\n"
        "\u3000o1,c1,2026-11-21 00:30:00,1,toys\n"  # first value, leading
        "o2,c1,2026-11-21 00:30:00,1,toys\u00a0\n"  # last value, trailing
        "o3,c1\x1f ,2026-11-21 00:30:00,1,\n"  # the separator itself inside a value, then a space
        "o4,,2026-11-21 00:30:00, 1,\n",  # beside an empty value
    )
    report = ingest_source(con, make_settings(), "orders", run_id="t", run_ts=RUN_TS)
    assert [(f.rows_loaded, f.rows_quarantined) for f in report.files] == [(3, 1)]
    assert con.execute("select order_id, customer_id, amount, category from orders order by 1").fetchall() == [
        ("o1", "c1", Decimal("1"), "toys"),
        ("o2", "c1", Decimal("1"), "toys"),
        ("o3", "c1\x1f", Decimal("1"), None),
    ]
    assert con.execute("select line, column_name, reason from quarantine").fetchall() == [
        (5, "customer_id", "missing required value")
    ]
