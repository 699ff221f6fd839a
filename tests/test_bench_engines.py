"""The engine comparison of the benchmark (``harness.py --engine spark``): the side-by-side table, the check
that both runs published the same tables, and CPU counted for child processes (the Spark JVM)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]


def _bench_module(name: str):
    sys.path.insert(0, str(REPO / "bench"))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "bench"))
    return module


def _run(stages: dict[str, tuple[float, float]]) -> dict:
    rows = [{"stage": k, "wall_s": w, "cpu_s": c} for k, (w, c) in stages.items()]
    walls, cpus = zip(*stages.values(), strict=True)
    total = {"stage": "total", "wall_s": sum(walls), "cpu_s": sum(cpus)}
    return {"as_of": "2026-11-21", "stages": rows, "total": total}


def test_engine_table_puts_each_stage_of_both_runs_side_by_side() -> None:
    table = _bench_module("engine_compare").engine_table(
        _run({"features": (2.0, 1.5), "segmentation": (4.0, 3.0)}),
        _run({"features": (30.0, 20.0), "segmentation": (6.0, 5.0), "spark only": (1.0, 1.0)}),
    )
    assert table[1].startswith("| stage | DuckDB wall s | DuckDB CPU s | Spark wall s | Spark CPU s |")
    assert table[3:] == [
        "| features | 2.0 | 1.5 | 30.0 | 20.0 | 15.0× |",
        "| segmentation | 4.0 | 3.0 | 6.0 | 5.0 | 1.5× |",
        "| spark only | – | – | 1.0 | 1.0 | – |",
        "| total | 6.0 | 4.5 | 37.0 | 26.0 | 6.2× |",
    ]


def test_compare_published_finds_a_planted_difference_and_ignores_run_columns(tmp_path: Path) -> None:
    compare = _bench_module("engine_compare").compare_published
    frame = pl.DataFrame({"customer_id": ["a", "b"], "monetary": [1.0, 2.0], "run_id": ["r1", "r1"]})
    for engine, run_id in (("duckdb", "r1"), ("spark", "r2")):
        folder = tmp_path / engine / "snapshots" / f"2026-11-21-{'ab12' if engine == 'duckdb' else 'cd34'}"
        folder.mkdir(parents=True)
        frame.with_columns(run_id=pl.lit(run_id)).write_parquet(folder / "customer_segments.parquet")
    assert compare(tmp_path / "duckdb", tmp_path / "spark") == "yes (1 tables, 2 rows)"
    path = next((tmp_path / "spark").rglob("*.parquet"))
    frame.with_columns(monetary=pl.Series([1.0, 2.5])).write_parquet(path)
    assert compare(tmp_path / "duckdb", tmp_path / "spark").startswith("no: snapshots/2026-11-21/customer_segments")


def test_sampler_counts_the_cpu_of_child_processes() -> None:
    probe = _bench_module("probe")
    with probe.Sampler() as sampler:
        burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass"
        subprocess.run([sys.executable, "-c", burn], check=True)
    assert sampler.cpu[-1] - sampler.cpu[0] >= 0.5  # the parent itself only waited
