"""Ingestion's row rules on Spark: the same loaded rows, quarantine rows and accounting as on DuckDB.

A corpus of Parquet landing files with planted defects (text and native columns, every rule, white space,
number and timestamp forms each engine's casts alone would take, offsets, zone names, daylight saving, PII)
is ingested twice into two real DuckDB warehouses: once with the row rules on DuckDB, once staged on a real
local Spark session. Every table the load writes must be equal row for row, and chosen lines must end where
worked out by hand.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engines.spark import SparkUnavailableError
from engines.spark_ingest import SparkIngestError, render_stage, strptime_pattern
from engines.spark_stager import SparkStager
from ingestion.loader import StagerUnavailable, ensure_schema, ingest_source
from segments.config import Settings, settings_from_dict
from tests.spark_helpers import _session

RUN_TS = datetime(2026, 11, 22, 12)

# Parquet numbers are typed by the file (a text amount is a wrong column type), so the text cases are
# timestamps and ids; numbers are planted as native doubles and decimals.
# (order_id, line_id, customer_id, order_ts, amount, quantity, status); each line a planted case.
D = Decimal
ORDER_ROWS: list[tuple[Any, ...]] = [
    ("o1", 1, "c1", "2026-11-01 10:00:00", 12.5, 2, "completed"),  # good, configured format
    ("o2", 1, "c2", "2026-1-5 1:2:3", 7.0, 3, None),  # 1-digit fields; default status
    ("o3", 1, "c3", "2026-11-01T10:00:00", 100.0, 1, "refunded"),  # ISO with T
    ("o4", 1, "c4", "2026-11-01 10:00:00+08:00", 5.0, None, None),  # offset
    ("o5", 1, "c5", "2026-11-01T10:00+08:00", 5.0, None, None),  # offset without seconds (DuckDB reads it)
    ("o6", 1, "c6", "2026-11-01 10:00:00 America/New_York", 5.0, None, None),  # zone name
    ("o7", 1, "c7", "2026-11-01 01:30:00 America/New_York", 5.0, None, None),  # ambiguous hour: earlier
    ("o8", 1, "c8", "2026-03-08 02:30:00 America/New_York", 5.0, None, None),  # gap in a named zone
    ("o9", 1, "c9", "2026-11-01 10:00:00 CST", 5.0, None, None),  # ambiguous abbreviation
    ("o10", 1, "c10", "2026-11-01 10:00:00 Mars/Olympus", 5.0, None, None),  # unknown zone
    ("o11", 1, "c11", "2026", 5.0, None, None),  # Spark alone would read a year
    ("o12", 1, "c12", "2026-11", 5.0, None, None),  # Spark alone would read a month
    ("o13", 1, "c13", "2026/11/01", 5.0, None, None),  # DuckDB alone would read slashes
    ("o14", 1, "c14", "2026-11-01 24:00:00", 5.0, None, None),  # DuckDB alone would read hour 24
    ("o15", 1, "c15", "02026-11-01 10:00:00", 5.0, None, None),  # Spark alone would read 5 year digits
    ("o16", 1, "c16", "2026-03-08 02:30:00", 5.0, None, None),  # gap in the source zone (New York)
    ("o17", 1, "c17", "2026-11-01 01:30:00", 5.0, None, None),  # fall-back hour in the source zone
    ("o18", 1, "c18", "2026-11-01 10:00:00", 1.234, None, None),  # precision
    ("o19", 1, "c19", "2026-11-01 10:00:00", 0.1 + 0.2, None, None),  # a double's long tail: precision
    ("o20", 1, "c20", "2026-11-01 10:00:00", float("nan"), None, None),  # not a number
    ("o21", 1, "c21", "2026-11-01 10:00:00", -1.0, None, None),  # below min
    ("o22", 1, "c22", "2026-11-01 10:00:00", 1e20, None, None),  # above max
    ("o23", 1, "c23", "2026-11-01 10:00:00", float("inf"), None, None),  # infinite
    ("o24", 1, "c24", "2027-01-01 00:00:00", 5.0, None, None),  # future
    ("o25", 1, "c25", "1999-12-31 23:59:59", 5.0, None, None),  # before earliest
    ("o26", 1, "c26", "2026-11-01 10:00:00", 5.0, None, "lost"),  # not accepted
    ("o27", 1, "\u3000c27\u00a0", "\t2026-11-01 10:00:00 ", 5.0, 4, " completed\u200b"),  # edges
    ("o28", 1, None, "2026-11-01 10:00:00", 5.0, None, None),  # required missing (PII-free column)
    ("o29", 1, "", "2026-11-01 10:00:00", 5.0, None, None),  # empty is missing
    ("o30", 1, "c30", "garbage", 5.0, None, None),  # not a timestamp
    ("o31", -2, "c31", "2026-11-01 10:00:00", 5.0, None, None),  # line below min
    ("o1", 1, "c1", "2026-11-01 10:00:00", 12.5, 2, "completed"),  # exact duplicate of line 1
    ("o32", 1, "c32", "2026-11-01 10:00:00", 5.0, None, None),  # key conflict with the next line
    ("o32", 1, "c99", "2026-11-01 10:00:00", 6.0, None, None),
    ("o33", 1, "c33", "2026-11-01  10:00:00", 5.0, 100001, None),  # two spaces; quantity above max
    ("o34", 1, "c34", "2026-11-01 10:00:00.5", 5.0, None, None),  # fraction: not the format, ISO
    ("o35", 1, "c35", "2026-11-01 10:00:00Z", -0.0, 2, "cancelled"),  # Z; minus zero
    ("o36", 1, "c36", "2026-11-01 10:00:00 UTC", 0.5, None, None),  # UTC name
    ("o37", 1, "c37", "2026-11-01 10:00:00 +08:00", 5.0, None, None),  # space before the offset
    ("o38", 1, "c38", "2026-11-01 10:00:00 Z", 5.0, None, None),  # space before Z
    ("o39", 1, "c39", "2026-02-30 10:00:00+08:00", 5.0, None, None),  # no such day, with an offset
    ("o40", 1, "c40", "2026-11-01 10:00:00+08:99", 5.0, None, None),  # no such offset
    ("o41", 1, "c41", "2026-11-01 10:00:00-18:00", 5.0, None, None),  # the last offset there is
    ("o42", 1, "c42", "2026-11-01 10:00:00", 12345678.0, None, None),  # above max; Java writes 1.2345678E7
    ("o43", 1, "c43", "2026-11-01 10:00:00", 0.0001234, None, None),  # precision; Java writes 1.234E-4
    ("o44", 1, "c44", "2026-04-05 01:45:00 Australia/Lord_Howe", 5.0, None, None),  # half-hour fall-back
]


def _order_text_table() -> pa.Table:
    names = ["order_id", "line_id", "customer_id", "order_ts", "amount", "quantity", "status"]
    types = [pa.string(), pa.int64(), pa.string(), pa.string(), pa.float64(), pa.int32(), pa.string()]
    return pa.table(
        {n: pa.array([r[i] for r in ORDER_ROWS], t) for i, (n, t) in enumerate(zip(names, types, strict=True))}
    )


def _order_native_table() -> pa.Table:
    """Native Parquet types: naive and zone-aware timestamps, doubles, decimals, ids exported as DOUBLE."""
    return pa.table(
        {
            "order_id": pa.array([101.0, 102.0, 103.5, None, 105.0, float("nan"), 15000000.5], pa.float64()),
            "customer_id": ["n1", "n2", "n3", "n4", "n5", "n6", "n7"],
            "order_ts": pa.array(
                [
                    datetime(2026, 11, 1, 10),
                    datetime(2026, 3, 8, 2, 30),
                    datetime(2026, 11, 1, 1, 30),
                    None,
                    datetime(2026, 11, 2),
                    datetime(2026, 11, 2),
                    datetime(2026, 11, 2),
                ],
                pa.timestamp("us"),
            ),
            "amount": pa.array([12.5, 0.1 + 0.2, 3.0, 4.0, 1e20, 1.0, 1.0], pa.float64()),
            "unit_price": pa.array(
                [Decimal("1.20"), None, Decimal("-1.00"), None, Decimal("2.00"), None, None], pa.decimal128(10, 2)
            ),
            "quantity": pa.array([1, 2, None, 4, 5, 6, 7], pa.int32()),
            "paid_ts": pa.array([datetime(2026, 11, 1, 10)] * 7, pa.timestamp("us", tz="UTC")),
        }
    )


def _order_decimal_table() -> pa.Table:
    """``_order_native_table``'s columns with a DECIMAL(20,3) amount: the same staging statement, but never one
    union with a DOUBLE amount (Spark would widen the decimals to doubles: ``-1.500`` would show as ``-1.5``)."""
    native = _order_native_table().slice(0, 2)
    amount = pa.array([Decimal("-1.500"), Decimal("2.000")], pa.decimal128(20, 3))
    table = native.set_column(native.schema.get_field_index("amount"), "amount", amount)
    order_ts = pa.array([datetime(2026, 11, 1, 10)] * 2, pa.timestamp("us"))
    table = table.set_column(table.schema.get_field_index("order_ts"), "order_ts", order_ts)
    return table.set_column(0, "order_id", pa.array([201.0, 202.0], pa.float64()))


def _order_nanos_table() -> pa.Table:
    """Nanosecond timestamps (pandas' default): Spark does not read them, so DuckDB stages this file."""
    return pa.table(
        {
            "order_id": ["q1", "q2"],
            "customer_id": ["c1", "c2"],
            "order_ts": pa.array([datetime(2026, 11, 1, 10), datetime(2026, 3, 8, 2, 30)], pa.timestamp("ns")),
            "amount": pa.array([Decimal("1.00"), Decimal("2.00")], pa.decimal128(10, 2)),
        }
    )


def _browsing_table() -> pa.Table:
    """Browsing with a zone-aware native timestamp; an unaccepted event type, a missing session, a duplicate."""
    return pa.table(
        {
            "session_id": ["s1", "s2", None, "s1"],
            "customer_id": ["c1", "c2", "c3", "c1"],
            "event_ts": pa.array(
                [
                    datetime(2026, 11, 1, 10),
                    datetime(2026, 11, 30, 10),
                    datetime(2026, 11, 1),
                    datetime(2026, 11, 1, 10),
                ],
                pa.timestamp("ms", tz="Asia/Shanghai"),
            ),
            "event_type": ["page_view", "teleport", "search", "page_view"],
            "duration_s": pa.array([1, -5, None, 1], pa.int64()),
        }
    )


# CSV: numbers are text here. Each line a planted case (order_id, line_id, customer_id, order_ts, amount,
# quantity); the first value of a case is the line's order id.
CSV_LINES = [
    "order_id,line_id,customer_id,order_ts,amount,quantity",
    "k1,1,c1,2026-11-01 10:00:00,12.50,2",  # good
    "k2,1,c2,2026-11-01 10:00:00,1_000,",  # DuckDB's cast alone reads '1_000'
    "k3,1,c3,2026-11-01 10:00:00,١٢,",  # Spark's cast alone reads Arabic-Indic digits
    "k4,3.0,c4,2026-11-01 10:00:00,1e2,",  # integer '3.0' (Spark's cast refuses the point); exponent
    "k5,0x10,c5,2026-11-01 10:00:00,5,",  # hex integer
    'k6,1,c6,2026-11-01 10:00:00,"1,5",',  # quoted comma in a number
    "k7,1,c7,2026-11-01 10:00:00,¥12,",  # currency symbol
    "k8,1,c8,2026-11-01 10:00:00,1.234,",  # precision
    "k9,1,c9,2026-11-01 10:00:00,.5,+2",  # '.5'; '+2'
    "k10,1,c10,2026-11-01 10:00:00,5.,1.5",  # '5.'; fractional quantity
    "k11,1,c11,2026-11-01 10:00:00,inf,",  # not a number
    'k12,1,"c12 ""q""",2026-11-01 10:00:00,5,',  # doubled quotes inside a quoted field
    "k13,1,\u3000c13,2026-11-01 10:00:00, 5 ,",  # white space at the edges
    "k14,,c14,2026-11-01 10:00:00,5,",  # empty line id: default 1
    "k15,1,,2026-11-01 10:00:00,5,",  # missing customer
    "k16,1,c16,2026-11-01 10:00:00,99999999999999999.99,",  # too many digits
    "k1,1,c1,2026-11-01 10:00:00,12.50,2",  # exact duplicate of line 2
]
# Lines DuckDB's reader alone accounts for: Spark hands the file back, and it loads as on DuckDB.
IRREGULAR_LINES = [
    "order_id,line_id,customer_id,order_ts,amount,quantity",
    "m1,1,c1,2026-11-01 10:00:00,5,1",
    'm2,1,"c2 with a',  # a quoted line break: one record over two lines
    'line break",2026-11-01 10:00:00,5,1',
    "m3,1,c3,2026-11-01 10:00:00,5",  # one field short
    "m4,1,c4,2026-11-01 10:00:00,5,1,extra",  # one field too many
]


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Every table a load writes, without the columns that name the run (its id and wall-clock time)."""
    out = {}
    for table in ("orders", "browsing", "quarantine", "ingest_manifest"):
        cols = [
            r[0]
            for r in con.execute(f"describe {table}").fetchall()
            if r[0] not in ("_run_id", "run_id", "run_ts", "ingested_at", "loaded_at")
        ]
        order = ", ".join(f'"{c}"' for c in cols)
        out[table] = con.execute(f"select {order} from {table} order by {order}").fetchall()
    return out


def _ingest(settings: Settings, path: Path, stager: Any) -> dict[str, list[tuple[Any, ...]]]:
    con = duckdb.connect(str(path))
    con.execute("set TimeZone = 'UTC'")
    ensure_schema(con)
    for source in ("orders", "browsing"):
        ingest_source(con, settings, source, run_id="r", run_ts=RUN_TS, stager=stager)
    tables = _tables(con)
    con.close()
    return tables


def _settings(root: Path) -> Settings:
    """Orders read in New York (daylight saving), business days in Shanghai."""
    return settings_from_dict(
        {
            "landing_dir": str(root / "landing"),
            "warehouse": str(root / "unused.duckdb"),
            "published_dir": str(root / "published"),
            "time_zone": "Asia/Shanghai",
            "sources": {
                "orders": {
                    "glob": "orders/*",
                    "timestamp_format": "%Y-%m-%d %H:%M:%S",
                    "time_zone": "America/New_York",
                },
                "browsing": {"glob": "browsing/*"},
            },
        },
        base_dir=root,
    )


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    root = tmp_path_factory.mktemp("spark_ingest")
    landing = root / "landing"
    (landing / "orders").mkdir(parents=True)
    (landing / "browsing").mkdir()
    pq.write_table(_order_text_table(), landing / "orders" / "text.parquet")
    pq.write_table(_order_native_table(), landing / "orders" / "native.parquet")
    pq.write_table(_order_decimal_table(), landing / "orders" / "native2.parquet")
    pq.write_table(_order_nanos_table(), landing / "orders" / "nanos.parquet", coerce_timestamps=None)
    pq.write_table(_browsing_table(), landing / "browsing" / "events.parquet")
    (landing / "orders" / "text.csv").write_text("\r\n".join(CSV_LINES) + "\r\n", encoding="utf-8")
    (landing / "orders" / "irregular.csv").write_text("\n".join(IRREGULAR_LINES) + "\n", encoding="utf-8")
    more = [CSV_LINES[0], "k100,1,c100,2026-11-01 10:00:00,5,1", "k101,1,c101,2026-11-01 10:00:00,abc,1"]
    (landing / "orders" / "more.csv").write_text("\n".join(more), encoding="utf-8")  # no final line end
    pq.write_table(_browsing_table().slice(0, 2), landing / "browsing" / "events2.parquet")
    settings = _settings(root)
    duck = _ingest(settings, root / "duck.duckdb", None)
    stager = SparkStager(_session, root / "staging")
    spark = _ingest(settings, root / "spark.duckdb", stager)
    staged = [
        "events.parquet",
        "events2.parquet",
        "more.csv",
        "native.parquet",
        "native2.parquet",
        "text.csv",
        "text.parquet",
    ]
    assert sorted(p.name for p in stager.staged) == staged
    # One Spark job per staging statement and raw column types: the three CSV files, the two browsing files,
    # each other Parquet file (native2's DECIMAL amount keeps it apart from native's DOUBLE).
    assert stager.jobs == 5
    assert [p.name for p, _ in stager.handed_back] == ["irregular.csv", "nanos.parquet"]
    return duck, spark


def test_every_table_the_load_writes_is_equal_on_both_engines(both_engines):
    duck, spark = both_engines
    for table in ("orders", "browsing", "ingest_manifest", "quarantine"):
        assert spark[table] == duck[table], table
    # Quarantined floating-point values as DuckDB writes them (Java: 1.0E20, 1.2345678E7, 1.234E-4, 1.50000005E7;
    # a DECIMAL(20,3) keeps its scale: the union with a DOUBLE column would have shown -1.5).
    # (source, file, line, column, value, reason, run time, rule)
    values = {(r[1].split("/")[1], r[2]): r[4] for r in spark["quarantine"]}
    assert values["text.parquet", 22] == values["native.parquet", 5] == "1e+20"
    assert (values["text.parquet", 44], values["text.parquet", 45]) == ("12345678.0", "0.0001234")
    assert (values["native.parquet", 7], values["native2.parquet", 1]) == ("15000000.5", "-1.500")


def test_planted_lines_end_where_worked_out_by_hand(both_engines):
    _, spark = both_engines
    codes = {(r[1].split("/")[1], r[2]): (r[3], r[7]) for r in spark["quarantine"]}
    assert codes == {
        ("events.parquet", 2): ("event_ts", "future"),
        ("events.parquet", 3): ("session_id", "required"),
        ("native.parquet", 2): ("order_ts", "type"),  # 02:30 on 2026-03-08 does not exist in New York
        ("native.parquet", 3): ("order_id", "reader"),  # 103.5 is not an id
        ("native.parquet", 4): ("order_id", "required"),
        ("native.parquet", 5): ("amount", "type"),  # 1e20 does not fit DECIMAL(18,2)
        ("native.parquet", 6): ("order_id", "reader"),  # NaN is not an id
        ("native.parquet", 7): ("order_id", "reader"),  # 15000000.5 is not an id
        ("native2.parquet", 1): ("amount", "min"),  # -1.500
        ("nanos.parquet", 2): ("order_ts", "type"),  # the New York gap, found by DuckDB's staging
        **{("text.parquet", n): ("order_ts", "type") for n in (9, 10, 11, 12, 13, 14, 15, 16, 30, 39, 40, 41, 42)},
        ("text.parquet", 18): ("amount", "precision"),
        **{("text.parquet", n): ("amount", "type") for n in (20, 22, 23)},
        ("text.parquet", 21): ("amount", "min"),
        ("text.parquet", 24): ("order_ts", "future"),
        ("text.parquet", 26): ("status", "accepted"),
        ("text.parquet", 28): ("customer_id", "required"),
        ("text.parquet", 29): ("customer_id", "required"),
        ("text.parquet", 31): ("line_id", "min"),
        ("text.parquet", 33): ("order_id,line_id", "duplicate_key"),
        ("text.parquet", 34): ("order_id,line_id", "duplicate_key"),
        ("text.parquet", 35): ("quantity", "max"),
        ("text.parquet", 44): ("amount", "max"),
        ("text.parquet", 45): ("amount", "precision"),
        **{("text.csv", n): ("amount", "type") for n in (3, 4, 7, 8, 12, 17)},  # 1_000, ١٢, 1,5, ¥12, inf, 17 digits
        ("text.csv", 6): ("line_id", "type"),  # 0x10
        ("text.csv", 9): ("amount", "precision"),
        ("text.csv", 11): ("quantity", "type"),  # 1.5
        ("text.csv", 16): ("customer_id", "required"),
        ("irregular.csv", 5): (None, "parse"),  # DuckDB's reader: one field short
        ("irregular.csv", 6): (None, "parse"),
        ("more.csv", 3): ("amount", "type"),
        ("events2.parquet", 2): ("event_ts", "future"),
    }
    # orders columns: order_id, line_id, customer_id, order_ts, order_date, amount, quantity, unit_price, status
    loaded = {r[0]: r for r in spark["orders"]}
    parquet_loaded = ["101", "202", "o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8", "o17", "o19", "o25", "o27", "o34"]
    assert sorted(loaded) == sorted(
        [*parquet_loaded, "o35", "o36", "o41", "o44", "q1", "k100", "k1", "k4", "k9", "k12", "k13", "k14", "m1", "m2"]
    )
    assert (loaded["k4"][1], loaded["k4"][5]) == (3, Decimal("100.00"))  # '3.0' and '1e2'
    assert (loaded["k9"][5], loaded["k9"][6]) == (Decimal("0.50"), 2)  # '.5' and '+2'
    assert loaded["k12"][2] == 'c12 "q"' and loaded["k13"][2] == "c13" and loaded["k14"][1] == 1
    assert loaded["m2"][2] == "c2 with a\nline break"  # the quoted line break, read by DuckDB
    ts = {k: r[3] for k, r in loaded.items()}
    assert ts["o1"] == datetime(2026, 11, 1, 15)  # 10:00 in New York (EST, UTC-5)
    assert ts["o2"] == datetime(2026, 1, 5, 6, 2, 3)  # one-digit fields read as the format's
    assert ts["o5"] == datetime(2026, 11, 1, 2)  # 10:00+08:00 without seconds
    assert ts["o7"] == ts["o17"] == datetime(2026, 11, 1, 5, 30)  # the fall-back hour: the earlier instant
    assert ts["o8"] == datetime(2026, 3, 8, 7, 30)  # a named zone's gap moves forward, as the zone rules say
    assert ts["o44"] == datetime(2026, 4, 4, 14, 45)  # Lord Howe falls back half an hour: 01:45 at +11:00
    assert ts["o34"] == datetime(2026, 11, 1, 15, 0, 0, 500000)
    assert ts["o35"] == ts["o36"] == datetime(2026, 11, 1, 10)  # Z and UTC
    assert ts["o41"] == datetime(2026, 11, 2, 4)  # 10:00-18:00
    assert loaded["o19"][5] == Decimal("0.30") and loaded["o35"][5] == Decimal("0.00")
    assert loaded["o27"][2] == "c27" and loaded["o27"][8] == "completed"  # Unicode white space trimmed
    manifest = {r[1]: r[6:10] for r in spark["ingest_manifest"]}  # read, loaded, quarantined, duplicates
    assert manifest == {
        "browsing/events.parquet": (4, 1, 2, 1),
        "orders/native.parquet": (7, 1, 6, 0),
        "orders/native2.parquet": (2, 1, 1, 0),
        "orders/nanos.parquet": (2, 1, 1, 0),
        "orders/text.parquet": (46, 17, 28, 1),
        "orders/text.csv": (17, 6, 10, 1),
        "orders/irregular.csv": (4, 2, 2, 0),
        "orders/more.csv": (2, 1, 1, 0),
        "browsing/events2.parquet": (2, 1, 1, 0),  # duplicates are found within a file: line 1 loads again
    }


def test_rendered_statement_has_no_duckdb_only_function_left():
    from data_contracts.contracts import load_contract
    from ingestion.rules import Stage

    stage = Stage(load_contract("orders"), _settings(Path("/nonexistent")), "orders", RUN_TS)
    positions = {"order_id": "c0", "customer_id": "c1", "order_ts": "c2", "amount": "c3"}
    types = {"c0": "VARCHAR", "c1": "VARCHAR", "c2": "VARCHAR", "c3": "DOUBLE"}
    text, names = render_stage(stage.stage_sql("_raw", positions, types, hashes=False), types)
    text = text.lower()
    assert {"ts_java", "ts_guard", "src_tz", "zones", "rule_columns", "earliest", "run_ts"} <= names
    for name in ("try_strptime", "timezone(", "regexp_full_match", "isfinite", "list_contains", "hash(", "$ts_"):
        assert name not in text, name
    assert ":ts_java" in text and ":rule_columns" in text  # values stay bound
    assert "to_utc_timestamp" in text and "try_to_timestamp" in text and "element_at" in text


def test_strptime_formats_become_java_patterns_and_guards():
    java, guard = strptime_pattern("%Y-%m-%d  %H:%M:%S.%f")
    assert java == "y'-'M'-'d H':'m':'s'.'SSSSSS"  # literals quoted, a space run one space
    assert guard == r"^[0-9]{1,4}\-[0-9]{1,2}\-[0-9]{1,2}[ \t\n\f\r]+[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}\.[0-9]{1,6}\z"
    assert strptime_pattern("[%d/%m/%Y]")[0] == "'['d'/'M'/'y']'"  # Java's optional-section brackets quoted
    assert strptime_pattern("%d'%m")[0] == "d''M"
    with pytest.raises(SparkIngestError, match=r"sources\.orders\.timestamp_format: %b is not read on Spark"):
        strptime_pattern("%d %b %Y", "sources.orders.timestamp_format")
    with pytest.raises(SparkIngestError, match="without a separator"):
        strptime_pattern("%Y%m%d")


def test_a_stager_that_cannot_start_fails_the_run_and_rejects_no_file(tmp_path: Path):
    (tmp_path / "landing" / "orders").mkdir(parents=True)
    pq.write_table(_order_text_table().slice(0, 3), tmp_path / "landing" / "orders" / "a.parquet")
    settings = _settings(tmp_path)

    def no_session() -> Any:
        raise SparkUnavailableError("could not start Spark (no Java)")

    con = duckdb.connect()
    ensure_schema(con)
    with pytest.raises(StagerUnavailable, match="could not start a Spark session"):
        ingest_source(con, settings, "orders", run_id="r", run_ts=RUN_TS, stager=SparkStager(no_session, tmp_path))
    # Nothing recorded: the file is not "rejected" (which would keep it out until it changes) and loads next run.
    assert con.execute("select count(*) from ingest_manifest").fetchall() == [(0,)]
    report = ingest_source(con, settings, "orders", run_id="r2", run_ts=RUN_TS)
    assert [(f.status, f.rows_loaded) for f in report.files] == [("loaded", 3)]


def test_what_spark_would_read_otherwise_is_left_to_duckdb_and_the_session_survives(tmp_path: Path):
    """Found by review: bytes that are not UTF-8 (Spark keeps them), a line over DuckDB's 2 MiB limit in
    under a million characters, a long quoted field (Java's regex recursion once took the JVM down), many
    doubled quotes, and Parquet files alike but for a column's type (one union would widen it)."""
    orders = tmp_path / "landing" / "orders"
    orders.mkdir(parents=True)
    head = "order_id,line_id,customer_id,order_ts,amount,quantity,category"
    line = "{},1,c1,2026-11-01 10:00:00,5,1,{}"
    (orders / "a_regular.csv").write_text("\n".join([head, line.format("a1", "ok"), line.format("a2", "")]) + "\n")
    (orders / "b_latin1.csv").write_bytes("\n".join([head, line.format("b1", "café")]).encode("latin-1") + b"\n")
    (orders / "c_long.csv").write_text("\n".join([head, line.format("c1", "中" * 800_000)]) + "\n")
    (orders / "d_quoted.csv").write_text("\n".join([head, line.format("d1", '"' + "comment, " * 2000 + '"')]) + "\n")
    (orders / "e_quotes.csv").write_text("\n".join([head, line.format("e1", '"' + '""' * 1500 + '"')]) + "\n")
    base = {"order_id": ["p1", "p2"], "customer_id": ["c1", "c2"], "order_ts": ["2026-11-01 10:00:00"] * 2}
    pq.write_table(pa.table({**base, "amount": pa.array([12, -5], pa.int64())}), orders / "p_int.parquet")
    pq.write_table(pa.table({**base, "order_id": ["q1", "q2"], "amount": [7.5, -1.0]}), orders / "q_double.parquet")
    text_ts = {**base, "order_id": ["t1", "t2"], "order_ts": ["2026-11-01 10:00:00", "2026-11-02T11:30:00"]}
    pq.write_table(pa.table({**text_ts, "amount": [1.0, 2.0]}), orders / "t_text.parquet")
    dated = {**base, "order_id": ["u1", "u2"], "order_ts": pa.array([datetime(2026, 11, 1).date()] * 2, pa.date32())}
    pq.write_table(pa.table({**dated, "amount": [1.0, 2.0]}), orders / "u_date.parquet")
    settings = _settings(tmp_path)
    duck = _ingest(settings, tmp_path / "duck.duckdb", None)
    stager = SparkStager(_session, tmp_path / "staging")
    spark = _ingest(settings, tmp_path / "spark.duckdb", stager)
    assert spark == duck
    assert sorted(p.name for p, _ in stager.handed_back) == ["b_latin1.csv", "c_long.csv", "e_quotes.csv"]
    assert "d_quoted.csv" in [p.name for p in stager.staged]  # read on Spark, the JVM alive
    assert _session().range(3).count() == 3
    # By hand: DuckDB's reader quarantines the Latin-1 line and the long line; -5 and -1.0 break amount's min.
    found = {(r[1].split("/")[1], r[2]): (r[3], r[4], r[7]) for r in spark["quarantine"]}
    assert found[("b_latin1.csv", 2)][2] == found[("c_long.csv", 2)][2] == "parse"
    assert found[("p_int.parquet", 2)] == ("amount", "-5", "min")
    assert found[("q_double.parquet", 2)] == ("amount", "-1.0", "min")
    loaded = {r[0]: r[3] for r in spark["orders"]}
    assert loaded["t2"] == datetime(2026, 11, 2, 16, 30)  # 11:30 in New York, not cut to a date


def test_a_file_changed_after_its_batch_loads_as_hashed_and_again_next_run_and_a_count_mismatch_hands_back(
    tmp_path: Path,
):
    from ingestion.loader import Ingestor

    orders = tmp_path / "landing" / "orders"
    orders.mkdir(parents=True)
    head = "order_id,line_id,customer_id,order_ts,amount,quantity"
    for name in ("a", "b", "c"):
        (orders / f"{name}.csv").write_text(f"{head}\n{name}1,1,c1,2026-11-01 10:00:00,5,1\n")
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    ensure_schema(con)
    settings = _settings(tmp_path)
    stager = SparkStager(_session, tmp_path / "staging")
    ingestor = Ingestor(con, settings, "orders", run_id="r", run_ts=RUN_TS, stager=stager)
    files = sorted(orders.iterdir())
    ingestor._prestage(files)  # one job stages the three files as they are now, and hashes them
    with (orders / "a.csv").open("a") as fh:
        fh.write("a2,1,c2,2026-11-01 10:00:00,6,1\n")  # a line more than was hashed and staged
    # Planted: c.csv's output disagrees with the lines counted (as when a file changes between Spark's passes).
    stager._batches[orders / "c.csv"].records[orders / "c.csv"] = 2
    results = [ingestor.ingest_file(p) for p in files]
    stager.finish()
    assert stager.jobs == 1 and [p.name for p in stager.staged] == ["a.csv", "b.csv"]
    assert [(p.name, why) for p, why in stager.handed_back] == [
        ("c.csv", "the file changed while Spark staged it (its lines no longer add up)")
    ]
    # a.csv loads as hashed (one line) and c.csv as DuckDB reads it; every file's lines add up.
    assert [(r.rows_read, r.rows_loaded, r.balanced) for r in results] == [(1, 1, True)] * 3
    # The next run sees a.csv's new hash and loads it whole.
    report = ingest_source(con, settings, "orders", run_id="r2", run_ts=RUN_TS, stager=stager)
    assert [(f.path, f.status, f.rows_loaded) for f in report.files if f.status != "unchanged"] == [
        ("orders/a.csv", "loaded", 2)
    ]
    assert sorted(r[0] for r in con.execute("select order_id from orders").fetchall()) == ["a1", "a2", "b1", "c1"]
