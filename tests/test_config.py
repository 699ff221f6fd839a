"""Config file, contract loading and the warehouse connection: errors that name the key, the file, the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from data_contracts.contracts import (
    INPUT_SOURCES,
    ContractError,
    load_contract,
    load_contract_file,
    output_contracts,
)
from segments.config import ConfigError, load_settings
from segments.warehouse import WarehouseBusyError, connect

BASE = {"sources": {"orders": {"glob": "orders/*"}}}


def _write(folder: Path, data: dict) -> Path:
    path = folder / "cfg.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_relative_paths_resolve_against_the_config_folder_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    cfg = _write(tmp_path / "conf", {**BASE, "landing_dir": "in", "warehouse": "../wh/w.duckdb"})
    monkeypatch.chdir(tmp_path)
    s = load_settings(cfg)
    assert s.landing_dir == tmp_path / "conf" / "in"
    assert s.warehouse == tmp_path / "wh" / "w.duckdb"
    assert s.published_dir == tmp_path / "conf" / "data" / "published"
    assert s.currencies == ["CNY"]  # defaults to the one currency


def test_segments_config_env_var_is_the_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _write(tmp_path, {**BASE, "time_zone": "Europe/Berlin"})
    monkeypatch.setenv("SEGMENTS_CONFIG", str(cfg))
    assert load_settings().time_zone == "Europe/Berlin"


def test_missing_config_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not found \(set SEGMENTS_CONFIG"):
        load_settings(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"landing_dirr": "x"}, "landing_dirr: Extra inputs are not permitted"),
        ({"time_zone": "Mars/Olympus"}, "time_zone: Value error, unknown time zone 'Mars/Olympus'"),
        ({"currency": "yuan"}, "currency: Value error, currency must be a 3-letter ISO code"),
        ({"memory_limit": "lots"}, "memory_limit: Value error, memory_limit must look like"),
        ({"sources": {"orders": {"glob": "orders/*", "format": "xlsx"}}}, "sources.orders.format"),
        ({"sources": {"orders": {"glob": "../../etc/*"}}}, "sources.orders.glob: Value error, glob '../../etc/*'"),
        ({"sources": {"orders": {"glob": "o/*", "delimiter": ";;"}}}, "sources.orders.delimiter"),
        ({"sources": {"orders": {"glob": "o/*", "rename": {"x": "nope"}}}}, "sources.orders.rename maps onto"),
        ({"sources": {"orders": {"glob": "o/*"}, "clicks": {"glob": "c/*"}}}, "unknown source(s) ['clicks']"),
        ({"sources": {"browsing": {"glob": "b/*"}}}, "sources.orders is required"),
        ({"schedule": {"hour": 25}}, "schedule.hour: Input should be less than or equal to 23"),
        ({"segmentation": {"grades": {"method": "vibes"}}}, "segmentation.grades.method"),
    ],
)
def test_invalid_config_names_the_key(tmp_path: Path, change: dict, key: str) -> None:
    cfg = _write(tmp_path, {**BASE, **change})
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert str(cfg) in str(err.value)
    assert key in str(err.value)


def test_every_packaged_contract_loads_with_derived_local_dates() -> None:
    orders = load_contract("orders")
    assert orders.primary_key == ("order_id", "line_id")
    assert ("order_date", "DATE") in orders.storage_columns()
    assert dict(orders.storage_columns())["amount"] == "DECIMAL(18,2)"
    # line_id and status have defaults, so a file may omit them; currency defaults from the config
    assert orders.required_columns == ["order_id", "customer_id", "order_ts", "amount"]
    assert load_contract("customers").pii_columns == ["email", "phone", "name"]
    assert load_contract("feedback").require_any == ("rating", "nps", "comment")
    assert {load_contract(s).name for s in INPUT_SOURCES} == set(INPUT_SOURCES)


def test_output_contracts_publish_no_pii_column() -> None:
    pii = {c for s in INPUT_SOURCES for c in load_contract(s).pii_columns}
    for name, contract in output_contracts().items():
        assert not pii & set(contract.column_names), name
        assert all(c.description for c in contract.columns), name


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name: t\ngrain: g\ncolumns: [{name: a, type: text}]\n", "columns.0.type"),
        ("name: t\ngrain: g\ncolumns: [{name: a, type: string}, {name: a, type: string}]\n", "duplicate columns ['a']"),
        ("name: t\ngrain: g\nprimary_key: [b]\ncolumns: [{name: a, type: string}]\n", "unknown columns ['b']"),
        ("name: t\ngrain: g\ncolumns: [{name: A b, type: string}]\n", "must be lower_snake_case"),
        ("name: t\ngrain: g\ncolumns: [{name: a, type: integer, min: 5, max: 1}]\n", "min 5.0 > max 1.0"),
        ("name: t\ncolumns: [{name: a, type: string}]\n", "grain: Field required"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_malformed_contract_names_the_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ContractError) as err:
        load_contract_file(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_connection_applies_the_memory_limit(tmp_path: Path) -> None:
    with connect(tmp_path / "w.duckdb", memory_limit="512MB") as con:
        limit = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
        tz = con.execute("select current_setting('TimeZone')").fetchall()[0][0]
    assert limit in ("488.2 MiB", "512.0 MB", "512MB") and tz == "UTC"


def test_a_second_process_waits_for_the_writer_then_fails_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        busy = pytest.raises(
            WarehouseBusyError, match=r"locked by another process for more than 1s.*re-running is safe"
        )
        with busy, connect(path, timeout_s=1.0, poll_s=0.1):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with connect(path, timeout_s=5.0) as con:  # free again once the holder is gone
        assert con.execute("select 1").fetchall() == [(1,)]
