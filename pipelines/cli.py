"""The ``segments`` command: sample data, a full in-process run through Dagster, exports."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from segments.config import ConfigError, Settings, load_settings


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from exc


def _exportable_builtins() -> list[str]:
    """Names of the built-in segmentations flagged exportable in the registry (for --help)."""
    from models.registry import config_registry

    return [s.name for s in config_registry().where("exportable")]


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="segments", description=__doc__)
    p.add_argument("--config", help="config file (default: $SEGMENTS_CONFIG or ./segments.yaml)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sample-data", help="generate deterministic sample landing files")
    s.add_argument("--customers", type=int, default=10_000)
    s.add_argument("--days", type=int, default=400)
    s.add_argument("--end-date", type=_parse_date, default=date(2026, 11, 21))
    s.add_argument("--daily-days", type=int, default=14, help="last N days as daily files, older ones monthly")
    s.add_argument("--seed", type=int, default=42)
    s.add_argument(
        "--defects",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="inject a small share of bad rows and one bad file (default: on)",
    )
    s.add_argument("--if-empty", action="store_true", help="do nothing when the landing dir already has files")
    s.add_argument("--out", type=Path, help="landing dir (default: landing_dir from the config)")

    r = sub.add_parser("run", help="ingest new files and build every asset for one snapshot date, through Dagster")
    r.add_argument("--as-of", type=_parse_date, help="snapshot date D (default: the last order date in the data)")

    e = sub.add_parser(
        "export",
        help="export the customers of a segment (CSV or xlsx) for CRM import",
        description="Export the customers of one segment of the current (or --as-of) published snapshot.",
    )
    which = e.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--segment",
        help="segment key or display name in English or Chinese (champions, Champions, 重要价值客户), "
        "'unassigned', or a cluster id or name",
    )
    which.add_argument("--tag", help="tag name: export the customers carrying it, e.g. high_value_active")
    e.add_argument(
        "--by",
        default="rfm_segment",
        help=f"exportable segmentation of the registry: {', '.join(_exportable_builtins())} (default rfm_segment)",
    )
    e.add_argument("--format", default="csv", choices=["csv", "xlsx"])
    e.add_argument(
        "--encoding",
        default="utf-8-sig",
        choices=["utf-8", "utf-8-sig"],
        help="CSV encoding; utf-8-sig (default) writes the byte-order mark Excel needs to show Chinese, utf-8 "
        "leaves it out (xlsx ignores it)",
    )
    e.add_argument(
        "--moved-in",
        action="store_true",
        help="only customers who moved into the segment since the previous published snapshot",
    )
    e.add_argument("--as-of", type=_parse_date, help="a published history snapshot instead of the current one")
    e.add_argument("--out", type=Path, help="output file (default: <published_dir>/exports/<by>=<segment>.<format>)")

    q = sub.add_parser("sql", help="a read-only SQL shell on catalog.duckdb (views over the published tables)")
    q.add_argument("-c", "--command", dest="statement", help="run this statement, print the result and exit")
    q.add_argument("--catalog", type=Path, help="catalog file (default: <published_dir>/catalog.duckdb)")

    x = sub.add_parser("explain", help="show a customer's portrait: every label and the rule that gave it")
    x.add_argument("customer_id")
    x.add_argument("--as-of", type=_parse_date, help="snapshot date (default: the current published snapshot)")
    x.add_argument("--json", action="store_true", help="print JSON (for a CRM) instead of text")

    g = sub.add_parser(
        "reingest",
        help="reload landing files now, even unchanged ones (after fixing segments.yaml); then run `segments run`",
    )
    g.add_argument("source", nargs="?", help="only this source (orders, browsing, feedback, customers)")
    g.add_argument("--file", dest="file_glob", help="only files matching this glob (e.g. 'orders/2026-11-*.csv')")

    d = sub.add_parser("docs", help="write the data dictionary (docs/data_dictionary.md) from the output contracts")
    d.add_argument("--out", type=Path, default=Path("docs/data_dictionary.md"))
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "sample-data":
        return _sample_data(args, settings)
    if args.command == "run":
        return _run(args, settings)
    if args.command == "export":
        return _export(args, settings)
    if args.command == "explain":
        return _explain(args, settings)
    if args.command == "docs":
        return _docs(args, settings)
    if args.command == "reingest":
        return _reingest(args, settings)
    if args.command == "sql":
        return _sql(args, settings)
    return 2  # pragma: no cover - argparse enforces the choices


def _sample_data(args: argparse.Namespace, settings: Settings) -> int:
    from segments.sample_data import generate

    out: Path = args.out or settings.landing_dir
    if args.if_empty and out.exists() and any(p.is_file() for p in out.rglob("*")):
        print(f"sample data: {out} already has files; leaving it as it is")
        return 0
    t0 = time.perf_counter()
    counts = generate(
        out,
        customers=args.customers,
        days=args.days,
        end_date=args.end_date,
        seed=args.seed,
        defects=args.defects,
        daily_days=args.daily_days,
    )
    print(
        f"sample data written to {out} in {time.perf_counter() - t0:.1f}s: "
        + ", ".join(f"{k}={v:,}" for k, v in counts.items())
    )
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.runner import run_pipeline

    try:
        summary = run_pipeline(settings, as_of=args.as_of)
    except Exception as exc:  # a failed run is loud: message + non-zero exit code
        print(f"error: the run failed: {exc}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    return 0 if summary.get("success") else 1


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from models.registry import config_registry
    from publishing.exports import ExportError, export_segment, export_tag

    registry = config_registry(settings.segmentation, settings.windows())
    options = {
        "out": args.out,
        "fmt": args.format,
        "encoding": args.encoding,
        "as_of": args.as_of,
        "moved_in": args.moved_in,
        "language": settings.language,
    }
    try:
        if args.tag:
            path, rows = export_tag(settings.published_dir, registry, tag=args.tag, **options)
        else:
            path, rows = export_segment(settings.published_dir, registry, by=args.by, segment=args.segment, **options)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    what = "moved into" if args.moved_in else "in"
    which = f"tag {args.tag}" if args.tag else f"{args.by}={args.segment}"
    print(f"exported {rows:,} customers {what} {which} to {path}")
    return 0


def _explain(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from models.explain import ExplainError, portrait, render_portrait
    from models.settings import load_segmentation_settings

    try:
        p = portrait(
            settings.published_dir,
            args.customer_id,
            load_segmentation_settings(settings.segmentation, windows=settings.windows()),
            as_of=args.as_of,
            warehouse=settings.warehouse,
        )
    except ExplainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(p, ensure_ascii=False, indent=2) if args.json else render_portrait(p))
    return 0


def _reingest(args: argparse.Namespace, settings: Settings) -> int:
    """Reload the chosen landing files into the warehouse and print what each source holds now."""
    from datetime import UTC, datetime

    from ingestion.loader import reingest
    from segments.warehouse import connect

    if args.source and args.source not in settings.sources:
        print(
            f"error: unknown source {args.source!r}; configured: {', '.join(sorted(settings.sources))}", file=sys.stderr
        )
        return 2
    # Each source's stager and landing as the ingestion assets make them (the Spark resource's defaults: a
    # local[2] session, started only when a file needs it).
    from assets.engine_stages import ingestion_landing, ingestion_stager
    from assets.resources import SegmentsResource, SparkResource

    segments, spark = SegmentsResource(config_path=args.config or ""), SparkResource()
    with connect(settings.warehouse, memory_limit=settings.memory_limit) as con:
        reports = reingest(
            con,
            settings,
            args.source,
            args.file_glob,
            run_ts=datetime.now(UTC),
            stager=lambda source: ingestion_stager(source, segments, spark),
            landing=lambda source: ingestion_landing(source, segments, spark),
        )
    for rep in reports:
        done = [f for f in rep.files if f.status != "unchanged"]
        print(
            f"{rep.source:<10} files reloaded {rep.count('loaded'):>4}  rejected {rep.count('rejected'):>2}  "
            f"rows read {rep.total('rows_read'):,} = loaded {rep.total('rows_loaded'):,} + quarantined "
            f"{rep.total('rows_quarantined'):,} + duplicates {rep.total('duplicates_dropped'):,}  {rep.status}"
        )
        lines = [f"  problem: {p}" for p in rep.problems]
        lines += [f"  rejected {f.path}: {f.error}" for f in done if f.status == "rejected"]
        lines += [
            f"  {r['rows']:,} quarantined, {r['column']}: {r['reason']} (e.g. {r['example']}); hint: {r['hint']}"
            for r in rep.quarantine_reasons
        ]
        if lines:
            print("\n".join(lines))
    print("next: `segments run` builds the snapshot from the reloaded rows")
    return 0


def _sql(args: argparse.Namespace, settings: Settings) -> int:
    from publishing.catalog import CATALOG_NAME, sql_shell

    catalog = args.catalog or settings.published_dir / CATALOG_NAME
    try:
        return sql_shell(catalog, command=args.statement)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _docs(args: argparse.Namespace, settings: Settings) -> int:
    from data_contracts.contracts import output_contracts
    from models.registry import config_registry
    from publishing.dictionary import render_data_dictionary

    registry = config_registry(settings.segmentation, settings.windows())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_data_dictionary(output_contracts().values(), registry=registry), encoding="utf-8")
    print(f"data dictionary written to {args.out}")
    return 0


def format_summary(summary: dict[str, Any]) -> str:
    """Human summary printed at the end of ``segments run``."""
    lines = [
        f"segments run {'succeeded' if summary.get('success') else 'FAILED'} "
        f"(snapshot {summary.get('as_of', '-')}, {summary.get('seconds', 0):.1f}s)"
    ]
    lines.append("ingestion (files processed this run; unchanged files skipped):")
    for src, info in summary.get("ingestion", {}).items():
        if info.get("status") == "not configured":
            lines.append(f"  {src:<10} not configured (add sources.{src} to the config to load it)")
            continue
        lines.append(
            f"  {src:<10} files loaded {info['files_loaded']:>4}  rejected {info['files_rejected']:>2}  "
            f"rows read {info['rows_read']:>10,} = loaded {info['rows_loaded']:>10,} + quarantined "
            f"{info['rows_quarantined']:>6,} + duplicates {info['duplicates_dropped']:>5,}  "
            f"{info.get('status', 'OK') if info['balanced'] else 'DOES NOT ADD UP'}  "
            f"(table: {info['table_rows']:,} rows)"
        )
        lines += [f"    problem: {p}" for p in info.get("problems", [])]
        for r in info.get("quarantine_reasons", []):
            lines.append(
                f"    {r['rows']:,} quarantined, {r['column']}: {r['reason']} (e.g. {r['example']} {r['value']!r}); "
                f"hint: {r['hint']}"
            )
    for msg in summary.get("rejected_files", []):
        lines.append(f"  rejected: {msg}")
    checks = summary.get("checks")
    if checks:
        lines.append(
            f"quality checks: {checks['passed']} passed, {len(checks['failed'])} failed (blocking), "
            f"{len(checks['warned'])} warnings"
        )
        lines += [f"  warning: {name}" for name in checks["warned"]]
    if summary.get("tables"):
        lines.append("tables:")
        for name, n in summary["tables"].items():
            lines.append(f"  {name:<22} {n:>10,} rows")
    if summary.get("stages"):
        lines.append("stages (seconds): " + ", ".join(f"{k} {v:.1f}" for k, v in summary["stages"].items()))
    for key in ("warehouse", "published_dir", "catalog"):
        if summary.get(key):
            lines.append(f"{key}: {summary[key]}")
    for msg in summary.get("failures", []):
        lines.append(f"FAILED: {msg}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
