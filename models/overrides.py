"""Manual overrides: a CRM user sets a customer's label by hand, with a reason, an author and an expiry.

The overrides file (CSV or YAML, ``overrides_file`` in segments.yaml) has one override per row:
``customer_id, field, value, reason, author, expires``. ``field`` names a registered segmentation
(``value_tier``, ``rfm_segment``, ``cluster``...) or a tag (``tag_<name>`` or the bare tag name);
``value`` is a label key or display name (``true``/``false`` for a tag, a cluster id for ``cluster``, a
store id found in the snapshot for ``home_store``);
``expires`` (YYYY-MM-DD, optional) is the last snapshot date the override applies to.

Applied last, after every rule. An override naming an unknown customer, field or label, or
conflicting with another active override of the same customer and field (different values), is
refused; an expired one is not applied. Every override gets one row in ``override_audit`` per snapshot.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from models.registry import Registry, RegistryError, Segmentation

COLUMNS = ("customer_id", "field", "value", "reason", "author", "expires")
REQUIRED = ("customer_id", "field", "value", "reason", "author")
AUDIT_SCHEMA: dict[str, pl.DataType] = {
    "snapshot_date": pl.Date(),
    "line": pl.Int64(),
    "customer_id": pl.String(),
    "field": pl.String(),
    "value": pl.String(),
    "computed_value": pl.String(),
    "status": pl.String(),
    "detail": pl.String(),
    "reason": pl.String(),
    "author": pl.String(),
    "expires": pl.Date(),
}
_TRUE = {"true", "yes", "1", "是"}
_FALSE = {"false", "no", "0", "否"}


class OverrideFileError(ValueError):
    """The overrides file cannot be read; the message names the file, line and column."""


@dataclass(frozen=True)
class Override:
    """One row of the overrides file."""

    line: int
    customer_id: str
    field: str
    value: str
    reason: str
    author: str
    expires: date | None


def _row(path: Path, line: int, raw: dict[str, Any]) -> Override:
    unknown = sorted(k for k in raw if k not in COLUMNS)
    if unknown:
        raise OverrideFileError(f"{path}:{line}: unknown column(s) {unknown}; expected {list(COLUMNS)}")
    values = {k: ("" if raw.get(k) is None else str(raw[k]).strip()) for k in COLUMNS}
    for key in REQUIRED:
        if not values[key]:
            raise OverrideFileError(f"{path}:{line}: column {key!r} is empty; every override needs {list(REQUIRED)}")
    expires: date | None = None
    if values["expires"]:
        try:
            expires = date.fromisoformat(values["expires"])
        except ValueError:
            raise OverrideFileError(
                f"{path}:{line}: column 'expires' is {values['expires']!r}; expected a date YYYY-MM-DD or empty"
            ) from None
    return Override(
        line, values["customer_id"], values["field"], values["value"], values["reason"], values["author"], expires
    )


def load_overrides(path: Path | None) -> list[Override]:
    """Read the overrides file (``.csv`` or ``.yaml``/``.yml``); an absent setting means no overrides."""
    if path is None:
        return []
    path = Path(path)
    if not path.is_file():
        raise OverrideFileError(f"{path}: overrides file not found (overrides_file in segments.yaml)")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        except yaml.YAMLError as exc:
            raise OverrideFileError(f"{path}: not valid YAML: {exc}") from None
        if isinstance(data, dict):
            data = data.get("overrides", [])
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise OverrideFileError(f"{path}: expected a list of mappings with keys {list(COLUMNS)}")
        return [_row(path, i + 1, d) for i, d in enumerate(data)]
    if path.suffix.lower() != ".csv":
        raise OverrideFileError(f"{path}: overrides must be a .csv or .yaml file")
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise OverrideFileError(f"{path}:1: header lacks {missing}; expected {list(COLUMNS)}")
        return [_row(path, reader.line_num, {k: v for k, v in r.items() if k is not None}) for r in reader]


def _target(field: str, registry: Registry) -> Segmentation | None:
    try:
        return registry.get(field)
    except RegistryError:
        try:
            return registry.get(f"tag_{field}")
        except RegistryError:
            return None


class _SnapshotValues:
    """The labels a data-driven segmentation (cluster, home store) has in this snapshot: its column's values,
    read once per column."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame
        self.seen: dict[str, set[Any]] = {}

    def __call__(self, seg: Segmentation) -> set[Any]:
        if seg.column not in self.seen:
            col = self.frame[seg.column] if seg.column in self.frame.columns else pl.Series([])
            self.seen[seg.column] = set(col.drop_nulls().unique().to_list())
        return self.seen[seg.column]


def _parse_value(seg: Segmentation, value: str, snapshot_values: _SnapshotValues) -> Any:
    """The typed value the column will hold; ValueError with a reason when the value is not a label.

    A data-driven segmentation takes a value its column holds in this snapshot (a cluster id, a store id).
    """
    if seg.kind == "tag":
        v = value.strip().casefold()
        if v in _TRUE | _FALSE:
            return v in _TRUE
        raise ValueError(f"a tag is true or false, got {value!r}")
    if seg.column == "cluster_id":
        cluster_ids = snapshot_values(seg)
        if value.strip().isdigit() and int(value) in cluster_ids:
            return int(value)
        raise ValueError(f"no cluster {value!r} in this snapshot; clusters: {sorted(cluster_ids)}")
    if not seg.labels:
        found = snapshot_values(seg)
        if value.strip() in found:
            return value.strip()
        shown = ", ".join(sorted(map(str, found))[:20]) + (" ..." if len(found) > 20 else "")
        raise ValueError(f"no {seg.name} {value!r} in this snapshot; {seg.name} values: {shown or 'none'}")
    try:
        return seg.resolve(value)
    except RegistryError as exc:
        raise ValueError(str(exc)) from None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


def resolve_overrides(
    frame: pl.DataFrame, overrides: list[Override], registry: Registry, as_of: date
) -> tuple[dict[tuple[str, str], Any], pl.DataFrame]:
    """Which overrides apply to snapshot ``as_of``: {(customer_id, column): value} and the audit rows."""
    named = {o.customer_id for o in overrides}
    ids = set(frame.filter(pl.col("customer_id").is_in(list(named)))["customer_id"].to_list()) if named else set()
    snapshot_values = _SnapshotValues(frame)
    audit: list[dict[str, Any]] = []
    candidates: dict[tuple[str, str], list[tuple[dict[str, Any], Any]]] = {}
    for o in overrides:
        row = {
            "snapshot_date": as_of,
            "line": o.line,
            "customer_id": o.customer_id,
            "field": o.field,
            "value": o.value,
            "computed_value": None,
            "reason": o.reason,
            "author": o.author,
            "expires": o.expires,
        }
        audit.append(row)
        seg = _target(o.field, registry)
        if o.expires is not None and o.expires < as_of:
            row.update(status="expired", detail=f"expired on {o.expires.isoformat()}")
            continue
        if seg is None:
            row.update(status="refused", detail=f"unknown field {o.field!r}; fields: {', '.join(registry.names)}")
            continue
        try:
            value = _parse_value(seg, o.value, snapshot_values)
        except ValueError as exc:
            row.update(status="refused", detail=f"unknown label: {exc}")
            continue
        if o.customer_id not in ids:
            row.update(status="refused", detail=f"unknown customer {o.customer_id!r} in snapshot {as_of}")
            continue
        candidates.setdefault((o.customer_id, seg.column), []).append((row, value))
    applied: dict[tuple[str, str], Any] = {}
    wanted = [cid for cid, _ in candidates]
    computed = (
        frame.filter(pl.col("customer_id").is_in(wanted))
        .select("customer_id", *{col for _, col in candidates})
        .rows_by_key("customer_id", named=True)
    )
    for (cid, col), items in candidates.items():
        current = _text(computed[cid][0][col])
        values = {v for _, v in items}
        for row, _ in items:
            row["computed_value"] = current
        if len(values) > 1:
            lines = ", ".join(str(r["line"]) for r, _ in items)
            for row, _ in items:
                row.update(status="refused", detail=f"conflicts with another override of {col} (lines {lines})")
            continue
        applied[(cid, col)] = values.pop()
        for row, _ in items:
            row.update(status="applied", detail=f"{col}: {current} -> {_text(applied[(cid, col)])}")
    table = pl.DataFrame(audit, schema=AUDIT_SCHEMA) if audit else pl.DataFrame(schema=AUDIT_SCHEMA)
    return applied, table.sort("line")


def apply_overrides(
    frame: pl.DataFrame, overrides: list[Override], registry: Registry, as_of: date, names: dict[str, dict[str, str]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Publish computed and effective values: ``<column>_computed`` for every registered segmentation,
    ``<column>`` overridden where an override applies, ``overridden_fields`` (sorted list) per customer.

    ``names`` maps a column to {label key: display name} so ``<column>_name`` follows the override;
    ``tags`` is rebuilt from the effective tag flags. Returns (frame, override_audit rows).
    """
    applied, audit = resolve_overrides(frame, overrides, registry, as_of)
    names = dict(names)
    if {"cluster_id", "cluster_name"} <= set(frame.columns):  # cluster names are per snapshot
        pairs = frame.select("cluster_id", "cluster_name").drop_nulls().unique().rows()
        names["cluster_id"] = {str(i): n for i, n in pairs}
    segs = [s for s in registry if s.column in frame.columns]
    frame = frame.with_columns(pl.col(s.column).alias(f"{s.column}_computed") for s in segs)
    by_col: dict[str, dict[str, Any]] = {}
    for (cid, col), value in applied.items():
        by_col.setdefault(col, {})[cid] = value
    fields: dict[str, list[str]] = {}
    for col, values in sorted(by_col.items()):
        dtype = frame.schema[col]
        hit = pl.col("customer_id").is_in(list(values))
        new = pl.col("customer_id").replace_strict(values, default=None, return_dtype=dtype)
        frame = frame.with_columns(pl.when(hit).then(new).otherwise(pl.col(col)).alias(col))
        name_col = "cluster_name" if col == "cluster_id" else f"{col}_name"
        if col in names and name_col in frame.columns:
            frame = frame.with_columns(
                pl.when(hit)
                .then(pl.col(col).cast(pl.String).replace_strict(names[col], default=None))
                .otherwise(pl.col(name_col))
                .alias(name_col)
            )
        for cid in values:
            fields.setdefault(cid, []).append(col)
    frame = frame.with_columns(
        pl.col("customer_id")
        .replace_strict({k: sorted(v) for k, v in fields.items()}, default=[], return_dtype=pl.List(pl.String))
        .alias("overridden_fields")
        if fields
        else pl.lit([], dtype=pl.List(pl.String)).alias("overridden_fields")
    )
    if any(s.kind == "tag" for s in segs) and "tags" in frame.columns:
        tag_cols = sorted(s.column for s in segs if s.kind == "tag")
        parts = [pl.when(pl.col(c)).then(pl.lit(c.removeprefix("tag_"))) for c in tag_cols]
        frame = frame.with_columns(pl.concat_list(parts).list.drop_nulls().alias("tags"))
    return frame, audit
