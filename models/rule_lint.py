"""Rule linting: rules that can never fire (config load) and tags/defaults that say nothing (per snapshot).

Pure functions returning findings; the checks module turns them into WARN asset checks.

At config load (``lint_rules``): a rule whose conditions can never all hold (``monetary between 10
and 5``, ``frequency > 5 and frequency < 3``) and a rule *shadowed* by an earlier rule of the same
classification (every customer it would match is taken first) are errors; a label no rule gives
and that is not the default is a warning (it may be meant for manual overrides only).
Per snapshot (``lint_snapshot``): a tag carried by nobody or by everybody, and a classification
whose default label holds more than ``rule_lint.max_default_share`` of the customers, are warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import duckdb
import polars as pl

from models.classifications import compile_settings_rules, tag_column
from models.rules import Between, Binary, Col, InList, Lit, Node, Rule
from models.settings import SegmentationSettings

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "<>": "<>"}


@dataclass(frozen=True)
class Finding:
    """One lint result: severity, a short code, the config key and a sentence for people."""

    severity: Literal["error", "warn"]
    code: str
    where: str
    message: str


def _conjuncts(node: Node) -> list[Node]:
    if isinstance(node, Binary) and node.op == "and":
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _interval(node: Node) -> tuple[str, float, float, bool, bool] | None:
    """(column, low, high, low_open, high_open) for a numeric comparison of a column with a literal."""
    inf = float("inf")
    if isinstance(node, Between) and not node.negated and isinstance(node.expr, Col):
        if isinstance(node.low, Lit) and isinstance(node.high, Lit) and _num(node.low) and _num(node.high):
            return node.expr.name, float(node.low.value), float(node.high.value), False, False
        return None
    if not isinstance(node, Binary) or node.op not in ("<", "<=", ">", ">=", "="):
        return None
    col, lit, op = node.left, node.right, node.op
    if isinstance(col, Lit) and isinstance(lit, Col):
        col, lit, op = lit, col, _FLIP[op]
    if not (isinstance(col, Col) and isinstance(lit, Lit) and _num(lit)):
        return None
    v = float(lit.value)
    return {
        "<": (col.name, -inf, v, True, True),
        "<=": (col.name, -inf, v, True, False),
        ">": (col.name, v, inf, True, True),
        ">=": (col.name, v, inf, False, True),
        "=": (col.name, v, v, False, False),
    }[op]


def _num(lit: Lit) -> bool:
    return lit.type in ("integer", "decimal")


def _empty(lo: float, hi: float, lo_open: bool, hi_open: bool) -> bool:
    return lo > hi or (lo == hi and (lo_open or hi_open))


def never_matches(rule: Rule) -> str | None:
    """Why ``rule`` can never be true (an empty numeric range on one column), or None."""
    ranges: dict[str, tuple[float, float, bool, bool]] = {}
    for part in _conjuncts(rule.tree):
        iv = _interval(part)
        if iv is None:
            continue
        name, lo, hi, lo_open, hi_open = iv
        if _empty(lo, hi, lo_open, hi_open):
            return f"the range of {name} is empty"
        if name in ranges:
            plo, phi, plo_open, phi_open = ranges[name]
            if (lo, lo_open) < (plo, plo_open):  # keep the tighter lower bound
                lo, lo_open = plo, plo_open
            if (hi, not hi_open) > (phi, not phi_open):  # and the tighter upper bound
                hi, hi_open = phi, phi_open
            if _empty(lo, hi, lo_open, hi_open):
                return f"the conditions on {name} exclude each other"
        ranges[name] = (lo, hi, lo_open, hi_open)
    return None


def _implies(a: Node, b: Node) -> bool:
    """Whether condition ``a`` being true guarantees ``b`` (syntactic and interval reasoning only)."""
    if a == b or _strip(a) == _strip(b):
        return True
    ia, ib = _interval(a), _interval(b)
    if ia and ib and ia[0] == ib[0]:
        _, alo, ahi, alo_o, ahi_o = ia
        _, blo, bhi, blo_o, bhi_o = ib
        low_ok = alo > blo or (alo == blo and (alo_o or not blo_o))
        high_ok = ahi < bhi or (ahi == bhi and (ahi_o or not bhi_o))
        return low_ok and high_ok
    values_a = _in_values(a)
    values_b = _in_values(b)
    if values_a and values_b and values_a[0] == values_b[0]:
        return values_a[1] <= values_b[1]
    return False


def _in_values(node: Node) -> tuple[str, set[Any]] | None:
    if isinstance(node, InList) and not node.negated and isinstance(node.expr, Col):
        return node.expr.name, {i.value for i in node.items}
    if isinstance(node, Binary) and node.op == "=" and isinstance(node.left, Col) and isinstance(node.right, Lit):
        return node.left.name, {node.right.value}
    return None


def _strip(node: Node) -> Any:
    """A position-free form of ``node`` for equality."""
    if isinstance(node, Lit):
        return ("lit", node.value, node.type)
    if isinstance(node, Col):
        return ("col", node.name)
    fields = [f for f in node.__dataclass_fields__ if f not in ("pos", "end")]
    return (type(node).__name__, *(_strip_value(getattr(node, f)) for f in fields))


def _strip_value(value: Any) -> Any:
    if isinstance(value, Node):
        return _strip(value)
    if isinstance(value, tuple):
        return tuple(_strip_value(v) for v in value)
    return value


def shadowed_by(earlier: Rule, later: Rule) -> bool:
    """Whether every customer ``later`` matches is already matched by ``earlier``."""
    later_parts = _conjuncts(later.tree)
    return all(any(_implies(lp, ep) for lp in later_parts) for ep in _conjuncts(earlier.tree))


def lint_rules(settings: SegmentationSettings) -> list[Finding]:
    """Findings about the rules of ``settings`` themselves (no data needed)."""
    compiled = compile_settings_rules(settings)
    out: list[Finding] = []
    for cls in compiled.classifications:
        for i, (label, rule) in enumerate(cls.rules):
            where = f"classifications.{cls.name}.rules.{i}"
            why = never_matches(rule)
            if why:
                out.append(Finding("error", "empty_range", where, f"rule {rule.text!r} can never match: {why}"))
                continue
            for j in range(i):
                if shadowed_by(cls.rules[j][1], rule):
                    out.append(
                        Finding(
                            "error",
                            "shadowed",
                            where,
                            f"rule {rule.text!r} ({label}) never fires: "
                            f"rule {j} {cls.rules[j][1].text!r} already takes every customer it matches",
                        )
                    )
                    break
        given = {label for label, _ in cls.rules} | {cls.default}
        for label in settings.classifications[cls.name].labels:
            if label not in given:
                out.append(
                    Finding(
                        "warn",
                        "unreachable_label",
                        f"classifications.{cls.name}.labels.{label}",
                        f"no rule gives {label!r} and it is not the default (overrides only)",
                    )
                )
    for name, rule in compiled.tags:
        why = never_matches(rule)
        if why:
            out.append(Finding("error", "empty_range", f"tags.{name}.when", f"{rule.text!r} can never match: {why}"))
    return out


def lint_snapshot(
    frame_or_con: pl.DataFrame | duckdb.DuckDBPyConnection, as_of: date, settings: SegmentationSettings
) -> list[Finding]:
    """WARN findings on one snapshot of customer_segments: silent tags and swallowing defaults."""
    compiled = compile_settings_rules(settings)
    if isinstance(frame_or_con, pl.DataFrame):
        frame = frame_or_con.filter(pl.col("snapshot_date") == as_of)
    else:
        cols = ["customer_id", *(f'"{c.name}_computed"' for c in compiled.classifications)]
        cols += [f'"{tag_column(n)}_computed"' for n, _ in compiled.tags]
        frame = frame_or_con.sql(
            f"select {', '.join(cols)} from customer_segments where snapshot_date = $d", params={"d": as_of}
        ).pl()
    total = frame.height
    out: list[Finding] = []
    if total == 0:
        return out

    def col(name: str) -> str:
        return f"{name}_computed" if f"{name}_computed" in frame.columns else name

    for name, _ in compiled.tags:
        hits = int(frame[col(tag_column(name))].fill_null(False).sum())
        if hits in (0, total):
            who = "nobody" if hits == 0 else "every customer"
            out.append(
                Finding(
                    "warn",
                    "tag_matches_" + ("nobody" if hits == 0 else "everybody"),
                    f"tags.{name}",
                    f"tag {name} matches {who} of the {total:,} customers of {as_of}",
                )
            )
    limit = settings.rule_lint.max_default_share
    for cls in compiled.classifications:
        share = frame.filter(pl.col(col(cls.name)) == cls.default).height / total
        if share > limit:
            out.append(
                Finding(
                    "warn",
                    "default_swallows",
                    f"classifications.{cls.name}",
                    f"default label {cls.default!r} holds {share:.1%} of customers on {as_of} "
                    f"(over rule_lint.max_default_share = {limit:.0%})",
                )
            )
    return out
