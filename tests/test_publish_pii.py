"""PII never leaves the warehouse: a full run with planted e-mails, phones and names in every source.

Planted in good customer rows (the PII columns), in bad rows of every source (a value that breaks a
rule, an unparseable line, an unmapped extra column) and in a header-less customers file, then every
published file, every catalog view, the report, a CRM export and the Dagster event log of the run are
searched for them (PRODUCT.md §7: PII columns never reach published tables, quarantine values, error
messages or logs).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
from conftest import write_project_config

from models.registry import config_registry
from pipelines.runner import run_pipeline
from publishing.catalog import connect_catalog
from publishing.exports import export_segment
from segments.sample_data import generate

AS_OF = date(2026, 11, 21)
CANARIES = {
    "customers good row": ["leak.good@pii-canary.test", "13900000001", "钱多多"],
    "customers bad birth_year": ["leak.badrow@pii-canary.test", "13900000002", "孙悟空"],
    "customers unparseable line": ["leak.quote@pii-canary.test", "13900000003", "猪八戒"],
    "customers header-less file": ["leak.header@pii-canary.test", "13900000004", "沙和尚"],
    "orders bad amount, receiver phone": ["13900000011", "leak.orders@pii-canary.test"],
    "orders unparseable line": ["13900000012", "leak.orders2@pii-canary.test"],
    "feedback bad rating, comment": ["leak.feedback@pii-canary.test", "13900000021"],
    "feedback unparseable line": ["leak.feedback2@pii-canary.test", "13900000022"],
    "browsing bad timestamp, extra field": ["leak.browsing@pii-canary.test", "13900000031"],
    "browsing line that is no JSON": ["leak.browsing2@pii-canary.test", "13900000032"],
}


def _plant(landing: Path) -> None:
    (landing / "customers" / "customers_pii.csv").write_text(
        "customer_id,signup_ts,region,city,source_channel,birth_year,gender,email,phone,name\n"
        "C9000001,2026-01-01 10:00:00,华北,北京,organic,1990,F,leak.good@pii-canary.test,13900000001,钱多多\n"
        "C9000002,2026-01-01 10:00:00,华北,北京,organic,notayear,F,leak.badrow@pii-canary.test,13900000002,孙悟空\n"
        'C9000003,2026-01-01 10:00:00,华北,"北京,organic,1990,F,leak.quote@pii-canary.test,13900000003,猪八戒\n',
        encoding="utf-8",
    )
    (landing / "customers" / "customers_noheader.csv").write_text(
        "C9000004,2026-01-01 10:00:00,华北,北京,organic,1991,M,leak.header@pii-canary.test,13900000004,沙和尚\n",
        encoding="utf-8",
    )
    head = "order_id,line_id,customer_id,order_ts,amount,quantity,unit_price,status,channel,store_id,category,"
    (landing / "orders" / "orders_pii.csv").write_text(
        head + "product_id,currency,receiver_phone,receiver_email\n"
        "O9000001,1,C0000001,2026-11-20 10:00:00,notanumber,1,1.00,completed,online,,home,P1,CNY,"
        "13900000011,leak.orders@pii-canary.test\n"
        'O9000002,1,C0000001,"2026-11-20 10:00:00,5.00,1,5.00,completed,online,,home,P1,CNY,'
        "13900000012,leak.orders2@pii-canary.test\n",
        encoding="utf-8",
    )
    (landing / "feedback" / "feedback_pii.csv").write_text(
        "feedback_id,customer_id,submitted_ts,kind,rating,nps,comment\n"
        'F9000001,C0000001,2026-11-20 10:00:00,review,9,,"call 13900000021 or leak.feedback@pii-canary.test"\n'
        'F9000002,C0000001,2026-11-20 10:00:00,review,"4,,mail leak.feedback2@pii-canary.test 13900000022\n',
        encoding="utf-8",
    )
    lines = [
        {
            "customer_id": "C0000001",
            "session_id": "s_pii_1",
            "event_ts": "not a time",
            "event_type": "page_view",
            "email": "leak.browsing@pii-canary.test",
            "phone": "13900000031",
        },
    ]
    (landing / "browsing" / "browsing_pii.jsonl").write_text(
        "\n".join(json.dumps(x) for x in lines)
        + '\n{"customer_id": "C0000001", "note": "leak.browsing2@pii-canary.test 13900000032"\n',
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def pii_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dg.DagsterInstance, dict]:
    root = tmp_path_factory.mktemp("pii")
    generate(root / "landing", customers=150, days=90, end_date=AS_OF, seed=5, defects=True, daily_days=3)
    _plant(root / "landing")
    write_project_config(root)
    instance = dg.DagsterInstance.ephemeral()
    summary = run_pipeline(str(root / "segments.yaml"), as_of=AS_OF, instance=instance)
    assert summary["success"], summary["failures"]
    pub = root / "published"
    for by in ("rfm_segment", "lifecycle_stage", "value_tier"):
        with connect_catalog(pub / "catalog.duckdb") as con:
            first = con.execute(f'select min("{by}") from customer_segments').fetchall()[0][0]
        export_segment(pub, config_registry(), by=by, segment=first, encoding="utf-8-sig")
    return root, instance, summary


def _published_texts(pub: Path) -> dict[str, str]:
    """Every published file as text: Parquet decoded row by row, everything else as UTF-8."""
    files = [p for p in pub.rglob("*") if p.is_file()] + list((pub / "current").glob("*"))
    out: dict[str, str] = {}
    for path in sorted(set(files)):
        rel = path.relative_to(pub).as_posix()
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            out[rel] = json.dumps(table.to_pylist(), default=str, ensure_ascii=False) + str(table.schema.metadata)
        else:
            out[rel] = path.read_bytes().decode("utf-8", errors="replace")
    return out


def _catalog_texts(pub: Path) -> dict[str, str]:
    with connect_catalog(pub / "catalog.duckdb") as con:
        views = [r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()]
        return {f"view {v}": str(con.execute(f'select * from "{v}"').fetchall()) for v in views}


def _event_log_texts(instance: dg.DagsterInstance) -> dict[str, str]:
    return {
        f"run {run.run_id[:8]} ({run.job_name})": "\n".join(str(e) for e in instance.all_logs(run.run_id))
        for run in instance.get_runs()
    }


def _leaks(texts: dict[str, str]) -> list[str]:
    found = []
    for where, text in texts.items():
        low = text.lower()
        for planted, needles in CANARIES.items():
            for needle in needles:
                if needle.lower() in low:
                    found.append(f"{where}: {needle!r} (planted in {planted})")
    return found


def test_the_planted_pii_is_really_in_the_landing_files_and_the_run_saw_them(pii_run) -> None:
    root, instance, summary = pii_run
    assert summary["ingestion"]["customers"]["rows_read"] >= 150
    assert len(_event_log_texts(instance)) == 2  # ingest_job and snapshot_job
    assert _leaks({"landing": "".join(p.read_text("utf-8") for p in root.glob("landing/*/*_pii*"))})


def test_no_published_file_report_or_export_contains_planted_pii(pii_run) -> None:
    root, _, _ = pii_run
    texts = _published_texts(root / "published")
    assert any(k.startswith("exports/") for k in texts) and "current/segment_report.html" in texts
    assert _leaks(texts) == []


def test_no_catalog_view_contains_planted_pii(pii_run) -> None:
    root, _, _ = pii_run
    assert _leaks(_catalog_texts(root / "published")) == []


def test_no_dagster_event_log_contains_planted_pii(pii_run) -> None:
    _, instance, _ = pii_run
    assert _leaks(_event_log_texts(instance)) == []
