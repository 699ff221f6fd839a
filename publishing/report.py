"""The marketer's report: one self-contained HTML page per snapshot (Jinja2 template, Altair charts as SVG).

Two steps so the Dagster asset stays thin and both halves are testable alone:

* ``build_report_data(con, as_of, registry, settings)`` aggregates in SQL over the warehouse (this
  snapshot of ``customer_segments``, ``segment_summary`` history up to D, ``segment_migrations``,
  ``cluster_profiles``, ``ingest_log``/``quarantine``, and ``churn_drivers``/``model_calibration`` when
  they exist) into a plain dict holding keys and both display names, no language choice yet;
* ``render_report(data, language)`` turns that dict into HTML in English or Chinese.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import yaml

from models.registry import UNASSIGNED, Language, Registry, Segmentation
from publishing.outputs import snapshot_tables
from publishing.report_charts import share_trend, size_bars
from segments.config import Settings
from segments.warehouse import table_exists

TEMPLATES = Path(__file__).resolve().parent / "templates"
NONE_SEGMENT = "(none)"  # segment_migrations: not a customer at one of the two snapshots
OPTIONAL_TABLES = ("churn_drivers", "model_calibration")
MAX_REASONS = 5
MAX_OPTIONAL_ROWS = 40
CURRENCY_SYMBOLS = {"CNY": "¥", "JPY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "HKD": "HK$", "TWD": "NT$"}
# Plain words for clustering features: (English, Chinese, unit) where unit is money, days, count or seconds.
FEATURE_WORDS: dict[str, tuple[str, str, str]] = {
    "monetary": ("spend", "消费金额", "money"),
    "frequency": ("orders", "订单数", "count"),
    "recency_days": ("days since last purchase", "距上次购买天数", "days"),
    "aov": ("average order value", "客单价", "money"),
    "tenure_days": ("days since first purchase", "首购至今天数", "days"),
    "orders_90d": ("orders in 90 days", "近90天订单数", "count"),
    "sessions_30d": ("visits in 30 days", "近30天访问次数", "count"),
    "sessions_90d": ("visits in 90 days", "近90天访问次数", "count"),
    "product_views_90d": ("product views in 90 days", "近90天商品浏览数", "count"),
    "add_to_carts_90d": ("add-to-carts in 90 days", "近90天加购次数", "count"),
    "time_online_s_90d": ("time online in 90 days", "近90天在线时长", "seconds"),
    "days_since_last_visit": ("days since last visit", "距上次访问天数", "days"),
    "complaints_90d": ("complaints in 90 days", "近90天投诉数", "count"),
    "avg_rating": ("average rating", "平均评分", "count"),
}


# --------------------------------------------------------------------------------------------------
# data gathering (SQL aggregates only; nothing row-per-customer comes into Python)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rel = con.execute(sql, params or {})
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(f'describe "{table}"').fetchall()]


def _totals(con: duckdb.DuckDBPyConnection, as_of: date) -> dict[str, Any]:
    """Customers, buyers and revenue of snapshot D; the newest order date up to D and its age in days."""
    out: dict[str, Any] = {"customers": 0, "buyers": 0, "revenue": 0.0, "newest_order_date": None}
    if table_exists(con, "customer_segments"):
        row = _rows(
            con,
            "select count(*) as customers, count(*) filter (where is_buyer) as buyers, "
            "coalesce(sum(monetary), 0) as revenue, max(last_purchase_date) as last_purchase "
            "from customer_segments where snapshot_date = $d",
            {"d": as_of},
        )[0]
        out.update(customers=int(row["customers"]), buyers=int(row["buyers"]), revenue=float(row["revenue"]))
        out["newest_order_date"] = row["last_purchase"]
    if table_exists(con, "orders") and "order_date" in _columns(con, "orders"):
        newest = con.execute("select max(order_date) from orders where order_date <= $d", {"d": as_of}).fetchall()
        out["newest_order_date"] = newest[0][0] or out["newest_order_date"]
    newest_date = out["newest_order_date"]
    out["freshness_days"] = (as_of - newest_date).days if newest_date else None
    out["newest_order_date"] = newest_date.isoformat() if newest_date else None
    return out


def _order_keys(seg: Segmentation, keys: Sequence[str]) -> list[str]:
    """Registry label order, then other keys (cluster ids numerically), 'unassigned' last."""
    known = [k for k in seg.keys if k in keys]
    others = sorted(
        (k for k in keys if k not in seg.keys and k != UNASSIGNED),
        key=lambda k: (0, int(k), "") if k.isdigit() else (1, 0, k),
    )
    return known + others + ([UNASSIGNED] if UNASSIGNED in keys else [])


def _names(seg: Segmentation, key: str, cluster_names: dict[str, str], *, current: bool = False) -> dict[str, str]:
    """English and Chinese display names of ``key`` (cluster ids as "id · name").

    ``(none)`` of a migration means "not a customer at the previous snapshot" on the from side and
    "no longer present" on the to side (``current``).
    """
    if key == NONE_SEGMENT and current:
        return {"name_en": "(no longer present)", "name_zh": "（已不在名单中）"}
    if key == NONE_SEGMENT:
        return {"name_en": "(not a customer then)", "name_zh": "（当时不是客户）"}
    if key == UNASSIGNED:
        return {"name_en": seg.display(None, "en"), "name_zh": seg.display(None, "zh")}
    if seg.name == "cluster" and key in cluster_names:
        return {"name_en": f"{key} · {cluster_names[key]}", "name_zh": f"{key} · {cluster_names[key]}"}
    return {"name_en": seg.display(key, "en"), "name_zh": seg.display(key, "zh")}


def _segmentation(
    con: duckdb.DuckDBPyConnection,
    seg: Segmentation,
    as_of: date,
    cluster_names: dict[str, str],
    total_revenue: float,
) -> dict[str, Any]:
    """Sizes, revenue and averages at D, share trend over all snapshots <= D, migration matrix into D."""
    summary = _rows(
        con,
        "select snapshot_date, segment, customers, share, revenue, avg_monetary, avg_frequency, avg_recency_days "
        "from segment_summary where segmentation = $s and snapshot_date <= $d order by snapshot_date, segment",
        {"s": seg.name, "d": as_of},
    )
    now = {r["segment"]: r for r in summary if r["snapshot_date"] == as_of}
    rows = []
    for key in _order_keys(seg, list(now)):
        r = now[key]
        revenue = _num(r["revenue"]) or 0.0
        rows.append(
            {
                "key": key,
                **_names(seg, key, cluster_names),
                "customers": int(r["customers"]),
                "share": float(r["share"]),
                "revenue": revenue,
                "revenue_share": revenue / total_revenue if total_revenue else 0.0,
                "avg_monetary": _num(r["avg_monetary"]),
                "avg_frequency": _num(r["avg_frequency"]),
                "avg_recency_days": _num(r["avg_recency_days"]),
            }
        )
    dates = sorted({r["snapshot_date"] for r in summary})
    trend = [
        {"snapshot_date": r["snapshot_date"].isoformat(), "key": r["segment"], "share": float(r["share"])}
        for r in summary
    ]
    out: dict[str, Any] = {
        "name": seg.name,
        "title_en": seg.title("en"),
        "title_zh": seg.title("zh"),
        "rows": rows,
        "snapshots": [d.isoformat() for d in dates],
        "trend": trend,
        "trend_names": {k: _names(seg, k, cluster_names) for k in _order_keys(seg, sorted({t["key"] for t in trend}))},
        "migration": None,
    }
    if seg.migrations and table_exists(con, "segment_migrations"):
        out["migration"] = _migration(con, seg, as_of, cluster_names)
    return out


def _migration(
    con: duckdb.DuckDBPyConnection, seg: Segmentation, as_of: date, cluster_names: dict[str, str]
) -> dict[str, Any] | None:
    """From (previous snapshot) x to (D) customer counts of one segmentation; None before a second snapshot."""
    cells = _rows(
        con,
        "select previous_snapshot_date, from_segment, to_segment, customers from segment_migrations "
        "where snapshot_date = $d and segmentation = $s",
        {"d": as_of, "s": seg.name},
    )
    if not cells:
        return None

    def axis(values: set[str], current: bool) -> list[dict[str, str]]:
        keys = _order_keys(seg, sorted(values - {NONE_SEGMENT}))
        keys += [NONE_SEGMENT] if NONE_SEGMENT in values else []
        return [{"key": k, **_names(seg, k, cluster_names, current=current)} for k in keys]

    counts = {(c["from_segment"], c["to_segment"]): int(c["customers"]) for c in cells}
    return {
        "previous": cells[0]["previous_snapshot_date"].isoformat(),
        "from": axis({c["from_segment"] for c in cells}, current=False),
        "to": axis({c["to_segment"] for c in cells}, current=True),
        "cells": [[f, t, n] for (f, t), n in sorted(counts.items())],
        "moved": sum(n for (f, t), n in counts.items() if f != t),
        "total": sum(counts.values()),
    }


def _clusters(con: duckdb.DuckDBPyConnection, as_of: date) -> list[dict[str, Any]]:
    """Each cluster's size and, per feature, its mean next to the mean of everyone clustered."""
    long = snapshot_tables(con, as_of, names=("cluster_profiles",))["cluster_profiles"].to_pylist()
    if not long:
        return []
    overall: dict[str, float] = {}
    for feature in sorted({r["feature"] for r in long}):
        part = [r for r in long if r["feature"] == feature and r["mean"] is not None]
        n = sum(r["customers"] for r in part)
        overall[feature] = sum(r["mean"] * r["customers"] for r in part) / n if n else math.nan
    out: dict[int, dict[str, Any]] = {}
    for r in sorted(long, key=lambda r: (r["cluster_id"], r["feature"])):
        c = out.setdefault(
            r["cluster_id"],
            {
                "id": r["cluster_id"],
                "name": r["cluster_name"],
                "customers": int(r["customers"]),
                "share": _num(r["share_of_clustered"]),
                "features": [],
            },
        )
        base = overall[r["feature"]]
        ratio = r["mean"] / base if r["mean"] is not None and base and not math.isnan(base) else None
        c["features"].append(
            {"feature": r["feature"], "mean": r["mean"], "median": r["median"], "overall": base, "ratio": ratio}
        )
    return [out[k] for k in sorted(out)]


def _quality(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Per source the latest attempt of every file summed; top quarantine reasons; rejected files."""
    out: dict[str, Any] = {"sources": [], "reasons": [], "rejected_files": []}
    if table_exists(con, "ingest_log"):
        latest = (
            "select * from ingest_log where status <> 'unchanged' "
            "qualify row_number() over (partition by source, path order by ingested_at desc, run_id desc) = 1"
        )
        out["sources"] = _rows(
            con,
            f"select source, count(*) filter (where status = 'loaded') as files_loaded, "
            f"count(*) filter (where status = 'rejected') as files_rejected, "
            f"coalesce(sum(rows_read), 0) as rows_read, coalesce(sum(rows_loaded), 0) as rows_loaded, "
            f"coalesce(sum(rows_quarantined), 0) as rows_quarantined, "
            f"coalesce(sum(duplicates_dropped), 0) as duplicates_dropped "
            f"from ({latest}) group by source order by source",
        )
        out["rejected_files"] = _rows(
            con, f"select source, path, error from ({latest}) where status = 'rejected' order by source, path"
        )
    if table_exists(con, "quarantine"):
        out["reasons"] = _rows(
            con,
            "select source, column_name, reason, count(*) as rows, min(file || ':' || line) as example "
            "from quarantine group by source, column_name, reason "
            "qualify row_number() over (partition by source order by count(*) desc, reason, column_name) <= $n "
            "order by source, rows desc, reason, column_name",
            {"n": MAX_REASONS},
        )
    return out


def _optional_table(con: duckdb.DuckDBPyConnection, table: str, as_of: date) -> dict[str, Any] | None:
    """Rows of ``table`` for D (all rows when it has no snapshot_date); None when the table does not exist."""
    if not table_exists(con, table):
        return None
    cols = _columns(con, table)
    shown = [c for c in cols if c != "snapshot_date"]
    dated = "snapshot_date" in cols
    select = ", ".join(f'"{c}"' for c in shown)
    sql = f'select {select} from "{table}" {"where snapshot_date = $d" if dated else ""} order by {select}'
    rows = _rows(con, f"{sql} limit {MAX_OPTIONAL_ROWS}", {"d": as_of} if dated else None)
    return {"columns": shown, "rows": [[r[c] for c in shown] for r in rows]}


def build_report_data(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    registry: Registry,
    settings: Settings,
    *,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """Everything the report shows for snapshot ``as_of``, aggregated in the warehouse.

    Segmentations are the registry entries flagged ``report``, in registry order; ``warnings`` are
    passed through (failed WARN checks the caller knows of). Language-neutral: labels carry both names.
    """
    totals = _totals(con, as_of)
    clusters = _clusters(con, as_of) if table_exists(con, "cluster_profiles") else []
    cluster_names = {str(c["id"]): c["name"] for c in clusters}
    segs = []
    if table_exists(con, "segment_summary"):
        segs = [_segmentation(con, s, as_of, cluster_names, totals["revenue"]) for s in registry.where("report")]
    snapshots = sorted({d for s in segs for d in s["snapshots"]})
    previous = [d for d in snapshots if d < as_of.isoformat()]
    return {
        "as_of": as_of.isoformat(),
        "currency": settings.currency,
        "totals": {**totals, "snapshots": len(snapshots), "previous_snapshot": previous[-1] if previous else None},
        "segmentations": segs,
        "clusters": clusters,
        "quality": _quality(con),
        "warnings": list(warnings),
        "optional": {t: _optional_table(con, t, as_of) for t in OPTIONAL_TABLES},
    }


# --------------------------------------------------------------------------------------------------
# rendering


@cache
def _texts() -> dict[str, dict[str, str]]:
    return yaml.safe_load((TEMPLATES / "report_text.yaml").read_text(encoding="utf-8"))


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def money(value: float | None, currency: str, decimals: int = 0) -> str:
    """``¥1,234`` (symbol for common currencies, else ``1,234 XYZ``); an en dash for no value."""
    if value is None:
        return "–"
    sign = "-" if value < 0 else ""
    text = f"{abs(value):,.{decimals}f}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def _fmt(value: Any, unit: str, currency: str, texts: dict[str, str]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "money":
        return money(value, currency)
    if unit == "days":
        return texts["n_days"].format(n=f"{value:,.0f}")
    if unit == "seconds":
        return texts["n_minutes"].format(n=f"{value / 60:,.0f}")
    return f"{value:,.1f}"


def describe_cluster(cluster: dict[str, Any], language: Language, currency: str) -> list[str]:
    """Plain-words lines: per feature the cluster's average and how it compares with everyone clustered."""
    texts = _texts()[language]
    lines = []
    for f in sorted(cluster["features"], key=lambda f: -abs(math.log(f["ratio"])) if f["ratio"] else 0.0):
        en, zh, unit = FEATURE_WORDS.get(f["feature"], (f["feature"], f["feature"], "count"))
        what = zh if language == "zh" else en
        mean, overall = _fmt(f["mean"], unit, currency, texts), _fmt(f["overall"], unit, currency, texts)
        if f["ratio"] is None:
            compare = ""
        elif 0.9 <= f["ratio"] <= 1.1:
            compare = texts["about_average"]
        elif f["ratio"] > 1:
            compare = texts["times_average"].format(x=f"{f['ratio']:.1f}")
        else:
            compare = texts["below_average"].format(pct=f"{1 - f['ratio']:.0%}")
        lines.append(texts["feature_line"].format(what=what, mean=mean, overall=overall, compare=compare).strip())
    return lines


def _bars(seg: dict[str, Any], language: Language, texts: dict[str, str]) -> str:
    rows = [
        {
            "label": r[f"name_{language}"],
            "customers": r["customers"],
            "note": f"{r['customers']:,} ({r['share']:.1%})",
        }
        for r in seg["rows"]
    ]
    return size_bars(rows, texts["customers"]) if rows else ""


def _trend(seg: dict[str, Any], language: Language, texts: dict[str, str]) -> str:
    if len(seg["snapshots"]) < 2:
        return ""
    names = {k: v[f"name_{language}"] for k, v in seg["trend_names"].items()}
    rows = [{**t, "label": names[t["key"]]} for t in seg["trend"]]
    return share_trend(rows, [names[k] for k in seg["trend_names"]], texts["share_of_customers"])


def _matrix(migration: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Rows of the migration table: per previous segment, a cell per current segment with its shade."""
    if not migration:
        return []
    counts = {(f, t): n for f, t, n in migration["cells"]}
    peak = max((n for (f, t), n in counts.items() if f != t), default=0)
    rows = []
    for f in migration["from"]:
        cells = []
        for t in migration["to"]:
            n = counts.get((f["key"], t["key"]), 0)
            stayed = f["key"] == t["key"]
            # moves are shaded by size relative to the largest move; staying put is shown, not shaded
            alpha = 0.0 if stayed or not peak else round(0.08 + 0.6 * n / peak, 3) if n else 0.0
            cells.append({"n": n, "stayed": stayed, "alpha": alpha})
        rows.append({**f, "cells": cells, "total": sum(c["n"] for c in cells)})
    return rows


def render_report(data: dict[str, Any], language: Language = "en") -> str:
    """The HTML page for ``data`` (from ``build_report_data``) in ``language``."""
    texts = _texts()[language]
    currency = data["currency"]
    sections = [
        {
            **seg,
            "bars": _bars(seg, language, texts),
            "trend_svg": _trend(seg, language, texts),
            "matrix": _matrix(seg["migration"]),
        }
        for seg in data["segmentations"]
    ]
    clusters = [{**c, "lines": describe_cluster(c, language, currency)} for c in data["clusters"]]
    template = _environment().get_template("report.html.j2")
    return template.render(
        d=data,
        t=texts,
        lang=language,
        sections=sections,
        clusters=clusters,
        money=lambda v, decimals=0: money(v, currency, decimals),
    )
