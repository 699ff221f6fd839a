"""Explain one customer (客户画像): every label of a snapshot and why, from the published tables.

``portrait`` reads the published Parquet files (current snapshot, or ``--as-of`` history) and, for the
cluster distances, the warehouse's persisted centroids when the warehouse is given. The result is a
plain dict (the ``--json`` output); ``render_portrait`` prints it for a marketer.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from data_contracts.contracts import render_windows
from models.classifications import compile_settings_rules, explain_rules, tag_column
from models.registry import builtin_registry
from models.settings import SegmentationSettings

# The portrait's features; window columns by placeholder, named from the settings' windows.
FEATURES = (
    "recency_days",
    "frequency",
    "monetary",
    "aov",
    "first_purchase_date",
    "last_purchase_date",
    "tenure_days",
    "orders_90d",
    "sessions_{long}d",
    "add_to_carts_{long}d",
    "engagement_score",
    "avg_rating",
    "nps_class",
    "complaints_{complaint}d",
    "top_category",
    "top_category_share",
    "online_share",
    "offline_share",
    "preferred_channel",
    "home_store",
    "region",
    "city",
    "source_channel",
    "birth_year",
)
_GRADE_METRIC = {"monetary": "monetary", "frequency": "frequency", "engagement": "engagement_score"}


class ExplainError(ValueError):
    """The customer or snapshot cannot be found; the message says what exists."""


def _parquet(published: Path, table: str, as_of: date | None) -> str:
    path = (
        published / "current" / f"{table}.parquet"
        if as_of is None
        else published / table / f"snapshot_date={as_of.isoformat()}" / "part-0.parquet"
    )
    if not path.is_file():
        raise ExplainError(f"{path} does not exist: run `segments run` (for that --as-of date) first")
    return str(path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return float(value)


def lifecycle_reason(row: dict[str, Any], s: SegmentationSettings) -> str:
    """The lifecycle rule that fired, with the customer's numbers (see models/lifecycle.py)."""
    lc, stage, rec = s.lifecycle, row["lifecycle_stage"], row.get("recency_days")
    return {
        "prospect": "never bought (no completed order in the window)",
        "new": f"first purchase {row.get('first_purchase_date')} is within {lc.new_days} days",
        "reactivated": f"bought {rec} days ago (<= {lc.active_days}) after a gap of "
        f"{row.get('reactivation_gap_days')} days (> {lc.churn_days})",
        "active": f"last purchase {rec} days ago (<= {lc.active_days})",
        "at_risk": f"last purchase {rec} days ago ({lc.active_days} < days <= {lc.churn_days})",
        "churned": f"last purchase {rec} days ago (> {lc.churn_days})",
    }.get(stage, "unknown stage")


def _grade_shares(con: duckdb.DuckDBPyConnection, src: str, row: dict[str, Any], s: SegmentationSettings) -> dict:
    """Per graded basis: the grade and the cumulative share (of the total, or of customers) that placed it."""
    out: dict[str, Any] = {}
    pareto = s.grades.method == "pareto"
    for basis, metric in _GRADE_METRIC.items():
        grade, value = row.get(f"{basis}_grade"), row.get(metric)
        if grade is None or value is None:
            out[basis] = {"grade": grade, "cumulative_share": None}
            continue
        agg = f'sum(greatest("{metric}", 0))' if pareto else "count(*)"  # the grader's weights
        sql = (
            f'select cast({agg} filter (where "{metric}" >= $v) as double) / nullif(cast({agg} as double), 0) '
            f'from read_parquet($p, hive_partitioning = true) where "{basis}_grade" is not null'
        )
        share = con.execute(sql, {"v": value, "p": src}).fetchall()[0][0]
        out[basis] = {
            "grade": grade,
            "metric": metric,
            "value": _jsonable(value),
            "cumulative_share": share,
            "cutoffs": {"A": s.grades.cutoffs.a, "B": s.grades.cutoffs.b},
            "method": s.grades.method,
        }
    out["overall"] = {"grade": row.get("overall_grade"), "bases": list(s.grades.overall_bases)}
    return out


def _cluster(row: dict[str, Any], s: SegmentationSettings, warehouse: Path | None, as_of: date) -> dict[str, Any]:
    info: dict[str, Any] = {"cluster_id": row.get("cluster_id"), "cluster_name": row.get("cluster_name")}
    if warehouse is None or not Path(warehouse).is_file() or row.get("cluster_id") is None:
        return info
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select cluster_id, feature, center_std, scale_mean, scale_std from cluster_centroids "
            "where snapshot_date = $d order by cluster_id, feature",
            {"d": as_of},
        ).fetchall()
    except duckdb.Error:
        return info
    finally:
        con.close()
    fill = {f.column: f.fill_null for f in s.clusters.features}
    dist: dict[int, float] = {}
    for cid, feature, center, mean, std in rows:
        x = row.get(feature)
        x = fill.get(feature, 0.0) if x is None else float(x)
        z = (math.log1p(max(x, 0.0)) - mean) / (std or 1.0)
        dist[cid] = dist.get(cid, 0.0) + (z - center) ** 2
    ranked = sorted((math.sqrt(d), c) for c, d in dist.items())
    info["distances"] = {str(c): round(d, 4) for d, c in ranked}
    others = [(d, c) for d, c in ranked if c != row["cluster_id"]]
    if others:
        info["next_nearest"] = {"cluster_id": others[0][1], "distance": round(others[0][0], 4)}
    return info


def portrait(
    published_dir: Path,
    customer_id: str,
    settings: SegmentationSettings,
    as_of: date | None = None,
    warehouse: Path | None = None,
) -> dict[str, Any]:
    """Everything about ``customer_id`` in one snapshot (default: the current one), and why."""
    published = Path(published_dir)
    src = _parquet(published, "customer_segments", as_of)
    con = duckdb.connect()
    try:
        # history files carry snapshot_date in their folder name (hive), current files as a column
        cur = con.execute(
            "select * from read_parquet($p, hive_partitioning = true) where customer_id = $c",
            {"p": src, "c": customer_id},
        )
        names = [d[0] for d in cur.description]
        found = cur.fetchall()
        if not found:
            raise ExplainError(f"no customer {customer_id!r} in {src}")
        row = dict(zip(names, found[0], strict=True))
        snap: date = row["snapshot_date"]
        cuts = con.execute(
            "select metric, score, min_value, max_value from read_parquet($p, hive_partitioning = true) "
            "where snapshot_date = $d order by metric, score",
            {"p": _parquet(published, "rfm_cut_points", as_of), "d": snap},
        ).fetchall()
        grades = _grade_shares(con, src, row, settings)
        try:
            audit = con.execute(
                "select line, field, value, computed_value, status, detail, reason, author, expires "
                "from read_parquet($p, hive_partitioning = true) where customer_id = $c order by line",
                {"p": _parquet(published, "override_audit", as_of), "c": customer_id},
            ).fetchall()
        except ExplainError:
            audit = []
    finally:
        con.close()
    scores = {}
    for metric, col in (("recency_days", "r_score"), ("frequency", "f_score"), ("monetary", "m_score")):
        score = row.get(col)
        band = next((c for c in cuts if c[0] == metric and c[1] == score), None)
        scores[col] = {
            "score": score,
            "value": _jsonable(row.get(metric)),
            "range": None if band is None else [_jsonable(band[2]), _jsonable(band[3])],
        }
    features = [render_windows(f, settings.window_key) for f in FEATURES]
    computed = {k.removesuffix("_computed"): v for k, v in row.items() if k.endswith("_computed")}
    fired = explain_rules(compile_settings_rules(settings), {**row, **computed})
    registry = builtin_registry(settings)
    classifications = {}
    for name, why in fired.items():
        seg = registry.get(name)
        classifications[name] = {
            "title": seg.title_en,
            "title_zh": seg.title_zh,
            "value": row.get(name),
            "display": seg.display(row.get(name), "zh"),
            "computed": why["label"],
            "rule": why["rule"] or "(default: no rule matched)",
        }
    history = {
        seg.name: {
            "current": _jsonable(row.get(seg.column)),
            "previous": _jsonable(row.get(f"{seg.column}_previous")),
            "since": _jsonable(row.get(f"{seg.column}_since")),
        }
        for seg in registry
        if seg.column in row
    }
    return {
        "customer_id": customer_id,
        "snapshot_date": snap.isoformat(),
        "features": {f: _jsonable(row.get(f)) for f in features if f in row},
        "rfm": {
            **scores,
            "fm_score": row.get("fm_score"),
            "cell": {
                "r": row.get("r_score"),
                "fm": row.get("fm_score"),
                "rfm_segment": row.get("rfm_segment"),
                "rfm_segment_name": row.get("rfm_segment_name"),
            },
            "value_class": row.get("value_class"),
            "value_class_name": row.get("value_class_name"),
        },
        "grades": grades,
        "lifecycle": {"stage": row.get("lifecycle_stage"), "rule": lifecycle_reason(row, settings)},
        "cluster": _cluster(row, settings, warehouse, snap),
        "classifications": classifications,
        "tags": list(row.get("tags") or []),
        "tag_rules": {n: r.text for n, r in compile_settings_rules(settings).tags if row.get(tag_column(n))},
        "overridden_fields": list(row.get("overridden_fields") or []),
        "overrides": [
            dict(
                zip(
                    ("line", "field", "value", "computed_value", "status", "detail", "reason", "author", "expires"),
                    map(_jsonable, a),
                    strict=True,
                )
            )
            for a in audit
        ],
        "history": history,
    }


def render_portrait(p: dict[str, Any]) -> str:
    """The portrait as text for a marketer (Chinese display names next to the keys)."""
    lines = [f"Customer {p['customer_id']} — snapshot {p['snapshot_date']}", "", "Features:"]
    lines += [f"  {k:<22} {v}" for k, v in p["features"].items()]
    r = p["rfm"]
    lines += ["", "RFM scores (value -> score, range of the score):"]
    for col in ("r_score", "f_score", "m_score"):
        s = r[col]
        lines.append(f"  {col}  {s['value']} -> {s['score']}  (range {s['range']})")
    cell = r["cell"]
    lines.append(
        f"  segment map cell R{cell['r']} x FM{cell['fm']} -> {cell['rfm_segment']} ({cell['rfm_segment_name']})"
    )
    lines.append(f"  value class: {r['value_class']} ({r['value_class_name']})")
    lines += ["", "Grades (cumulative share that placed them):"]
    for basis, g in p["grades"].items():
        share = g.get("cumulative_share")
        shown = (
            ""
            if share is None
            else f"  cumulative share {share:.4f} (A <= {g['cutoffs']['A']}, B <= {g['cutoffs']['B']})"
        )
        lines.append(f"  {basis:<11} {g['grade']}{shown}")
    lines += ["", f"Lifecycle: {p['lifecycle']['stage']} — {p['lifecycle']['rule']}"]
    c = p["cluster"]
    nxt = c.get("next_nearest")
    lines.append(
        f"Cluster: {c['cluster_id']} {c['cluster_name']}"
        + (f"; next nearest {nxt['cluster_id']} at distance {nxt['distance']}" if nxt else "")
    )
    lines += ["", "Classifications (rule that fired):"]
    for name, cl in p["classifications"].items():
        over = "" if cl["value"] == cl["computed"] else f"  [override; computed {cl['computed']}]"
        lines.append(f"  {name:<20} {cl['value']} ({cl['display']})  <- {cl['rule']}{over}")
    lines += ["", f"Tags: {', '.join(p['tags']) or '(none)'}"]
    lines += [f"  {n}: {t}" for n, t in p["tag_rules"].items()]
    lines += ["", "Overrides:" if p["overrides"] else "Overrides: (none)"]
    lines += [
        f"  line {o['line']}: {o['field']} = {o['value']} [{o['status']}] {o['detail']} — {o['reason']} "
        f"({o['author']}, expires {o['expires'] or 'never'})"
        for o in p["overrides"]
    ]
    lines += ["", "History (current / previous / since):"]
    lines += [f"  {k:<24} {h['current']} / {h['previous']} / {h['since']}" for k, h in p["history"].items()]
    return "\n".join(lines)
