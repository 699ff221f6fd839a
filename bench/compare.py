"""Compare harness results side by side: per-stage wall and CPU, and how cost grows with the input rows.

    python bench/compare.py bench/out/bench-S-*.json bench/out/bench-M-*.json [--run first|nightly]

Linear cost means the seconds grow like the rows: the ``growth`` column divides each result's growth in
CPU seconds (``--metric wall_s`` for wall) by its growth in input rows against the first file (1.0 = linear;
below 1 means a fixed cost still weighs on the smaller run, above 1 means worse than linear).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def input_rows(result: dict[str, Any]) -> int:
    """Rows of the generated landing files (order lines + browsing events + feedback + customers)."""
    c = result["data"]["counts"]
    return int(c["orders_lines"] + c["browsing_events"] + c["feedback_rows"] + c["customers"])


def stage_table(results: list[dict[str, Any]], run: str, metric: str = "cpu_s") -> list[str]:
    """One line per stage: wall and CPU of every result, then growth of ``metric`` vs the first per row growth."""
    names: list[str] = []
    for r in results:
        names += [s["stage"] for s in r["runs"][run]["stages"] if s["stage"] not in names]
    labels = [r["label"] for r in results]
    head = f"{'stage':<20}" + "".join(f"{lab + ' wall':>12}{lab + ' cpu':>11}" for lab in labels)
    head += "".join(f"{'growth ' + lab:>13}" for lab in labels[1:])
    lines = [head]
    base_rows = input_rows(results[0])
    for name in [*names, "total"]:
        cells, walls = "", []
        for r in results:
            stage = (
                r["runs"][run]["total"]
                if name == "total"
                else next((s for s in r["runs"][run]["stages"] if s["stage"] == name), None)
            )
            walls.append(stage[metric] if stage else None)
            cells += f"{stage['wall_s']:>12.2f}{stage['cpu_s']:>11.2f}" if stage else f"{'-':>12}{'-':>11}"
        for r, w in zip(results[1:], walls[1:], strict=True):
            rows_growth = input_rows(r) / base_rows
            ok = w is not None and walls[0]
            cells += f"{(w / walls[0]) / rows_growth:>13.2f}" if ok else f"{'-':>13}"
        lines.append(f"{name:<20}{cells}")
    return lines


def main() -> None:
    """Print the comparison of the given result files (in the order given)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--run", default="first", choices=["first", "nightly"])
    ap.add_argument(
        "--metric",
        default="cpu_s",
        choices=["cpu_s", "wall_s"],
        help="what growth compares (CPU: steadier when shared)",
    )
    args = ap.parse_args()
    results = [json.loads(p.read_text(encoding="utf-8")) for p in args.results]
    results = [r for r in results if args.run in r["runs"]]
    for r in results:
        floors = ", ".join(f"{k} {v['wall_median_s']:.2f}s" for k, v in r["floors"].items())
        print(f"{r['label']}: {input_rows(r):,} input rows; floors {floors}; commit {r['git']['commit'][:10]}")
    print(f"growth = ({args.metric} / first result's) / (input rows / first result's)")
    print("\n".join(stage_table(results, args.run, args.metric)))


if __name__ == "__main__":
    main()
