"""CRM exports: the customers of one segment of a published snapshot, as CSV or xlsx, PII-free.

Composable steps so other selections (tags, classifications) reuse the reading and writing:

* ``snapshot_file`` finds the published ``customer_segments`` file of a date (current or history);
* ``segment_filter`` turns a segment given by key, English or Chinese display name, ``unassigned``, or
  a cluster id or name into a SQL predicate over one segmentation of the registry;
* ``select_customers`` reads the customers matching a predicate, optionally only those who moved in
  since the previous published snapshot;
* ``write_table`` writes any Arrow table as CSV (``utf-8`` or Excel's ``utf-8-sig``) or xlsx,
  atomically (temp file in the target folder, then rename).
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from models.registry import UNASSIGNED, Language, Registry, RegistryError, Segmentation
from publishing.parquet import current_path, history_path, published_snapshots

ExportFormat = Literal["csv", "xlsx"]
Encoding = Literal["utf-8", "utf-8-sig"]
FORMATS: tuple[str, ...] = ("csv", "xlsx")
ENCODINGS: tuple[str, ...] = ("utf-8", "utf-8-sig")
TABLE = "customer_segments"
XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit minus the header row

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
    "cluster_id",
    "cluster_name",
    "r_score",
    "f_score",
    "m_score",
    "recency_days",
    "frequency",
    "monetary",
    "last_purchase_date",
    "preferred_channel",
    "home_store",
    "region",
    "city",
]
_SAFE = re.compile(r"[^\w.=-]+")


class ExportError(ValueError):
    """The export cannot be made; the message says why and what to do."""


@dataclass(frozen=True)
class SegmentFilter:
    """A predicate over one customer row (alias ``{t}``), its bound values and how to name it."""

    segmentation: Segmentation
    key: str  # label key, cluster id as text, or 'unassigned'
    display: str  # display name in the export's language
    predicate: str  # SQL with ``{t}`` for the table alias and ``$segment`` for the bound value
    value: Any

    def sql(self, alias: str) -> str:
        """The predicate over table alias ``alias``."""
        return self.predicate.format(t=alias)


def snapshot_file(published_dir: Path, as_of: date | None = None) -> tuple[Path, date | None]:
    """The published customer_segments file of ``as_of`` (history) or the current one, and its date."""
    if as_of is None:
        path = current_path(published_dir, TABLE)
        if not path.is_file():
            raise ExportError(f"{path} does not exist: run `segments run` first")
        with duckdb.connect() as con:  # current holds one snapshot; its date is in the rows
            found = con.execute(f"select max(snapshot_date) from {_read('src')}", {"src": str(path)}).fetchall()
        return path, found[0][0]
    path = history_path(published_dir, TABLE, as_of)
    if not path.is_file():
        known = ", ".join(d.isoformat() for d in published_snapshots(published_dir, TABLE)) or "none"
        raise ExportError(
            f"no published snapshot {as_of.isoformat()} of {TABLE} in {published_dir}; published snapshots: {known}. "
            f"Run `segments run --as-of {as_of.isoformat()}` to build it, or pick one of those dates"
        )
    return path, as_of


def previous_snapshot_file(published_dir: Path, as_of: date) -> tuple[Path, date]:
    """The newest published history snapshot strictly before ``as_of`` (for ``--moved-in``)."""
    earlier = [d for d in published_snapshots(published_dir, TABLE) if d < as_of]
    if not earlier:
        raise ExportError(
            f"no published snapshot before {as_of.isoformat()} in {published_dir / TABLE}: "
            "--moved-in compares with the previous snapshot, so it needs at least two snapshots "
            "(run `segments run --as-of D` for an earlier date first)"
        )
    return history_path(published_dir, TABLE, earlier[-1]), earlier[-1]


def _read(param: str) -> str:
    """A table expression reading the Parquet file bound as ``$<param>``.

    History files leave ``snapshot_date`` to their ``snapshot_date=YYYY-MM-DD`` folder, so the folder
    name is read as that column (a DATE); current files carry the column themselves.
    """
    return f"read_parquet(${param}, hive_partitioning = true)"


def segment_filter(
    con: duckdb.DuckDBPyConnection, source: Path, seg: Segmentation, segment: str, language: Language = "en"
) -> SegmentFilter:
    """Resolve ``segment`` (key, display name, 'unassigned', cluster id or name) within ``seg``.

    A label of the registry with no customers in the snapshot is valid (the export is empty); an
    unknown label or cluster is refused with the known ones listed.
    """
    col = f'{{t}}."{seg.column}"'
    if segment.strip().casefold() in {UNASSIGNED, seg.display(None, "en").casefold(), seg.display(None, "zh")}:
        return SegmentFilter(seg, UNASSIGNED, seg.display(None, language), f"{col} is null", None)
    if seg.name == "cluster":
        return _cluster_filter(con, source, seg, segment)
    if not seg.labels:  # data-driven labels (other than clusters, e.g. home_store): a value of the snapshot
        return _value_filter(con, source, seg, segment)
    try:
        key = seg.resolve(segment)
    except RegistryError as exc:
        raise ExportError(f"{exc} (or 'unassigned')") from exc
    return SegmentFilter(seg, key, seg.display(key, language), f"{col} = $segment", key)


def _cluster_filter(con: duckdb.DuckDBPyConnection, source: Path, seg: Segmentation, segment: str) -> SegmentFilter:
    """A cluster by id ("3") or by name ("high spend · frequent · recent", case-insensitive)."""
    clusters = con.execute(
        f"select distinct cluster_id, cluster_name from {_read('src')} where cluster_id is not null order by 1",
        {"src": str(source)},
    ).fetchall()
    wanted = segment.strip().casefold()
    for cid, name in clusters:
        if wanted in (str(cid), (name or "").casefold()):
            return SegmentFilter(seg, str(cid), f"{cid} · {name}", f'{{t}}."{seg.column}" = $segment', int(cid))
    known = "; ".join(f"{cid} ({name})" for cid, name in clusters) or "none"
    raise ExportError(f"cluster: no cluster {segment!r} in {source.name}; known: {known} (or 'unassigned')")


def _value_filter(con: duckdb.DuckDBPyConnection, source: Path, seg: Segmentation, segment: str) -> SegmentFilter:
    """A data-driven label (a store id for home_store) that some customer of the snapshot holds."""
    # seg.column is a registry identifier (lower_snake_case), never user text; the value is bound
    found = con.execute(
        f'select count(*) from {_read("src")} where cast("{seg.column}" as varchar) = $v',
        {"src": str(source), "v": segment.strip()},
    ).fetchall()[0][0]
    if found:
        return SegmentFilter(
            seg, segment.strip(), segment.strip(), f'cast({{t}}."{seg.column}" as varchar) = $segment', segment.strip()
        )
    known = [
        r[0]
        for r in con.execute(
            f'select distinct cast("{seg.column}" as varchar) from {_read("src")} where "{seg.column}" is not null '
            "order by 1 limit 21",
            {"src": str(source)},
        ).fetchall()
    ]
    shown = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "") or "none"
    raise ExportError(f"{seg.name}: no {seg.name} {segment!r} in {source.name}; known: {shown} (or 'unassigned')")


def select_customers(
    con: duckdb.DuckDBPyConnection,
    source: Path,
    where: SegmentFilter,
    *,
    previous: Path | None = None,
) -> pa.Table:
    """Customers of ``source`` matching ``where``, sorted by customer_id, with ``segment``/``segment_name``.

    With ``previous`` (an earlier snapshot file) only customers who moved in: they match now and did
    not match then, including customers absent from the previous snapshot; ``previous_segment`` holds
    their value then.
    """
    have = {r[0] for r in con.execute(f"describe select * from {_read('src')}", {"src": str(source)}).fetchall()}
    cols = ", ".join(f'c."{c}"' for c in EXPORT_COLUMNS[1:] if c in have)
    head = "$key as segment, $display as segment_name"
    params: dict[str, Any] = {"src": str(source), "key": where.key, "display": where.display}
    if where.value is not None:
        params["segment"] = where.value
    if previous is None:
        sql = f"select c.customer_id, {head}, {cols} from {_read('src')} c where {where.sql('c')}"
    else:
        params["prev"] = str(previous)
        prev_value = f'cast(p."{where.segmentation.column}" as varchar)'
        sql = (
            f"select c.customer_id, {head}, "
            f"case when p.customer_id is null then '(none)' else coalesce({prev_value}, '{UNASSIGNED}') end "
            f"as previous_segment, {cols} "
            f"from {_read('src')} c left join {_read('prev')} p on p.customer_id = c.customer_id "
            f"where {where.sql('c')} and not (p.customer_id is not null and coalesce({where.sql('p')}, false))"
        )
    return con.sql(f"{sql} order by c.customer_id", params=params).to_arrow_table()


# A cell Excel or a CRM's spreadsheet would run as a formula (=, +, -, @, tab, CR first), unless it is a plain
# number: written with a leading apostrophe, so it shows as text (landing data reaches city, region, names).
_FORMULA = r"^[=+\-@\t\r]"
_NUMBER = r"^[+-]?[0-9]+(\.[0-9]+)?$"


def neutralize_formulas(table: pa.Table) -> pa.Table:
    """Prefix every string cell that a spreadsheet would evaluate as a formula with ``'`` (CSV injection)."""
    for i, field in enumerate(table.schema):
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        col = table.column(i)
        risky = pc.and_(pc.match_substring_regex(col, _FORMULA), pc.invert(pc.match_substring_regex(col, _NUMBER)))
        if pc.any(risky).as_py():
            quoted = pc.binary_join_element_wise(pa.scalar("'", field.type), col, pa.scalar("", field.type))
            table = table.set_column(i, field, pc.if_else(risky, quoted, col))
    return table


def _temp(final: Path) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp")


def _write_csv(table: pa.Table, path: Path, encoding: Encoding) -> None:
    with open(path, "xb") as fh:
        if encoding == "utf-8-sig":
            fh.write("\ufeff".encode())  # the byte-order mark Excel needs to read UTF-8 (Chinese) correctly
        pacsv.write_csv(table, fh, pacsv.WriteOptions(include_header=True, quoting_style="needed"))
        fh.flush()
        os.fsync(fh.fileno())


def _write_xlsx(table: pa.Table, path: Path, sheet: str) -> None:
    from openpyxl import Workbook

    if table.num_rows > XLSX_MAX_ROWS:
        raise ExportError(f"{table.num_rows:,} rows do not fit one Excel sheet ({XLSX_MAX_ROWS:,}); use --format csv")
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=_SAFE.sub("_", sheet)[:31] or "export")
    ws.freeze_panes = "A2"
    ws.append(table.column_names)
    for batch in table.to_batches(max_chunksize=10_000):
        for row in zip(*(col.to_pylist() for col in batch.columns), strict=True):
            ws.append(list(row))
    with open(path, "xb") as fh:
        wb.save(fh)
        fh.flush()
        os.fsync(fh.fileno())


def write_table(
    table: pa.Table, out: Path, *, fmt: ExportFormat = "csv", encoding: Encoding = "utf-8-sig", sheet: str = "export"
) -> Path:
    """Write ``table`` to ``out`` atomically: a hidden temp file in the same folder, then a rename."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if encoding not in ENCODINGS:
        raise ExportError(f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    table = neutralize_formulas(table)
    tmp = _temp(out)
    try:
        if fmt == "xlsx":
            _write_xlsx(table, tmp, sheet)
        else:
            _write_csv(table, tmp, encoding)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def default_export_path(published_dir: Path, name: str, fmt: ExportFormat) -> Path:
    """``<published_dir>/exports/<name>.<fmt>`` with unsafe characters replaced."""
    return published_dir / "exports" / f"{_SAFE.sub('_', name)}.{fmt}"


def export_segment(
    published_dir: Path,
    registry: Registry,
    *,
    by: str,
    segment: str,
    out: Path | None = None,
    fmt: ExportFormat = "csv",
    encoding: Encoding = "utf-8-sig",
    as_of: date | None = None,
    moved_in: bool = False,
    language: Language = "en",
) -> tuple[Path, int]:
    """Export the customers with ``by == segment`` (current snapshot, or ``as_of``); returns (path, rows)."""
    allowed = registry.where("exportable")
    try:
        seg = registry.get(by)
    except RegistryError:
        seg = None
    if seg is None or seg not in allowed:
        raise ExportError(f"cannot export by {by!r}; exportable: {', '.join(s.name for s in allowed)}")
    source, snapshot = snapshot_file(published_dir, as_of)
    con = duckdb.connect()
    try:
        where = segment_filter(con, source, seg, segment, language)
        previous = None
        if moved_in:
            if snapshot is None:
                raise ExportError(f"{source} is empty: --moved-in needs a snapshot and the one before it")
            previous, _ = previous_snapshot_file(published_dir, snapshot)
        table = select_customers(con, source, where, previous=previous)
    finally:
        con.close()
    name = f"{seg.name}={where.key}" + ("_moved_in" if moved_in else "") + (f"_{as_of.isoformat()}" if as_of else "")
    target = out or default_export_path(published_dir, name, fmt)
    path = write_table(table, target, fmt=fmt, encoding=encoding, sheet=name)
    return path, table.num_rows


def export_tag(published_dir: Path, registry: Registry, *, tag: str, **options: Any) -> tuple[Path, int]:
    """Export the customers carrying ``tag`` (its ``tag_<name>`` flag is true); options as ``export_segment``."""
    name = tag.removeprefix("tag_")
    tags = [s.name.removeprefix("tag_") for s in registry if s.kind == "tag"]
    if name not in tags:
        raise ExportError(f"no tag {name!r} in the config; tags: {', '.join(tags) or '(none)'}")
    return export_segment(published_dir, registry, by=f"tag_{name}", segment="true", **options)
