"""Benchmark: a nightly prediction step, re-fitted (before: every run fitted by pymc-marketing) vs reused
(after: the parameters stored by the previous snapshot, scored in closed form without importing pymc).

Works on a copy of a warehouse (e.g. after ``segments run`` on the sample data): the copy's snapshot D - 1
is predicted once (it fits and stores parameters; pytensor's compile cache is warmed), then snapshot D is
predicted ``--repeat`` times in a fresh process per mode, as a nightly run's process would: ``refit``
(``prediction.refit_every_days: 0``) and ``reuse`` (the default, 7). Each line gives the whole process
(interpreter, imports, stage) and the stage alone, wall and CPU seconds, and whether pymc was imported.

    .venv/bin/python bench/clv_nightly_bench.py --warehouse data/warehouse.duckdb --as-of 2026-11-21
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import json, sys, time
w0, c0 = time.perf_counter(), time.process_time()
from datetime import date
import duckdb
from models.settings import load_segmentation_settings
from models.stages import prediction_stage
settings = load_segmentation_settings({"prediction": {"refit_every_days": int(sys.argv[3])}}).prediction
con = duckdb.connect(sys.argv[1])
w1, c1 = time.perf_counter(), time.process_time()
stage = prediction_stage(con, date.fromisoformat(sys.argv[2]), settings)
con.close()
print(json.dumps({
    "stage_wall": time.perf_counter() - w1, "stage_cpu": time.process_time() - c1,
    "refit": stage.result.params.get("refit"), "reason": stage.result.params.get("refit_reason"),
    "pymc_imported": "pymc" in sys.modules, "buyers": stage.rows,
}))
"""


def _child(warehouse: Path, as_of: date, refit_every_days: int) -> dict[str, float]:
    """One fresh process predicting ``as_of``: its own numbers plus its whole wall and CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(warehouse), as_of.isoformat(), str(refit_every_days)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"prediction stage failed for {as_of}:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out | {"process_wall": wall, "process_cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", required=True, type=Path)
    parser.add_argument("--as-of", required=True, type=date.fromisoformat)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clv_nightly_") as tmp:
        copy = Path(tmp) / "warehouse.duckdb"
        shutil.copy(args.warehouse, copy)
        prepared = _child(copy, args.as_of - timedelta(days=1), 7)
        print(f"prepared D-1 = {args.as_of - timedelta(days=1)}: refit={prepared['refit']} ({prepared['reason']})")
        runs: dict[str, list[dict[str, float]]] = {"refit": [], "reuse": []}
        for _ in range(args.repeat):
            runs["refit"].append(_child(copy, args.as_of, 0))
            runs["reuse"].append(_child(copy, args.as_of, 7))
    print(f"snapshot D = {args.as_of}, {prepared['buyers']:,} buyers, median of {args.repeat} fresh processes")
    print(f"{'mode':<8} {'process wall':>13} {'process CPU':>12} {'stage wall':>11} {'stage CPU':>10}  pymc imported")
    summary = {}
    for mode, rows in runs.items():
        keys = ("process_wall", "process_cpu", "stage_wall", "stage_cpu")
        med = {k: statistics.median(r[k] for r in rows) for k in keys}
        summary[mode] = med | {"reason": rows[0]["reason"], "pymc_imported": rows[0]["pymc_imported"]}
        print(
            f"{mode:<8} {med['process_wall']:13.2f} {med['process_cpu']:12.2f} {med['stage_wall']:11.2f} "
            f"{med['stage_cpu']:10.2f}  {rows[0]['pymc_imported']}  ({rows[0]['reason']})"
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
