"""A self-contained HTML segment report (inline SVG charts, no JavaScript, no network) for one snapshot."""

from __future__ import annotations

import html
from datetime import date

import polars as pl

_SECTIONS = [
    ("rfm_segment", "RFM segments"),
    ("value_class", "Value classes (8-class)"),
    ("lifecycle_stage", "Lifecycle stages"),
    ("value_tier", "Value tiers"),
    ("overall_grade", "Overall grade"),
    ("monetary_grade", "Monetary grade"),
    ("engagement_grade", "Engagement grade"),
    ("cluster", "Clusters"),
]
_BAR_W = 420


def _bars(rows: list[tuple[str, float, str]]) -> str:
    """Horizontal bar chart as inline SVG: (label, value, annotation) per bar."""
    if not rows:
        return "<p><em>no data</em></p>"
    top = max(v for _, v, _ in rows) or 1.0
    h = 22
    parts = [f'<svg width="{_BAR_W + 560}" height="{h * len(rows) + 6}" role="img">']
    for i, (label, value, note) in enumerate(rows):
        y = i * h + 3
        w = max(1, round(_BAR_W * value / top))
        parts.append(
            f'<text x="300" y="{y + 15}" text-anchor="end" font-size="12">{html.escape(label)}</text>'
            f'<rect x="308" y="{y}" width="{w}" height="{h - 6}" fill="#4C78A8"/>'
            f'<text x="{314 + w}" y="{y + 15}" font-size="12">{html.escape(note)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _label(segmentation: str, segment: str, cluster_names: dict[str, str]) -> str:
    if segmentation == "cluster" and segment in cluster_names:
        return f"{segment} · {cluster_names[segment]}"[:46]
    return segment


def render_report(
    as_of: date,
    summary: pl.DataFrame,
    migrations: pl.DataFrame,
    warnings: list[str],
    cluster_names: dict[str, str] | None = None,
) -> str:
    """HTML page: segment sizes per segmentation, revenue shares, and the largest migrations.

    Grades are listed A, B, C (then unassigned); other segmentations largest first. Clusters are
    labelled "id · name" from ``cluster_names``.
    """
    names = cluster_names or {}
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Segment report {as_of}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1000px}h2{margin-top:1.6em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}</style>",
        f"</head><body><h1>Customer segments — snapshot {as_of}</h1>",
    ]
    if warnings:
        out.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>")
    for key, title in _SECTIONS:
        part = summary.filter(pl.col("segmentation") == key)
        if key.endswith("_grade"):
            part = part.sort(pl.col("segment").replace({"unassigned": "Z"}))
        else:
            part = part.sort(["customers", "segment"], descending=[True, False])
        rows = [
            (
                _label(key, str(r["segment"]), names),
                float(r["customers"]),
                f"{r['customers']:,} ({r['share']:.1%}) · revenue {float(r['revenue'] or 0):,.0f}",
            )
            for r in part.iter_rows(named=True)
        ]
        out.append(f"<h2>{html.escape(title)}</h2>{_bars(rows)}")
    out.append("<h2>Largest migrations since the previous snapshot</h2>")
    moved = migrations.filter(pl.col("from_segment") != pl.col("to_segment"))
    if moved.is_empty():
        out.append("<p><em>no previous snapshot, or nobody moved</em></p>")
    else:
        top = moved.sort(
            ["customers", "segmentation", "from_segment", "to_segment"], descending=[True, False, False, False]
        ).head(25)
        rows = [
            (
                f"{r['segmentation']}: {r['from_segment']} → {r['to_segment']}"[:46],
                float(r["customers"]),
                f"{r['customers']:,}",
            )
            for r in top.iter_rows(named=True)
        ]
        prev = migrations["previous_snapshot_date"][0]
        out.append(f"<p>Compared with {prev}.</p>{_bars(rows)}")
    out.append("</body></html>")
    return "\n".join(out)
