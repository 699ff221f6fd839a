"""PII scan: distinctive e-mails and phones planted in bad rows of every source never reach the warehouse
``quarantine`` / ``ingest_log`` text, nor anything the ingestion assets write to a real Dagster instance."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb

from assets.ingestion import ingestion_assets
from assets.resources import SegmentsResource, SparkResource

try:
    from tests.test_ingest import csv_text, write
except ImportError:  # pragma: no cover - run from inside tests/
    from test_ingest import csv_text, write

PLANTED = [
    "zed.one@pii-canary.test",
    "zed.two@pii-canary.test",
    "zed.three@pii-canary.test",
    "zed.four@pii-canary.test",
    "zed.five@pii-canary.test",
    "zed.six@pii-canary.test",
    "+86 139 1111 2222",
    "13911113333",
    "Zed Canaryname",
]
TS = "2026-11-21 00:30:00"


def _plant(landing: Path) -> None:
    e1, e2, e3, e4, e5, e6, p1, p2, name = PLANTED
    # customers: an unparseable line, a header-less file, a rule break next to PII, a nested JSON value.
    write(
        landing,
        "customers/a.csv",
        csv_text(
            "customer_id,email,phone,name,birth_year",
            "c1,ok@example.com,1,Ok,1990",
            f"c2,{e1},{p1},{name},1990,surplus",
            f"c3,{e2},{p2},x,1800",
        ),
    )
    write(landing, "customers/b.csv", csv_text(f"c4,{e3},{p1},{name}"))
    write(landing, "customers/c.jsonl", json.dumps({"customer_id": "c5", "email": {"work": e4}}) + "\n")
    # orders: an export with receiver columns, one line broken; a JSON line that is not JSON.
    write(
        landing,
        "orders/a.csv",
        csv_text(
            "order_id,customer_id,order_ts,amount,receiver_phone,receiver_email",
            f"o1,c1,{TS},10,{p2},{e5}",
            f'o2,c1,{TS},"10,{p1},{e5}',
            f"o3,c1,{TS},abc,{p1},{e5}",
        ),
    )
    write(landing, "orders/b.jsonl", f'{{"order_id": "o4", "customer_id": "c1", "note": "{e6}", \n')
    # browsing and feedback: broken lines carrying contact data in free text.
    write(
        landing,
        "browsing/a.csv",
        csv_text("customer_id,session_id,event_ts,event_type,search_text", f"c1,s1,{TS},search,{e6},{p2}"),
    )
    write(
        landing,
        "feedback/a.csv",
        csv_text(
            "feedback_id,customer_id,submitted_ts,kind,rating,comment",
            f'f1,c1,{TS},complaint,1,"call me at {p1} or {e1}"',
            f'f2,c1,{TS},complaint,9,"mail {e2}"',
            f"f3,c1,{TS},complaint,1,{e3},surplus",
        ),
    )


def _canaries(text: str) -> list[str]:
    return [p for p in PLANTED if p.lower() in text.lower()]


def test_planted_pii_never_reaches_quarantine_ingest_log_or_the_dagster_event_log(tmp_path, landing):
    _plant(landing)
    cfg = tmp_path / "segments.yaml"
    cfg.write_text(
        f"landing_dir: {landing}\nwarehouse: {tmp_path / 'w.duckdb'}\npublished_dir: {tmp_path / 'pub'}\n"
        "time_zone: UTC\nsources:\n"
        + "".join(f"  {s}:\n    glob: '{s}/*'\n" for s in ("orders", "browsing", "feedback", "customers")),
        encoding="utf-8",
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        result = dg.materialize(
            ingestion_assets,
            resources={"segments": SegmentsResource(config_path=str(cfg), lock_timeout_s=5), "spark": SparkResource()},
            instance=instance,
            raise_on_error=False,
        )
        assert result.success
        meta = {
            e.materialization.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()
        }
        records = instance.get_records_for_run(result.run_id).records
        events = "\n".join(f"{r.event_log_entry.user_message}\n{r.event_log_entry.dagster_event!r}" for r in records)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        quarantine = con.execute("select * from quarantine").fetchall()
        log = con.execute("select * from ingest_log").fetchall()
        emails = {r[0] for r in con.execute("select email from customers").fetchall()}
    # The scan is not vacuous: bad rows were quarantined in every source, files rejected, and a good
    # row's e-mail is loaded into the warehouse source table (which is never published).
    assert {r[0] for r in quarantine} == {"orders", "browsing", "feedback", "customers"}
    assert any(r[5] == "rejected" for r in log)
    assert emails == {"ok@example.com"}
    assert "quarantined" in events and "rejected" in events
    # The asset metadata explains: status, top reasons (example, masked value, config-key hint), problems.
    assert meta["customers"]["status"] == "REJECTED 1" and meta["browsing"]["problems"] == []
    reasons = meta["orders"]["quarantine_reasons"]
    assert meta["orders"]["status"] == "QUARANTINED 3" and reasons
    assert set(reasons[0]) == {"column", "reason", "rows", "example", "value", "hint"}
    assert any(r["hint"] == "sources.orders.decimal_separator / sources.orders.thousands_separator" for r in reasons)
    assert _canaries(repr(meta)) == []
    assert _canaries(repr(quarantine)) == []
    assert _canaries(repr(log)) == []
    assert _canaries(events) == []
    # Everything the instance stored on disk (event log, run storage, compute logs) too.
    stored = "".join(p.read_bytes().decode("utf-8", "replace") for p in home.rglob("*") if p.is_file())
    assert stored and _canaries(stored) == []
