"""Whole-pipeline crash tests: kill -9 a real ``segments run`` at every phase, then re-run.

After each kill ``current/`` must be one consistent snapshot set (the previous date or the new one,
never a mix) and a re-run must publish what an uninterrupted run publishes. Each phase costs two runs
(~1 min), so these carry the ``crash`` marker: ``make test-crash`` (CI runs it after ``make test``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import write_project_config

from data_contracts.contracts import RUN_OUTPUTS, SNAPSHOT_OUTPUTS
from publishing.atomic import current_set
from segments.sample_data import generate

pytestmark = pytest.mark.crash

REPO = Path(__file__).resolve().parents[1]
HELPER = Path(__file__).resolve().parent / "crash_run.py"
PREVIOUS, AS_OF = date(2026, 11, 20), date(2026, 11, 21)
PHASES = [
    "ingest",
    "checks",
    "segmentation",
    "publish_history",
    "publish_set",
    "publish_renames",
    "publish_place",
    "publish_switch",
    "publish_prune",
    "catalog",
]
# Columns that name the run or its wall-clock time: they differ between any two runs.
RUN_COLUMNS = {"data_quality": ["run_id", "ingested_at"], "quarantine": ["run_id", "quarantined_at"]}
# "in the future: after the ingest run time 2026-11-30 22:49:00 UTC": the reason names the run's time.
RUN_TIME = re.compile(r"run time \d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?( UTC)?")


def _cli(root: Path, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "SEGMENTS_CRASH_AT")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env["DAGSTER_HOME"] = str(root / "dagster_home")
    (root / "dagster_home").mkdir(exist_ok=True)
    if crash_at:
        env["SEGMENTS_CRASH_AT"] = crash_at
    cmd = [sys.executable, str(HELPER), "--config", str(root / "segments.yaml"), *args]
    return subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Snapshot 2026-11-20 published; the files of 2026-11-21 waiting in ``held/`` for the run under test."""
    root = tmp_path_factory.mktemp("crash_base")
    generate(root / "work" / "landing", customers=200, days=120, end_date=AS_OF, seed=11, defects=True, daily_days=3)
    for path in sorted((root / "work" / "landing").rglob(f"*{AS_OF.isoformat()}*")):
        dest = root / "held" / path.relative_to(root / "work" / "landing")
        dest.parent.mkdir(parents=True, exist_ok=True)
        path.rename(dest)
    write_project_config(root / "work")
    first = _cli(root / "work", "run", "--as-of", PREVIOUS.isoformat())
    assert first.returncode == 0, first.stdout + first.stderr
    return root


def _prepare(base: Path, dest: Path) -> Path:
    """A copy of the base project with the new day's files delivered."""
    shutil.copytree(base / "work", dest, symlinks=True)
    shutil.rmtree(dest / "dagster_home", ignore_errors=True)
    shutil.copytree(base / "held", dest / "landing", dirs_exist_ok=True)
    return dest


def published_content(root: Path) -> dict[str, object]:
    """What readers get: every current table and history file; run ids and run times left out."""
    pub = root / "published"
    out: dict[str, object] = {}
    for path in sorted((pub / "current").glob("*.parquet")):
        name = path.stem
        if name in RUN_COLUMNS:
            frame = pl.read_parquet(path).drop(RUN_COLUMNS[name])
            rows = (RUN_TIME.sub("run time <run>", str(row)) for row in frame.rows())
            out[f"current/{name}"] = sorted(rows)
        else:
            out[f"current/{name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    for path in sorted(pub.glob("*/snapshot_date=*/*.parquet")):
        out[path.relative_to(pub).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def assert_one_snapshot(root: Path) -> date:
    """current/ is one complete set: files match the manifest, every snapshot_date column agrees."""
    pub = root / "published"
    snap = current_set(pub)
    assert snap is not None, "current/ is missing"
    assert snap.snapshot_date in (PREVIOUS, AS_OF)
    for name, entry in snap.tables.items():
        path = pub / "current" / f"{name}.parquet"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], name
        table = pq.read_table(path)
        if "snapshot_date" in table.column_names:
            assert set(table["snapshot_date"].to_pylist()) <= {snap.snapshot_date}, name
    assert sorted(snap.tables) == sorted((*SNAPSHOT_OUTPUTS, *RUN_OUTPUTS))  # the whole set, every table
    return snap.snapshot_date


@pytest.fixture(scope="module")
def clean(base: Path) -> dict[str, object]:
    """What an uninterrupted run of the new day publishes."""
    root = _prepare(base, base / "clean")
    run = _cli(root, "run")
    assert run.returncode == 0, run.stdout + run.stderr
    assert assert_one_snapshot(root) == AS_OF
    return published_content(root)


@pytest.mark.parametrize("phase", PHASES)
def test_kill_9_at_any_phase_leaves_one_snapshot_and_the_rerun_matches_a_clean_run(
    base: Path, clean: dict[str, object], tmp_path: Path, phase: str
) -> None:
    root = _prepare(base, tmp_path / "project")
    killed = _cli(root, "run", crash_at=phase)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr

    shown = assert_one_snapshot(root)
    expected_new = phase in ("publish_prune", "catalog")  # killed after the switch
    assert shown == (AS_OF if expected_new else PREVIOUS)

    rerun = _cli(root, "run")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert assert_one_snapshot(root) == AS_OF
    assert published_content(root) == clean
    leftovers = [p for p in (root / "published").rglob("*.tmp*")]
    assert leftovers == []
