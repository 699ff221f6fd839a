"""Fix-and-rerun (issue 11): a config change reloads the files it affects, `reingest` forces a reload, and the
report explains quarantine with counts, an example and the config key to change."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from ingestion.loader import reingest
from pipelines.cli import main
from segments.config import ConfigError

try:
    from tests.test_ingest import ORDERS_HEADER, RUN_TS, accounting, csv_text, ingest, quarantine, scalar, write
except ImportError:  # pragma: no cover - run from inside tests/
    from test_ingest import ORDERS_HEADER, RUN_TS, accounting, csv_text, ingest, quarantine, scalar, write

H = ORDERS_HEADER
US_DATES = csv_text(H, "o1,c1,07/09/2026 10:00,1", "o2,c2,07/10/2026 11:00,2", "o3,c3,2026-07-11 12:00:00,3")


def test_fixing_the_timestamp_format_reloads_the_unchanged_file(landing, make_settings, con):
    write(landing, "orders/a.csv", US_DATES)
    first = ingest(con, make_settings())
    assert accounting(first) == [("orders/a.csv", "loaded", 3, 1, 2, 0)]
    assert first.status == "QUARANTINED 2"
    [top] = first.quarantine_reasons
    assert top["rows"] == 2 and top["example"] == "orders/a.csv:2" and top["value"] == "07/09/2026 10:00"
    assert top["hint"].startswith("sources.orders.timestamp_format")

    fixed = make_settings(orders={"glob": "orders/*", "timestamp_format": "%m/%d/%Y %H:%M"})
    second = ingest(con, fixed)
    assert accounting(second) == [("orders/a.csv", "loaded", 3, 3, 0, 0)]
    assert (second.status, second.quarantine_reasons) == ("OK", [])
    assert quarantine(con) == []
    assert scalar(con, "select order_ts from orders where order_id = 'o1'") == datetime(2026, 7, 9, 10)
    # Same file, same config: skipped.
    assert [f.status for f in ingest(con, fixed).files] == ["unchanged"]


def test_fixing_a_rename_reloads_a_rejected_file(landing, make_settings, con):
    write(landing, "orders/a.csv", csv_text("order_no,member,order_ts,amount", "o1,c1,2026-11-21 00:30:00,1"))
    first = ingest(con, make_settings())
    assert (first.files[0].status, first.status) == ("rejected", "REJECTED 1")
    fixed = make_settings(orders={"glob": "orders/*", "rename": {"order_no": "order_id", "member": "customer_id"}})
    assert accounting(ingest(con, fixed)) == [("orders/a.csv", "loaded", 1, 1, 0, 0)]


@pytest.mark.parametrize(
    "change",
    [
        {"time_zone": "Asia/Shanghai"},
        {"currency": "USD"},
        {"delimiter": ";"},
        {"earliest_date": "2010-01-01"},
        {"thousands_separator": ","},
    ],
)
def test_every_reading_setting_is_in_the_fingerprint(landing, make_settings, con, change):
    write(landing, "orders/a.csv", csv_text(H, "o1,c1,2026-11-21 00:30:00,1"))
    ingest(con, make_settings())
    again = ingest(con, make_settings(orders={"glob": "orders/*", **change}, currencies=["CNY", "USD"]))
    assert again.files[0].status != "unchanged"


def test_changing_the_glob_or_schedule_does_not_reload(landing, make_settings, con):
    write(landing, "orders/a.csv", csv_text(H, "o1,c1,2026-11-21 00:30:00,1"))
    ingest(con, make_settings())
    again = ingest(con, make_settings(orders={"glob": "orders/*.csv"}, schedule={"hour": 5}))
    assert [f.status for f in again.files] == ["unchanged"]


def test_reingest_reloads_only_the_chosen_files(landing, make_settings, con):
    write(landing, "orders/2026-11-20.csv", csv_text(H, "o1,c1,2026-11-20 00:30:00,1"))
    write(landing, "orders/2026-11-21.csv", csv_text(H, "o2,c2,2026-11-21 00:30:00,2"))
    settings = make_settings()
    ingest(con, settings)
    con.execute("delete from orders")  # as if rows were lost: only a forced reload brings them back
    reports = reingest(con, settings, "orders", "*-11-21.csv", run_id="r", run_ts=RUN_TS)
    assert [(f.path, f.status) for r in reports for f in r.files] == [("orders/2026-11-21.csv", "loaded")]
    assert scalar(con, "select string_agg(order_id, ',') from orders") == "o2"
    reports = reingest(con, settings, run_id="r2", run_ts=RUN_TS)
    assert [f.status for f in reports[0].files] == ["loaded", "loaded"]
    assert scalar(con, "select count(*) from orders") == 2
    with pytest.raises(ValueError, match="unknown source"):
        reingest(con, settings, "nope")


def test_segments_reingest_command_reloads_and_prints_the_reasons(tmp_path, landing, capsys):
    write(landing, "orders/a.csv", US_DATES)
    cfg = tmp_path / "segments.yaml"
    cfg.write_text(
        f"landing_dir: {landing}\nwarehouse: {tmp_path / 'w.duckdb'}\npublished_dir: {tmp_path / 'pub'}\n"
        "time_zone: UTC\nsources:\n  orders:\n    glob: 'orders/*'\n",
        encoding="utf-8",
    )
    assert main(["--config", str(cfg), "reingest", "orders"]) == 0
    out = capsys.readouterr().out
    assert "QUARANTINED 2" in out and "hint: sources.orders.timestamp_format" in out
    cfg.write_text(cfg.read_text() + "    timestamp_format: '%m/%d/%Y %H:%M'\n", encoding="utf-8")
    assert main(["--config", str(cfg), "reingest", "--file", "orders/a.csv"]) == 0
    out = capsys.readouterr().out
    assert "orders     files reloaded    1" in out and "OK" in out
    assert main(["--config", str(cfg), "reingest", "nope"]) == 2


# ------------------------------------------------------------------------ separators and symbols
@pytest.mark.parametrize(
    ("config", "value", "amount"),
    [
        ({"thousands_separator": ","}, '"1,234.50"', Decimal("1234.50")),
        ({"thousands_separator": ","}, "1234.5", Decimal("1234.50")),
        ({"thousands_separator": ".", "decimal_separator": ","}, '"1.234,50"', Decimal("1234.50")),
        ({"decimal_separator": ","}, '"10,5"', Decimal("10.50")),
        ({"currency_symbol": "¥"}, "¥88.00", Decimal("88.00")),
        ({"currency_symbol": "¥", "thousands_separator": ","}, '"¥ 1,088.00"', Decimal("1088.00")),
    ],
)
def test_configured_separators_and_symbol_read_the_number(landing, make_settings, con, config, value, amount):
    write(landing, "orders/a.csv", csv_text(H, f"o1,c1,2026-11-21 00:30:00,{value}"))
    ingest(con, make_settings(orders={"glob": "orders/*", **config}))
    assert quarantine(con) == []
    assert scalar(con, "select amount from orders") == amount


@pytest.mark.parametrize(("config", "value"), [({"thousands_separator": ","}, '"1,23.50"'), ({}, '"1,234.50"')])
def test_malformed_grouping_is_quarantined_with_a_reason_naming_the_keys(landing, make_settings, con, config, value):
    write(landing, "orders/a.csv", csv_text(H, f"o1,c1,2026-11-21 00:30:00,{value}"))
    report = ingest(con, make_settings(orders={"glob": "orders/*", **config}))
    [row] = quarantine(con)
    assert "thousands_separator" in row[4] and "decimal_separator" in row[4]
    assert report.quarantine_reasons[0]["hint"] == (
        "sources.orders.decimal_separator / sources.orders.thousands_separator"
    )


@pytest.mark.parametrize("bad", [{"decimal_separator": ";"}, {"thousands_separator": "."}, {"currency_symbol": "1"}])
def test_separator_config_is_validated(make_settings, bad):
    with pytest.raises(ConfigError, match=r"separator|currency_symbol"):
        make_settings(orders={"glob": "orders/*", **bad})


def test_summary_ranks_reasons_with_counts_examples_and_hints(landing, make_settings, con):
    write(
        landing,
        "orders/a.csv",
        csv_text(
            H,
            "o1,,2026-11-21 00:30:00,1",
            "o2,c2,2026-11-21 00:30:00,-1",
            "o3,,2026-11-21 00:30:00,1",
            "o4,c4,0001-01-01 00:00:00,1",
        ),
    )
    report = ingest(con, make_settings())
    got = [(r["column"], r["rows"], r["example"], r["hint"][:30]) for r in report.quarantine_reasons]
    assert got == [
        ("customer_id", 2, "orders/a.csv:2", "map the file's column onto cus"),
        ("order_ts", 1, "orders/a.csv:5", "earliest_date (or sources.orde"),
        ("amount", 1, "orders/a.csv:3", "fix the value in the export"),
    ]
    assert report.status == "QUARANTINED 4"
