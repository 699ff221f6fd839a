"""Measuring tools of the benchmark harness: a CPU/RSS sampler, stage attribution, machine and version facts.

The pipeline runs in one process (Dagster's in-process executor, as ``segments run``), so per-stage CPU and
peak memory come from a thread that samples the process's CPU time (all threads, DuckDB's included) and
resident set size every ``interval_s``, plus those of its live child processes (the Spark JVM of
``engine: spark`` runs as one); the wall-clock bounds of each step come from Dagster's event log.
A stage's CPU is the sampled CPU clock interpolated at its bounds, its peak the highest RSS sampled inside
them (a spike shorter than the interval can be missed; the process's own high-water mark is reported too).
"""

from __future__ import annotations

import bisect
import importlib.util
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
VERSIONED = ("duckdb", "polars", "pyarrow", "dagster", "great-expectations", "scikit-learn", "numpy", "pymc-marketing")
BYTECODE_PACKAGES = ("dagster", "great_expectations", "polars", "duckdb", "sklearn", "pydantic", "sqlalchemy")


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE


def _descendants(pid: int) -> list[int]:
    """Live descendant process ids of ``pid`` (via /proc/<pid>/task/*/children; empty where unsupported)."""
    out: list[int] = []
    stack = [pid]
    while stack:
        parent = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", "rb") as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            out += kids
            stack += kids
    return out


def child_usage(seen: dict[int, float], pids: list[int] | None = None) -> tuple[float, int]:
    """(CPU seconds of every child process seen so far, RSS bytes of the live ones among ``pids``, default:
    all descendants). ``seen`` keeps each child's last CPU reading, so a child that exits keeps counting."""
    rss = 0
    for pid in _descendants(os.getpid()) if pids is None else pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        seen[pid] = max(seen.get(pid, 0.0), (int(fields[11]) + int(fields[12])) / TICK)  # utime + stime
        rss += int(fields[21]) * PAGE
    return sum(seen.values()), rss


def peak_rss_mb() -> float:
    """High-water mark of this process's resident set size (the kernel's own, not sampled)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Sampler:
    """Samples (wall time, CPU seconds, RSS bytes) of this process and its children on a daemon thread."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.t: list[float] = []
        self.cpu: list[float] = []
        self.rss: list[int] = []
        self._children: dict[int, float] = {}
        self._pids: list[int] = []
        self._samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)

    def sample(self) -> None:
        """Take one sample now (also called at the bounds the harness cares about)."""
        t, cpu, rss = time.time(), time.process_time(), rss_bytes()
        if self._samples % 25 == 0:  # look for new children twice a second; read the known ones every time
            self._pids = _descendants(os.getpid())
        self._samples += 1
        child_cpu, child_rss = child_usage(self._children, self._pids)
        self.t.append(t)
        self.cpu.append(cpu + child_cpu)
        self.rss.append(rss + child_rss)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def __enter__(self) -> Sampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def cpu_at(self, t: float) -> float:
        """Process CPU seconds at wall time ``t``, interpolated between the samples around it."""
        i = bisect.bisect_left(self.t, t)
        if i <= 0:
            return self.cpu[0]
        if i >= len(self.t):
            return self.cpu[-1]
        t0, t1 = self.t[i - 1], self.t[i]
        share = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
        return self.cpu[i - 1] + share * (self.cpu[i] - self.cpu[i - 1])

    def peak_between(self, a: float, b: float) -> int:
        """Highest sampled RSS in [a, b], including the samples just around the bounds."""
        i = max(bisect.bisect_left(self.t, a) - 1, 0)
        j = min(bisect.bisect_right(self.t, b) + 1, len(self.t))
        return max(self.rss[i:j], default=0)

    def rss_at(self, t: float) -> int:
        """RSS of the last sample at or before ``t``."""
        i = max(bisect.bisect_right(self.t, t) - 1, 0)
        return self.rss[i]


@dataclass
class Stage:
    """One reported stage: the wall-clock intervals it covered and what they cost."""

    name: str
    intervals: list[tuple[float, float]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    def measure(self, s: Sampler) -> dict[str, Any]:
        """Wall, CPU, peak RSS and RSS at the start of the stage, from the sampler."""
        wall = sum(b - a for a, b in self.intervals)
        cpu = sum(s.cpu_at(b) - s.cpu_at(a) for a, b in self.intervals)
        peak = max((s.peak_between(a, b) for a, b in self.intervals), default=0)
        start_rss = s.rss_at(self.intervals[0][0]) if self.intervals else 0
        return {
            "stage": self.name,
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "peak_rss_mb": round(peak / 2**20),
            "start_rss_mb": round(start_rss / 2**20),
            "steps": self.steps,
        }


def stage_name(kind: str, group: str, key: str) -> str:
    """Report stage of a Dagster step from what it did: materialized (kind=asset) or checked assets of ``group``.

    Ingestion is reported per source; checks on ingested tables are the input checks; every other check
    is an output check; other assets are reported by their group (features, segmentation, publish, ...).
    """
    if kind == "check":
        return "input checks" if group == "ingestion" else "output checks"
    if group == "ingestion":
        return f"ingest {key}"
    return group or key


def dagster_steps(instance: Any, graph: Any) -> list[dict[str, Any]]:
    """Every step of every run in ``instance``: key, stage, start and end wall time, status, from the event log."""
    steps: list[dict[str, Any]] = []
    for run in instance.get_runs():
        open_steps: dict[str, dict[str, Any]] = {}
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or event.step_key is None:
                continue
            kind = event.event_type_value
            if kind == "STEP_START":
                open_steps[event.step_key] = {"step": event.step_key, "run": run.job_name, "start": entry.timestamp}
                continue
            step = open_steps.get(event.step_key)
            if step is None:
                continue
            if kind == "ASSET_MATERIALIZATION":
                step.setdefault("assets", []).append(event.asset_key)
            elif kind == "ASSET_CHECK_EVALUATION":
                step.setdefault("checked", []).append(event.event_specific_data.asset_key)
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
                step["end"] = entry.timestamp
                step["status"] = "success" if kind == "STEP_SUCCESS" else "failure"
                steps.append(step)
        for step in open_steps.values():
            step.setdefault("end", step["start"])
            step.setdefault("status", "unfinished")
            if step not in steps:
                steps.append(step)
    for step in steps:
        keys = step.pop("checked", None)
        kind = "check" if keys else "asset"
        keys = keys or step.pop("assets", None) or []
        step.pop("assets", None)
        group = graph.get(keys[0]).group_name if keys and graph.has(keys[0]) else ""
        step["stage"] = stage_name(kind, group, keys[0].to_user_string() if keys else step["step"])
    return sorted(steps, key=lambda s: s["start"])


def machine() -> dict[str, Any]:
    """Cores, memory, load and platform of the machine the numbers were taken on."""
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gb": round(mem_kb / 2**20, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def versions() -> dict[str, str]:
    """Python and the versions of the libraries that do the work."""
    out = {"python": platform.python_version()}
    for dist in VERSIONED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def bytecode() -> dict[str, Any]:
    """Whether Python writes bytecode and how many modules of the heavy packages have a compiled ``.pyc``."""
    per_package = {}
    for name in BYTECODE_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        sources = [p for loc in spec.submodule_search_locations for p in Path(loc).rglob("*.py")]
        compiled = sum(Path(importlib.util.cache_from_source(str(p))).exists() for p in sources)
        per_package[name] = {"modules": len(sources), "compiled": compiled}
    return {
        "dont_write_bytecode": bool(sys.flags.dont_write_bytecode),
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
        "packages": per_package,
        "all_compiled": all(v["modules"] == v["compiled"] for v in per_package.values()),
    }


def git_commit(repo: Path) -> dict[str, Any]:
    """The commit the benchmark ran and whether the tree had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }
