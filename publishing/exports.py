"""CRM exports: the customers of one segment of the current snapshot, as CSV, PII-free."""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb

from publishing.parquet import current_path

# What a CRM import needs to act on a segment: the id, the labels, and the numbers that explain them.
EXPORT_COLUMNS = [
    "customer_id",
    "snapshot_date",
    "rfm_segment",
    "rfm_segment_name",
    "value_class",
    "value_class_name",
    "lifecycle_stage",
    "value_tier",
    "value_tier_name",
    "overall_grade",
    "cluster_name",
    "r_score",
    "f_score",
    "m_score",
    "recency_days",
    "frequency",
    "monetary",
    "last_purchase_date",
    "preferred_channel",
    "region",
    "city",
]
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class ExportError(ValueError):
    """The export cannot be made; the message says why and what to do."""


def export_segment(published_dir: Path, *, by: str, segment: str, out: Path | None = None) -> tuple[Path, int]:
    """Write the customers with ``by == segment`` from current/customer_segments.parquet to a CSV."""
    src = current_path(published_dir, "customer_segments")
    if not src.is_file():
        raise ExportError(f"{src} does not exist: run `segments run` first")
    con = duckdb.connect()
    try:
        # any label column of the snapshot (built-in segmentations and the config's classifications)
        have = {r[0] for r in con.execute("select name from parquet_schema($p)", {"p": str(src)}).fetchall()}
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", by) or by not in have or by.endswith(_HISTORY):
            raise ExportError(f"cannot export by {by!r}: not a segmentation column of customer_segments")
        known = [
            r[0]
            for r in con.execute(
                f'select distinct cast("{by}" as varchar) from read_parquet($p) where "{by}" is not null order by 1',
                {"p": str(src)},
            ).fetchall()
        ]
        if segment not in known:
            raise ExportError(f"no segment {segment!r} in {by} of the current snapshot; known: {', '.join(known)}")
        out = out or published_dir / "exports" / f"{by}={_SAFE.sub('_', segment)}.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        cols = ", ".join(f'"{c}"' for c in dict.fromkeys([*EXPORT_COLUMNS, by]) if c in have)
        target = str(tmp).replace("'", "''")
        con.execute(
            f'copy (select {cols} from read_parquet($p) where cast("{by}" as varchar) = $s order by customer_id) '
            f"to '{target}' (header true)",
            {"p": str(src), "s": segment},
        )
        rows = con.execute("select count(*) from read_csv($t)", {"t": str(tmp)}).fetchall()[0][0]
        os.replace(tmp, out)
    finally:
        con.close()
    return out, int(rows)


def export_tag(published_dir: Path, *, tag: str, out: Path | None = None) -> tuple[Path, int]:
    """Write the customers carrying ``tag`` (column ``tag_<tag>`` true) of the current snapshot to a CSV."""
    name = tag.removeprefix("tag_")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ExportError(f"tag names are lower_snake_case, got {tag!r}")
    src = current_path(published_dir, "customer_segments")
    if not src.is_file():
        raise ExportError(f"{src} does not exist: run `segments run` first")
    con = duckdb.connect()
    try:
        have = [r[0] for r in con.execute("select name from parquet_schema($p)", {"p": str(src)}).fetchall()]
        tags = sorted(c.removeprefix("tag_") for c in have if c.startswith("tag_") and not c.endswith(_HISTORY))
        if name not in tags:
            raise ExportError(f"no tag {name!r} in the current snapshot; known: {', '.join(tags) or '(none)'}")
        out = out or published_dir / "exports" / f"tag={name}.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        cols = ", ".join(f'"{c}"' for c in [*EXPORT_COLUMNS, "tags"] if c in have)
        target = str(tmp).replace("'", "''")
        con.execute(
            f'copy (select {cols} from read_parquet($p) where "tag_{name}" order by customer_id) '
            f"to '{target}' (header true)",
            {"p": str(src)},
        )
        rows = con.execute("select count(*) from read_csv($t)", {"t": str(tmp)}).fetchall()[0][0]
        os.replace(tmp, out)
    finally:
        con.close()
    return out, int(rows)


_HISTORY = ("_computed", "_previous", "_since")
