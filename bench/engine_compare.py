"""The two engines' first runs side by side (``harness.py --engine spark``): per-stage table and equal outputs.

The per-stage table is Markdown, so it can go into docs/scale-out.md as printed. The comparison reads
every published Parquet table of both runs (the engine-independent ones, quarantine and data_quality,
are skipped: they come from ingestion, which names its own run time) and checks them row for row.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

# Columns that name the run or its clock, not the data.
VOLATILE = ("run_id", "_run_id", "published_at", "ingested_at")


def _stages(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["stage"]: s for s in run["stages"]} | {"total": run["total"]}


def engine_table(duckdb_run: dict[str, Any], spark_run: dict[str, Any]) -> list[str]:
    """Markdown rows: stage, wall and CPU seconds on each engine, and Spark's wall time over DuckDB's."""
    duck, spark = _stages(duckdb_run), _stages(spark_run)
    names = [n for n in duck if n != "total"] + [n for n in spark if n not in duck and n != "total"] + ["total"]
    lines = [
        f"first run (snapshot {duckdb_run['as_of']}), engine: duckdb vs engine: spark (local[2]); CPU includes the JVM",
        "| stage | DuckDB wall s | DuckDB CPU s | Spark wall s | Spark CPU s | Spark / DuckDB wall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        a, b = duck.get(name), spark.get(name)
        cells = [f"{m[k]:.1f}" if m else "–" for m in (a, b) for k in ("wall_s", "cpu_s")]
        ratio = f"{b['wall_s'] / a['wall_s']:.1f}×" if a and b and a["wall_s"] > 0.05 else "–"
        lines.append(f"| {name} | {' | '.join(cells)} | {ratio} |")
    return lines


def _published(root: Path) -> dict[str, Path]:
    out = {}
    for path in sorted(root.rglob("*.parquet")):
        if any(part.split(".")[0] in ("quarantine", "data_quality") for part in path.parts[-2:]):
            continue
        # a snapshot set's folder is named by a hash of all its tables, quarantine included: drop the hash
        name = re.sub(r"^snapshots/(\d{4}-\d{2}-\d{2})-[0-9a-f]+/", r"snapshots/\1/", path.relative_to(root).as_posix())
        out[name] = path
    return out


def compare_published(duckdb_dir: Path, spark_dir: Path) -> str:
    """'yes (N tables, R rows)' when every published table is equal (doubles within 1e-9), else what differs."""
    want, got = _published(duckdb_dir), _published(spark_dir)
    if sorted(want) != sorted(got):
        return f"no: different tables {sorted(set(want) ^ set(got))[:5]}"
    rows = 0
    for name, path in want.items():
        a, b = pl.read_parquet(path), pl.read_parquet(got[name])
        drop = [c for c in a.columns if c in VOLATILE]
        a, b = a.drop(drop), b.drop([c for c in drop if c in b.columns])
        try:
            assert_frame_equal(b.sort(b.columns), a.sort(a.columns), check_exact=False, abs_tol=1e-9, rel_tol=0)
        except AssertionError as exc:
            return f"no: {name}: {str(exc).splitlines()[0]}"
        rows += a.height
    return f"yes ({len(want)} tables, {rows:,} rows)"
