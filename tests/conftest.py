"""Shared fixtures: a temporary landing zone, a config built from a dict, and a warehouse in tmp_path.

Also the one config of a project over the sample data (``segments.sample_data.generate``), which the
end-to-end tests import as ``from conftest import write_project_config`` (tests/ is on sys.path).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from segments.config import Settings, settings_from_dict

# `make test` runs the suite on pytest-xdist workers (execnet), whose __main__ has neither __spec__ nor
# __file__. pyspark's connect package (imported by Great Expectations) then believes it is running its own
# doctests and calls sys.exit(0) on import. A worker's main module gets a file name, as any script has.
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "<pytest-xdist worker>"

# The sources of the sample data: its timestamps are local times in the business time zone.
SAMPLE_SOURCES: dict[str, dict[str, str]] = {
    "orders": {"glob": "orders/*", "timestamp_format": "%Y-%m-%d %H:%M:%S"},
    "browsing": {"glob": "browsing/*"},
    "feedback": {"glob": "feedback/*", "timestamp_format": "%Y-%m-%d %H:%M:%S"},
    "customers": {"glob": "customers/*", "timestamp_format": "%Y-%m-%d %H:%M:%S"},
}


def project_config(**extra: Any) -> dict[str, Any]:
    """A config over sample data in ``landing/`` of the project folder, warehouse and published files
    beside it, time zone Asia/Shanghai; keywords add or replace top-level keys."""
    return {
        "landing_dir": "landing",
        "warehouse": "warehouse.duckdb",
        "published_dir": "published",
        "time_zone": "Asia/Shanghai",
        "sources": copy.deepcopy(SAMPLE_SOURCES),
        **extra,
    }


def write_project_config(root: Path, **extra: Any) -> Path:
    """``project_config(**extra)`` written to ``root/segments.yaml``; returns its path."""
    path = root / "segments.yaml"
    path.write_text(yaml.safe_dump(project_config(**extra), allow_unicode=True), encoding="utf-8")
    return path


def run_script_json(code: str, *args: str, timeout: int = 120) -> Any:
    """Run ``code`` in a fresh interpreter from the project root (what a new process imports) with ``args``;
    it must exit 0, and its last line of output is read as JSON."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """An empty landing folder inside tmp_path (never the repo tree)."""
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def make_settings(tmp_path: Path, landing: Path) -> Callable[..., Settings]:
    """Build validated Settings whose paths all live in tmp_path.

    ``make_settings(orders={"glob": "orders/*", ...}, time_zone="UTC")``: each keyword naming an input
    source becomes that source's config; the other keywords are top-level keys. ``orders`` defaults to
    ``{"glob": "orders/*"}`` because the config requires it.
    """

    def _make(**kwargs: Any) -> Settings:
        sources = {k: kwargs.pop(k) for k in ("orders", "browsing", "feedback", "customers") if k in kwargs}
        sources.setdefault("orders", {"glob": "orders/*"})
        raw = {
            "landing_dir": str(landing),
            "warehouse": str(tmp_path / "warehouse.duckdb"),
            "published_dir": str(tmp_path / "published"),
            "time_zone": "UTC",
            "sources": sources,
            **kwargs,
        }
        return settings_from_dict(raw, base_dir=tmp_path)

    return _make


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh in-memory warehouse, set up like ``segments.warehouse.connect`` (session time zone UTC)."""
    connection = duckdb.connect()
    connection.execute("set TimeZone = 'UTC'")
    yield connection
    connection.close()
