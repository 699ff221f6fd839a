"""The pipeline as operators meet it: the real Dagster webserver, and two runs started at once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest
from test_pipeline import AS_OF, NO_PREDICTION, _digest, write_config

from segments.sample_data import generate

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _env(cfg: Path, home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env |= {"SEGMENTS_CONFIG": str(cfg), "DAGSTER_DISABLE_TELEMETRY": "1", "PYTHONPATH": str(REPO)}
    if home is not None:
        env["DAGSTER_HOME"] = str(home)
    return env


@pytest.fixture(scope="module")
def small_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rt-sample")
    generate(root / "landing", customers=200, days=400, end_date=AS_OF, seed=11, defects=True, daily_days=3)
    return root / "landing"


def test_two_runs_started_at_once_both_succeed_and_leave_tables_intact(tmp_path: Path, small_landing: Path) -> None:
    shutil.copytree(small_landing, tmp_path / "landing")
    cfg = write_config(tmp_path, segmentation=NO_PREDICTION)
    cmd = [str(BIN / "segments"), "--config", str(cfg), "run", "--as-of", AS_OF.isoformat()]
    procs = [
        subprocess.Popen(cmd, env=_env(cfg), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=400)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-3000:]
        assert "segments run succeeded" in out
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        # Every file was loaded exactly once although both runs saw it as new: the second waited.
        dupes = con.execute(
            "select count(*) from (select order_id, line_id from orders group by all having count(*) > 1)"
        ).fetchall()[0][0]
        accounted = con.execute(
            "select count(*) from ingest_manifest where "
            "rows_read <> rows_loaded + rows_quarantined + duplicates_dropped"
        ).fetchall()[0][0]
    assert dupes == 0 and accounted == 0
    concurrent = _digest(tmp_path / "published")
    # A third, lone run over the same input publishes byte-identical tables.
    single = subprocess.run(cmd, env=_env(cfg), capture_output=True, text=True, timeout=400)
    assert single.returncode == 0, single.stdout[-3000:]
    after = _digest(tmp_path / "published")
    concurrent.pop("current/data_quality.parquet"), after.pop("current/data_quality.parquet")
    assert after == concurrent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_real_webserver_serves_the_asset_graph_and_checks(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "pipelines" / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    proc = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")],
        cwd=REPO,
        env=_env(cfg, home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else "webserver exited"
            assert time.monotonic() < deadline, "webserver did not come up within 180 s"
            time.sleep(1)
        data = {}
        while time.monotonic() < deadline:  # the code location loads after the server answers
            data = _graphql(
                port,
                "{ assetNodes { assetKey { path } groupName "
                "assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }",
            )
            if data.get("data", {}).get("assetNodes"):
                break
            time.sleep(1)
        nodes = {"/".join(n["assetKey"]["path"]): n for n in data["data"]["assetNodes"]}
        assert {"orders", "browsing", "customer_features", "customer_segments", "published_tables"} <= set(nodes)
        assert nodes["orders"]["groupName"] == "ingestion"
        checks = {c["name"]: c["blocking"] for c in nodes["customer_segments"]["assetChecksOrError"]["checks"]}
        assert checks.get("one_row_per_customer") is True
        jobs = _graphql(
            port,
            "{ repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name } "
            "schedules { name } sensors { name } } } } }",
        )
        repo = jobs["data"]["repositoriesOrError"]["nodes"][0]
        assert {"nightly_job", "ingest_job", "snapshot_job"} <= {j["name"] for j in repo["jobs"]}
        assert [s["name"] for s in repo["schedules"]] == ["nightly_segments"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode is not None
