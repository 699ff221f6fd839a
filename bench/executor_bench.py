"""Benchmark: the same nightly run with Dagster's in-process executor vs the multiprocess executor.

Each step of the multiprocess executor starts a fresh Python process that re-imports the code location
(dagster, polars, scikit-learn, GX); the in-process executor pays the imports once. DuckDB allows one
writing process, so parallel steps could not write the warehouse at the same time anyway.

    SEGMENTS_CONFIG=... .venv/bin/python bench/executor_bench.py [--customers 2000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import dagster as dg
import yaml

from pipelines.definitions import build_definitions

AS_OF = "2026-11-21"


def _job(executor: dg.ExecutorDefinition) -> dg.JobDefinition:
    base = build_definitions(os.environ["SEGMENTS_CONFIG"])
    job = dg.define_asset_job("bench_job", selection=dg.AssetSelection.all(), executor_def=executor)
    return dg.Definitions.merge(base, dg.Definitions(jobs=[job])).resolve_job_def("bench_job")


def in_process_job() -> dg.JobDefinition:
    """Reconstructable: every asset in one process."""
    return _job(dg.in_process_executor)


def multiprocess_job() -> dg.JobDefinition:
    """Reconstructable: one process per step (Dagster's default for runs launched from the UI)."""
    return _job(dg.multiprocess_executor)


def main() -> None:
    """Generate sample data, then time one run per executor on fresh copies of the same landing dir."""
    from segments.sample_data import generate

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=2000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="segments-exec-"))
    generate(work / "landing_src", customers=args.customers, days=400, daily_days=7)
    results = {}
    for name, fn in (("in_process", in_process_job), ("multiprocess", multiprocess_job)):
        root = work / name
        shutil.copytree(work / "landing_src", root / "landing")
        cfg = root / "segments.yaml"
        cfg.write_text(
            yaml.safe_dump(
                {
                    "landing_dir": "landing",
                    "warehouse": "wh.duckdb",
                    "published_dir": "published",
                    "time_zone": "Asia/Shanghai",
                    "sources": {
                        s: {"glob": f"{s}/*", "timestamp_format": "%Y-%m-%d %H:%M:%S"}
                        for s in ("orders", "browsing", "feedback", "customers")
                    },
                }
            )
        )
        os.environ["SEGMENTS_CONFIG"] = str(cfg)
        home = root / "dagster_home"
        home.mkdir()
        os.environ["DAGSTER_HOME"] = str(home)
        with dg.DagsterInstance.get() as instance:
            t0 = time.perf_counter()
            res = dg.execute_job(dg.reconstructable(fn), instance=instance, tags={"dagster/partition": AS_OF})
            secs = time.perf_counter() - t0
            steps = len([e for e in res.all_events if e.event_type_value == "STEP_SUCCESS"])
            assert res.success, name
        results[name] = (secs, steps)
        print(f"{name:<13} {secs:6.1f}s for {steps} steps ({secs / steps:.2f}s per step)")
    extra = (results["multiprocess"][0] - results["in_process"][0]) / results["multiprocess"][1]
    print(f"multiprocess costs {extra:.1f}s more per step than in-process")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
