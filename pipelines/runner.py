"""Run the pipeline in-process through Dagster (what ``segments run`` does) and summarise it."""

from __future__ import annotations

import os
import time
from datetime import date
from typing import Any

import dagster as dg

from segments.config import load_settings
from segments.warehouse import connect

# The CLI prints its own summary; Dagster's console logger only shows warnings and errors.
QUIET: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _instance() -> dg.DagsterInstance:
    """The persistent instance when DAGSTER_HOME is set (runs show in the UI), else an ephemeral one."""
    home = os.environ.get("DAGSTER_HOME")
    if home and os.path.isdir(home):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def latest_data_date(config_path: str) -> date | None:
    """The last local order date in the warehouse (the default snapshot date)."""
    settings = load_settings(config_path or None)
    if not settings.warehouse.exists():
        return None
    with connect(settings.warehouse, read_only=True) as con:
        row = con.execute("select max(order_date) from orders").fetchall()
    return row[0][0] if row else None


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return out


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
    config_path: str, *, as_of: date | None = None, instance: dg.DagsterInstance | None = None
) -> dict[str, Any]:
    """Ingest new files, then build the snapshot ``as_of`` (default: last order date); return a summary."""
    from pipelines.definitions import build_definitions

    t0 = time.perf_counter()
    settings = load_settings(config_path or None)  # validate before any work
    defs = build_definitions(config_path)
    instance = instance or _instance()
    summary: dict[str, Any] = {"warehouse": str(settings.warehouse), "published_dir": str(settings.published_dir)}

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
            "status": m.get("status", "OK"),
            "quarantine_reasons": m.get("quarantine_reasons", []),
            "problems": m.get("problems", []),
        }
        for src, m in sorted(meta.items())
    }
    summary["failures"] = _failures(ingest)
    summary["checks"] = _check_counts([ingest])
    summary["stages"] = _step_seconds(instance, ingest)
    summary["success"] = ingest.success
    as_of = as_of or latest_data_date(config_path)
    if ingest.success and as_of is None:
        summary["failures"].append("no orders loaded: nothing to segment (check the landing dir and the config)")
    elif ingest.success and as_of < settings.snapshot_start:
        summary["failures"].append(
            f"snapshot date {as_of} is before snapshot_start {settings.snapshot_start} in the config: "
            "set snapshot_start earlier to build it"
        )
    elif ingest.success:
        summary["as_of"] = as_of.isoformat()
        snap = defs.resolve_job_def("snapshot_job").execute_in_process(
            instance=instance, partition_key=as_of.isoformat(), raise_on_error=False, run_config=QUIET
        )
        smeta = _metadata(snap)
        summary["tables"] = {k: v["dagster/row_count"] for k, v in sorted(smeta.items()) if "dagster/row_count" in v}
        summary["failures"] += _failures(snap)
        summary["checks"] = _check_counts([ingest, snap])
        summary["stages"] |= _step_seconds(instance, snap)
        catalog = settings.published_dir / "catalog.duckdb"
        if catalog.exists():
            summary["catalog"] = str(catalog)
    summary["success"] = ingest.success and not summary["failures"]
    summary["seconds"] = time.perf_counter() - t0
    return summary
