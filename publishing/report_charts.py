"""Altair charts of the marketer's report, rendered to inline SVG by vl-convert (offline, no JavaScript).

Each function takes plain rows already labelled in the report's language and returns an ``<svg>`` string,
so the page stays one self-contained file: no script, no web font, no network request when opened.
altair and vl-convert are imported on first use: altair alone takes ~0.9 s to import, which every process
loading the Dagster code location (the UI, the daemon, each step of a multiprocess run, every CLI command)
would pay even when it never draws a chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import altair as alt

FONT = "Helvetica, Arial, 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif"
BAR_COLOR = "#3b6ea8"
WIDTH = 520


def _config(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return (
        chart.configure(font=FONT, background="white")
        .configure_view(stroke=None)
        .configure_axis(labelFontSize=12, titleFontSize=12, labelLimit=0, grid=False)
        .configure_legend(labelFontSize=12, titleFontSize=12, labelLimit=0, orient="right")
    )


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an SVG document fragment (no XML prolog), ready to inline in HTML."""
    import vl_convert as vlc

    svg = vlc.vegalite_to_svg(_config(chart).to_dict(validate=False))
    start = svg.find("<svg")
    return svg[start:] if start > 0 else svg


def size_bars(rows: Sequence[dict[str, Any]], count_title: str) -> str:
    """Horizontal bars of customers per segment, in the given order, each annotated "n (share)".

    ``rows``: dicts with ``label`` (display name), ``customers`` and ``note`` (text after the bar).
    """
    import altair as alt

    data = alt.Data(values=[{"label": r["label"], "customers": r["customers"], "note": r["note"]} for r in rows])
    order = [r["label"] for r in rows]
    top = max((r["customers"] for r in rows), default=0) or 1
    base = alt.Chart(data).encode(
        y=alt.Y("label:N", sort=order, title=None, axis=alt.Axis(ticks=False, domain=False, labelPadding=6)),
        x=alt.X(
            "customers:Q",
            title=count_title,
            scale=alt.Scale(domain=[0, top * 1.35]),  # room for the annotation right of the longest bar
            axis=alt.Axis(format=",d", tickCount=4, tickMinStep=1),
        ),
    )
    bars = base.mark_bar(color=BAR_COLOR, height={"band": 0.75})
    notes = base.mark_text(align="left", dx=4, fontSize=11, color="#333").encode(text="note:N")
    return to_svg((bars + notes).properties(width=WIDTH, height=max(24, 22 * len(rows))))


def share_trend(rows: Sequence[dict[str, Any]], order: Sequence[str], share_title: str) -> str:
    """Lines of each segment's share of customers across snapshot dates (``snapshot_date``, ``label``, ``share``)."""
    import altair as alt

    data = alt.Data(values=[{"date": r["snapshot_date"], "label": r["label"], "share": r["share"]} for r in rows])
    palette = "tableau10" if len(order) <= 10 else "category20"
    chart = (
        alt.Chart(data)
        .mark_line(point=alt.OverlayMarkDef(size=30))
        .encode(
            x=alt.X("date:T", title=None, axis=alt.Axis(format="%Y-%m-%d", labelAngle=0, tickCount=6)),
            y=alt.Y("share:Q", title=share_title, axis=alt.Axis(format="%")),
            color=alt.Color("label:N", sort=list(order), title=None, scale=alt.Scale(scheme=palette)),
        )
        .properties(width=WIDTH, height=200)
    )
    return to_svg(chart)
