"""The benchmark harness works end to end at a tiny scale (not timed), and its nightly day is a real next day."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb

from segments.sample_data import generate

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / "bench" / "harness.py"
PIPELINE_STAGES = {
    "imports",
    "ingest orders",
    "ingest browsing",
    "ingest feedback",
    "ingest customers",
    "input checks",
    "features",
    "segmentation",
    "output checks",
    "publish",
    "orchestration",
}


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_harness_reports_every_stage_and_both_floors(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(HARNESS), "--customers", "300", "--days", "30", "--reps", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("bench-c300-d30-*.json")
    result = json.loads(path.read_text(encoding="utf-8"))

    run = result["runs"]["first"]
    assert run["summary"]["success"], run["summary"]
    assert {s["stage"] for s in run["stages"]} == PIPELINE_STAGES
    for stage in [*run["stages"], run["total"]]:
        assert stage["wall_s"] > 0 and stage["cpu_s"] >= 0 and stage["peak_rss_mb"] > 0, stage
    # The stages partition the run: their walls add up to the total.
    assert abs(sum(s["wall_s"] for s in run["stages"]) - run["total"]["wall_s"]) < 0.05 * run["total"]["wall_s"]

    for kind in ("load", "nightly"):
        floor = result["floors"][kind]
        assert floor["reps"] == 1 and len(floor["wall_s"]) == 1 and floor["wall_median_s"] > 0
        assert floor["customers"] > 250, floor  # ~300 customers (+ a few unknown browsing ids), aggregated
    assert result["judgement"]["first_run_vs_load_floor"]["wall"] > 1
    assert set(result["judgement"]["targets"]) == {"first_run_vs_load_floor", "peak_rss_gb"}
    assert result["data"]["counts"]["customers"] == 300
    assert {"python", "duckdb", "polars", "dagster", "great-expectations"} <= set(result["versions"])
    assert {"cpus", "memory_gb"} <= set(result["machine"]) and result["git"]["commit"]
    assert "dont_write_bytecode" in result["bytecode"]
    assert "first run" in done.stdout and "load floor" in done.stdout
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def test_next_day_moves_the_newest_daily_files_one_day_on_with_new_keys(tmp_path: Path) -> None:
    nextday = _bench_module("nextday")
    end = date(2026, 11, 21)
    generate(tmp_path / "landing", customers=300, days=20, end_date=end, daily_days=3)
    day, rows = nextday.write_next_day(tmp_path / "landing", tmp_path / "new")
    assert day == end + timedelta(days=1)
    con = duckdb.connect()
    for source, ts, key, ext in (
        ("orders", "order_ts", "order_id", "csv"),
        ("feedback", "submitted_ts", "feedback_id", "csv"),
        ("browsing", "event_ts", "session_id", "parquet"),
    ):
        old = tmp_path / "landing" / source / f"{source}_{end.isoformat()}.{ext}"
        new = tmp_path / "new" / source / f"{source}_{day.isoformat()}.{ext}"
        reader = "read_parquet" if ext == "parquet" else "read_csv"
        args = "" if ext == "parquet" else ", all_varchar = true"
        # Rows paired by position: a timestamp that parses moved exactly one day, one that does not is kept,
        # and every key got the new day's suffix (a null key stays null).
        parse = "try_strptime(cast({} as varchar), '%Y-%m-%d %H:%M:%S')"
        n, wrong = con.execute(
            f"""
            with o as (select *, row_number() over () as i from {reader}($old{args})),
                 n as (select *, row_number() over () as i from {reader}($new{args}))
            select count(*), count(*) filter (where not (
                coalesce({parse.format("n." + ts)} = {parse.format("o." + ts)} + interval 1 day,
                         cast(n.{ts} as varchar) = cast(o.{ts} as varchar))
                and n.{key} is not distinct from o.{key} || '-20261122'))
            from o join n using (i)
            """,
            {"old": str(old), "new": str(new)},
        ).fetchall()[0]
        assert n == rows[source] > 0
        assert wrong == 0
