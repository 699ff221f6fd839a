"""One measured pipeline run, in the process that calls it (the harness starts a fresh child per run).

The run is what ``segments run`` does: ``pipelines.runner.run_pipeline`` through Dagster's in-process
executor (ingest job, then the snapshot job for ``as_of``), on an ephemeral Dagster instance whose event log
gives the bounds of every step. Stages: ``imports`` (the pipeline's import cost, paid by every fresh
process), one ``ingest <source>`` per ingestion asset, ``input checks``, then one stage per other asset group
(``features``, ``segmentation``, ``publish``), ``output checks``, and ``orchestration`` (everything in the
runner that is not a step: run setup, event handling, the runner's own queries).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import re
import resource
import time
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

from probe import Sampler, Stage, dagster_steps, peak_rss_mb

PROJECT_PACKAGES = ("ingestion", "features", "models", "publishing", "data_contracts", "assets", "segments")


def _gaps(outer: tuple[float, float], inner: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of ``outer`` not covered by the (sorted, non-overlapping) ``inner`` intervals."""
    out, cursor = [], outer[0]
    for a, b in sorted(inner):
        if a > cursor:
            out.append((cursor, a))
        cursor = max(cursor, b)
    if outer[1] > cursor:
        out.append((cursor, outer[1]))
    return out


def _summary(summary: dict[str, Any]) -> dict[str, Any]:
    """What the runner reported, minus the per-step seconds the harness measures itself."""
    keep = ("success", "as_of", "failures", "ingestion", "tables", "checks")
    return {k: summary[k] for k in keep if k in summary}


class TimedConnection:
    """A DuckDB connection that records the wall seconds of every ``execute`` (profiling only).

    ``execute`` runs a statement to completion, so its time is the statement's; ``sql`` builds a lazy
    relation whose cost lands in whatever consumes it and is not attributed here.
    """

    def __init__(self, con: Any, log: dict[str, list[float]]) -> None:
        self._con, self._log = con, log

    def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        """Run and time one statement; returns this wrapper when DuckDB returns the connection."""
        t = time.perf_counter()
        out = self._con.execute(query, *args, **kwargs)
        self._log[re.sub(r"\s+", " ", query).strip()[:160]].append(time.perf_counter() - t)
        return self if out is self._con else out

    def __enter__(self) -> TimedConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self._con.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def _time_statements() -> dict[str, list[float]]:
    """Make every ``duckdb.connect`` of this process return a TimedConnection; returns the shared log."""
    import duckdb

    log: dict[str, list[float]] = defaultdict(list)
    real = duckdb.connect

    def connect(*args: Any, **kwargs: Any) -> TimedConnection:
        return TimedConnection(real(*args, **kwargs), log)

    duckdb.connect = connect
    return log


def _top_statements(log: dict[str, list[float]], n: int = 20) -> list[dict[str, Any]]:
    """The statements (first 160 characters) that took the most wall time in total."""
    rows = [{"sql": k, "calls": len(v), "seconds": round(sum(v), 3)} for k, v in log.items()]
    return sorted(rows, key=lambda r: -r["seconds"])[:n]


def _profile_text(profile: cProfile.Profile, path: Path) -> list[str]:
    """Save the profile and return the top project functions by cumulative time."""
    profile.dump_stats(str(path))
    buf = io.StringIO()
    stats = pstats.Stats(profile, stream=buf).sort_stats("cumulative")
    stats.print_stats("|".join(f"/{p}/" for p in PROJECT_PACKAGES), 30)
    return buf.getvalue().splitlines()


def measured_run(config: Path, as_of: date, *, profile_path: Path | None = None) -> dict[str, Any]:
    """Run the pipeline once for ``as_of`` and return per-stage wall, CPU and peak RSS plus the run summary."""
    t_start = time.time()
    statements = _time_statements() if profile_path else None
    with Sampler() as sampler:
        import dagster as dg

        from pipelines.definitions import build_definitions
        from pipelines.runner import run_pipeline

        t_imported = time.time()
        instance = dg.DagsterInstance.ephemeral()
        profile = cProfile.Profile() if profile_path else None
        if profile:
            profile.enable()
        summary = run_pipeline(str(config), as_of=as_of, instance=instance)
        if profile:
            profile.disable()
        t_end = time.time()
    steps = dagster_steps(instance, build_definitions(str(config)).resolve_asset_graph())
    stages: dict[str, Stage] = {"imports": Stage("imports", [(t_start, t_imported)])}
    for step in steps:
        stage = stages.setdefault(step["stage"], Stage(step["stage"]))
        stage.intervals.append((step["start"], step["end"]))
        stage.steps.append(step["step"])
    covered = [(s["start"], s["end"]) for s in steps]
    stages["orchestration"] = Stage("orchestration", _gaps((t_imported, t_end), covered))
    measured = [stage.measure(sampler) for stage in stages.values()]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "total": {
            "stage": "total",
            "wall_s": round(t_end - t_start, 3),
            "cpu_s": round(sampler.cpu_at(t_end) - sampler.cpu_at(t_start), 3),
            # the process's own high-water mark, or more when child processes (the Spark JVM) were sampled higher
            "peak_rss_mb": round(max(peak_rss_mb(), max(sampler.rss, default=0) / 2**20)),
            "children_cpu_s": round(children.ru_utime + children.ru_stime, 3),
        },
        "stages": measured,
        "steps": [
            {
                "step": s["step"],
                "stage": s["stage"],
                "job": s["run"],
                "status": s["status"],
                "wall_s": round(s["end"] - s["start"], 3),
                "cpu_s": round(sampler.cpu_at(s["end"]) - sampler.cpu_at(s["start"]), 3),
                "peak_rss_mb": round(sampler.peak_between(s["start"], s["end"]) / 2**20),
            }
            for s in steps
        ],
        "samples": len(sampler.t),
        "summary": _summary(summary),
        "profiled": profile is not None,
    }
    if profile and profile_path:
        result["profile"] = {
            "path": str(profile_path),
            "top_cumulative": _profile_text(profile, profile_path),
            "top_statements": _top_statements(statements or {}),
        }
    return result
