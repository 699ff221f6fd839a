"""Run the pipeline in-process through Dagster (what ``segments run`` does) and summarise it."""

from __future__ import annotations

import os
import shutil
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

try:  # POSIX only; elsewhere concurrent first runs are not serialised
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from segments.config import Settings, load_settings
from segments.warehouse import connect, first_business_date

# The CLI prints its own summary; Dagster's console logger only shows warnings and errors.
QUIET: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


INSTANCE_CONFIG = Path(__file__).resolve().parent / "dagster.yaml"


def dagster_home(settings: Settings) -> Path:
    """``$DAGSTER_HOME``, else ``.dagster_home/`` beside the config file: the instance ``make ui`` shows."""
    env = os.environ.get("DAGSTER_HOME")
    if env:
        return Path(env).expanduser()
    base = settings.config_path.parent if settings.config_path else Path.cwd()
    return base / ".dagster_home"


def project_instance(settings: Settings) -> dg.DagsterInstance:
    """The project's persistent Dagster instance (created on first use), so CLI runs and their check
    details appear in the UI next to the runs launched there."""
    home = dagster_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    # Two runs starting at once on a new home would both create the instance's SQLite schema (alembic
    # then finds two heads): the first to take the lock creates it, the other waits and opens it.
    with open(home / ".init.lock", "a+b") as lock:
        if fcntl is not None:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            if not (home / "dagster.yaml").exists():
                shutil.copyfile(INSTANCE_CONFIG, home / "dagster.yaml")
            instance = dg.DagsterInstance.from_config(str(home))
            instance.get_runs(limit=1)  # touches (and so initialises) the run storage under the lock
        finally:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    return instance


def latest_data_date(settings: Settings) -> date | None:
    """The last local order date in the warehouse (the default snapshot date)."""
    if not settings.warehouse.exists():
        return None
    with connect(settings.warehouse, read_only=True) as con:
        row = con.execute("select max(order_date) from orders").fetchall()
    return row[0][0] if row else None


def last_complete_day(settings: Settings, now: datetime | None = None) -> date:
    """Yesterday in the business time zone: the newest snapshot date a run may build."""
    now = now or datetime.now(ZoneInfo("UTC"))
    return now.astimezone(ZoneInfo(settings.time_zone)).date() - timedelta(days=1)


def as_of_problem(settings: Settings, as_of: date, *, first: date | None, now: datetime | None = None) -> str | None:
    """Why ``as_of`` cannot be built (outside [first business date, yesterday]), naming the valid range."""
    last = last_complete_day(settings, now)
    low = settings.snapshot_start or first
    if as_of > last or (low is not None and as_of < low):
        valid = f"{low.isoformat() if low else '(first order date)'} .. {last.isoformat()}"
        return (
            f"--as-of {as_of.isoformat()} is outside the snapshot dates this data allows ({valid}, business time "
            f"zone {settings.time_zone}); pick a date in that range"
            + (" or set snapshot_start earlier in the config" if low is not None and as_of < low else "")
        )
    return None


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return out


def published_rows(metadata: dict[str, Any]) -> dict[str, int]:
    """Rows of every published table, from the ``<table>_rows`` metadata of ``published_tables``."""
    return {k.removesuffix("_rows"): int(v) for k, v in sorted(metadata.items()) if k.endswith("_rows")}


def _check_counts(results: list[dg.ExecuteInProcessResult]) -> dict[str, Any]:
    """Passed / failed / warned asset checks over the runs, with the names of the ones that did not pass."""
    evals = [e for r in results for e in r.get_asset_check_evaluations()]
    warned = sorted(
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for e in evals
        if not e.passed and e.severity == dg.AssetCheckSeverity.WARN
    )
    failed = sorted(
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for e in evals
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    )
    return {"passed": sum(e.passed for e in evals), "failed": failed, "warned": warned}


def _step_seconds(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> dict[str, float]:
    """Wall seconds of every step of a run, from its event log (what each stage cost)."""
    start: dict[str, float] = {}
    out: dict[str, float] = {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            start[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in start:
            out[event.step_key] = entry.timestamp - start[event.step_key]
    return out


def _failures(result: dg.ExecuteInProcessResult) -> list[str]:
    msgs = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            err = event.event_specific_data.error if event.event_specific_data else None
            msgs.append(f"{event.step_key}: {err.message.strip() if err else 'failed'}")
    for evt in result.get_asset_check_evaluations():
        if not evt.passed and evt.severity == dg.AssetCheckSeverity.ERROR:
            msgs.append(f"check {evt.asset_key.to_user_string()}:{evt.check_name} failed")
    return msgs


def run_pipeline(
    config: str | Settings, *, as_of: date | None = None, instance: dg.DagsterInstance | None = None
) -> dict[str, Any]:
    """Ingest new files, then build the snapshot ``as_of`` (default: last order date); return a summary.

    The config is read once (here, or by the caller who passes ``Settings``) and handed to the Dagster
    definitions; runs go to the project's instance unless ``instance`` is given.
    """
    from pipelines.definitions import build_definitions

    t0 = time.perf_counter()
    settings = config if isinstance(config, Settings) else load_settings(config or None)  # before any work
    summary: dict[str, Any] = {"warehouse": str(settings.warehouse), "published_dir": str(settings.published_dir)}
    if as_of is not None and (problem := as_of_problem(settings, as_of, first=None)):
        summary.update(success=False, failures=[problem], seconds=time.perf_counter() - t0)
        return summary
    defs = build_definitions(settings=settings)
    instance = instance or project_instance(settings)

    ingest = defs.resolve_job_def("ingest_job").execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET
    )
    meta = _metadata(ingest)
    summary["ingestion"] = {
        src: {
            "files_loaded": m.get("files_loaded", 0),
            "files_rejected": m.get("files_rejected", 0),
            "rows_read": m.get("rows_read", 0),
            "rows_loaded": m.get("rows_loaded", 0),
            "rows_quarantined": m.get("rows_quarantined", 0),
            "duplicates_dropped": m.get("duplicates_dropped", 0),
            "balanced": m.get("accounting_balanced", True),
            "table_rows": m.get("dagster/row_count", 0),
            "status": m.get("status", "OK") if m.get("configured", True) else "not configured",
            "quarantine_reasons": m.get("quarantine_reasons", []),
            "problems": m.get("problems", []),
        }
        for src, m in sorted(meta.items())
    }
    summary["failures"] = _failures(ingest)
    summary["checks"] = _check_counts([ingest])
    summary["stages"] = _step_seconds(instance, ingest)
    summary["success"] = ingest.success
    if as_of is None and (latest := latest_data_date(settings)) is not None:
        as_of = min(latest, last_complete_day(settings))  # today's orders wait for tomorrow's snapshot
    problem = None if as_of is None else as_of_problem(settings, as_of, first=first_business_date(settings.warehouse))
    if ingest.success and as_of is None:
        summary["failures"].append("no orders loaded: nothing to segment (check the landing dir and the config)")
    elif ingest.success and problem:
        summary["failures"].append(problem)
    elif ingest.success:
        summary["as_of"] = as_of.isoformat()
        # Partitions start at the first business date, which the ingestion above may just have loaded.
        defs = build_definitions(settings=settings)
        snap = defs.resolve_job_def("snapshot_job").execute_in_process(
            instance=instance, partition_key=as_of.isoformat(), raise_on_error=False, run_config=QUIET
        )
        smeta = _metadata(snap)
        summary["tables"] = published_rows(smeta.get("published_tables", {}))
        summary["failures"] += _failures(snap)
        summary["checks"] = _check_counts([ingest, snap])
        summary["stages"] |= _step_seconds(instance, snap)
        catalog = settings.published_dir / "catalog.duckdb"
        if catalog.exists():
            summary["catalog"] = str(catalog)
    summary["success"] = ingest.success and not summary["failures"]
    summary["seconds"] = time.perf_counter() - t0
    return summary
