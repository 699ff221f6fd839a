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


def _stage(result: dict[str, Any], run: str, name: str) -> dict[str, Any] | None:
    if name == "total":
        return result["runs"][run]["total"]
    return next((s for s in result["runs"][run]["stages"] if s["stage"] == name), None)


def stage_rows(results: list[dict[str, Any]], run: str, metric: str = "cpu_s") -> list[list[str]]:
    """Header and one row per stage: wall, CPU and peak of every result, then the growth of ``metric``."""
    names: list[str] = []
    for r in results:
        names += [s["stage"] for s in r["runs"][run]["stages"] if s["stage"] not in names]
    labels = [r["label"] for r in results]
    if len(set(labels)) < len(labels):  # the same scale twice: tell them apart by commit
        labels = [f"{r['label']}@{r['git']['commit'][:7]}" for r in results]
    rows = [["stage"] + [f"{lab} {what}" for lab in labels for what in ("wall s", "cpu s", "peak MB")]]
    rows[0] += [f"growth {lab}" for lab in labels[1:]]
    base_rows = input_rows(results[0])
    for name in [*names, "total"]:
        stages = [_stage(r, run, name) for r in results]
        row = [name]
        for st in stages:
            row += [f"{st['wall_s']:.2f}", f"{st['cpu_s']:.2f}", f"{st['peak_rss_mb']:,}"] if st else ["-"] * 3
        base = stages[0][metric] if stages[0] else 0
        for r, st in zip(results[1:], stages[1:], strict=True):
            ok = st is not None and base > 0
            row.append(f"{(st[metric] / base) / (input_rows(r) / base_rows):.2f}" if ok else "-")
        rows.append(row)
    return rows


def render(rows: list[list[str]], markdown: bool) -> str:
    """Aligned text, or a markdown table."""
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows[1:]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    )


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
    ap.add_argument("--markdown", action="store_true", help="print a markdown table (for docs/performance.md)")
    args = ap.parse_args()
    results = [json.loads(p.read_text(encoding="utf-8")) for p in args.results]
    results = [r for r in results if args.run in r["runs"]]
    for r in results:
        floors = ", ".join(f"{k} {v['wall_median_s']:.2f}s" for k, v in r["floors"].items())
        print(f"{r['label']}: {input_rows(r):,} input rows; floors {floors}; commit {r['git']['commit'][:10]}")
    print(f"growth = ({args.metric} / first result's) / (input rows / first result's)")
    print(render(stage_rows(results, args.run, args.metric), args.markdown))


if __name__ == "__main__":
    main()
