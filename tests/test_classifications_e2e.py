"""End to end: a user adds a classification, a tag and an override by editing files only, runs the
pipeline for two snapshot dates, and finds all three in customer_segments, segment_summary,
override_audit, `segments export` and `segments explain` (real in-process Dagster runs, real files).

The same runs cover the home store (a data-driven segmentation: summary, groups, history, an override to
a store id, export, explain) and a complaint window of 60 days that the shipped rules follow."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml
from conftest import write_project_config

from pipelines.cli import main as cli_main
from pipelines.runner import run_pipeline
from publishing.catalog import connect_catalog
from segments.sample_data import generate

AS_OF = date(2026, 11, 21)
BEFORE = AS_OF - timedelta(days=1)
STORE = "S001"  # a home store of the sample data (seed 11); checked below

USER_RULES = {
    "classifications": {
        "spend_band": {
            "title": {"en": "Spend band", "zh": "消费档次"},
            "labels": {"big": {"en": "Big spender", "zh": "大客户"}, "small": {"en": "Small spender", "zh": "小客户"}},
            "rules": [{"label": "big", "when": "monetary >= 2000 and frequency >= 2"}],
            "default": "small",
        }
    },
    "tags": {"online_fan": {"title": {"en": "Online fan", "zh": "线上达人"}, "when": "online_share >= 0.8"}},
}


@pytest.fixture(scope="module")
def user_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """Sample data, a config with the user's rules, an overrides CSV; runs for BEFORE then AS_OF."""
    root = tmp_path_factory.mktemp("user")
    generate(root / "landing", customers=300, days=400, end_date=AS_OF, seed=11, defects=False, daily_days=3)
    ids = pl.read_csv(next((root / "landing" / "customers").glob("*.csv")))["customer_id"].sort()
    first_customer, second_customer = ids[0], ids[1]
    with open(root / "overrides.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "field", "value", "reason", "author", "expires"])
        w.writerow([first_customer, "spend_band", "大客户", "key account, signed contract", "li.na", "2027-12-31"])
        w.writerow([first_customer, "online_fan", "true", "shops in the app daily", "li.na", ""])
        w.writerow([first_customer, "value_tier", "potential", "old campaign", "wang.wei", "2026-01-31"])
        w.writerow(["NO_SUCH_CUSTOMER", "spend_band", "big", "typo", "wang.wei", ""])
        w.writerow([first_customer, "spend_band", "vip", "label that does not exist", "wang.wei", ""])
        w.writerow([second_customer, "home_store", STORE, "moved to our flagship", "li.na", ""])
        w.writerow([second_customer, "home_store", "S999", "store that does not exist", "li.na", ""])
    # the churn model is not this test's subject (tests/test_clv*.py): left out, ~14 s of CPU per run saved
    path = write_project_config(
        root,
        segmentation={**USER_RULES, "prediction": {"enabled": False}},
        overrides_file="overrides.csv",
        features={"complaint_window_days": 60},
    )
    for day in (BEFORE, AS_OF):
        summary = run_pipeline(str(path), as_of=day, instance=dg.DagsterInstance.ephemeral())
        assert summary["success"], summary.get("failures")
    return root, path, first_customer


def _current(root: Path, table: str) -> pl.DataFrame:
    return pl.read_parquet(root / "published" / "current" / f"{table}.parquet")


def test_classification_tag_and_override_are_published_in_customer_segments(user_run) -> None:
    root, _, cid = user_run
    seg = _current(root, "customer_segments")
    assert {"spend_band", "spend_band_name", "tag_online_fan", "spend_band_computed", "spend_band_since"} <= set(
        seg.columns
    )
    # the rule, recomputed by hand from the published numbers, for everyone not overridden
    others = seg.filter(pl.col("customer_id") != cid)
    expected = (
        pl.when((pl.col("monetary") >= 2000) & (pl.col("frequency") >= 2))
        .then(pl.lit("big"))
        .otherwise(pl.lit("small"))
    )
    assert others["spend_band"].to_list() == others.select(expected)["literal"].to_list()
    fans = others.filter(pl.col("online_share").fill_null(0) >= 0.8)
    assert fans["tag_online_fan"].all() and fans.height > 0
    assert all("online_fan" in t for t in fans["tags"].to_list())
    me = seg.filter(pl.col("customer_id") == cid).row(0, named=True)
    assert me["spend_band"] == "big" and me["spend_band_name"] == "大客户"
    assert me["tag_online_fan"] is True and "online_fan" in me["tags"]
    assert me["overridden_fields"] == ["spend_band", "tag_online_fan"]
    assert me["value_tier"] == me["value_tier_computed"]  # the expired override was not applied
    # history: the override held on both snapshots, so the value started on the first one and had no
    # value before it
    assert (me["spend_band_previous"], me["spend_band_since"]) == (None, BEFORE)


def test_summary_counts_the_new_classification_and_tag(user_run) -> None:
    root, _, _ = user_run
    seg = _current(root, "customer_segments")
    summary = _current(root, "segment_summary")
    band = dict(summary.filter(pl.col("segmentation") == "spend_band").select("segment", "customers").iter_rows())
    assert band == dict(seg.group_by("spend_band").len().iter_rows())
    tag = dict(summary.filter(pl.col("segmentation") == "tag_online_fan").select("segment", "customers").iter_rows())
    assert tag["true"] == int(seg["tag_online_fan"].sum())
    by_region = _current(root, "segment_summary_by_group").filter(
        (pl.col("group_by") == "region") & (pl.col("segmentation") == "spend_band")
    )
    expected = seg.group_by(pl.col("region").fill_null("unknown"), "spend_band").len()
    assert sorted(by_region.select("group_value", "segment", "customers").rows()) == sorted(expected.rows())
    shares = by_region.group_by("group_value").agg(pl.col("share").sum())["share"].to_list()
    assert all(abs(x - 1) < 1e-9 for x in shares)


def test_override_audit_records_applied_expired_and_refused(user_run) -> None:
    root, _, _ = user_run
    audit = _current(root, "override_audit").sort("line")
    assert audit["status"].to_list() == ["applied", "applied", "expired", "refused", "refused", "applied", "refused"]
    assert "unknown customer" in audit["detail"][3] and "unknown label" in audit["detail"][4]
    assert audit["snapshot_date"].unique().to_list() == [AS_OF]


def test_export_by_tag_and_by_classification(user_run, capsys: pytest.CaptureFixture) -> None:
    root, cfg, _ = user_run
    seg = _current(root, "customer_segments")
    out = root / "fans.csv"
    assert cli_main(["--config", str(cfg), "export", "--tag", "online_fan", "--out", str(out)]) == 0
    exported = pl.read_csv(out)
    assert exported.height == int(seg["tag_online_fan"].sum())
    assert cli_main(["--config", str(cfg), "export", "--by", "spend_band", "--segment", "big", "--out", str(out)]) == 0
    assert pl.read_csv(out).height == seg.filter(pl.col("spend_band") == "big").height
    assert cli_main(["--config", str(cfg), "export", "--tag", "nope"]) == 2
    assert "no tag 'nope'" in capsys.readouterr().err


def test_explain_shows_the_rule_the_override_and_the_history(user_run, capsys: pytest.CaptureFixture) -> None:
    root, cfg, cid = user_run
    assert cli_main(["--config", str(cfg), "explain", cid, "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert p["snapshot_date"] == AS_OF.isoformat()
    band = p["classifications"]["spend_band"]
    assert band["value"] == "big" and band["display"] == "大客户"
    assert [o["status"] for o in p["overrides"]] == ["applied", "applied", "expired", "refused"]
    # the value started on the first snapshot: there was none before it
    assert p["history"]["spend_band"] == {"current": "big", "previous": None, "since": BEFORE.isoformat()}
    assert "online_fan" in p["tags"]
    assert cli_main(["--config", str(cfg), "explain", cid, "--as-of", BEFORE.isoformat()]) == 0
    text = capsys.readouterr().out
    assert f"snapshot {BEFORE.isoformat()}" in text and "spend_band" in text and "大客户" in text
    with connect_catalog(root / "published" / "catalog.duckdb") as cat:  # views hold relative paths
        assert cat.execute("select count(*) from override_audit_history").fetchall()[0][0] == 14


def test_home_store_is_published_with_its_history(user_run) -> None:
    root, _, _ = user_run
    seg = _current(root, "customer_segments")
    assert {"home_store", "home_store_computed", "home_store_previous", "home_store_since"} <= set(seg.columns)
    computed = seg.filter(pl.col("home_store_computed").is_not_null())
    # only store purchases make a home store (online lines carry no store_id); most store buyers have one
    assert (computed["offline_share"] > 0).all()
    store_buyers = seg.filter(pl.col("offline_share") > 0).height
    assert computed.height >= 0.9 * store_buyers > 0
    assert STORE in set(computed["home_store_computed"])
    # history against the previous snapshot's published file, customer by customer
    before = pl.read_parquet(
        root / "published" / "customer_segments" / f"snapshot_date={BEFORE.isoformat()}" / "part-0.parquet"
    ).select(
        "customer_id",
        pl.col("home_store").alias("before"),
        pl.col("home_store_previous").alias("before_previous"),
        pl.col("home_store_since").alias("before_since"),
    )
    both = seg.join(before, on="customer_id", how="inner")
    same = both.filter(pl.col("home_store").eq_missing(pl.col("before")))
    changed = both.filter(~pl.col("home_store").eq_missing(pl.col("before")))
    assert same.height > 0  # consecutive days: few change (the change case is in test_overrides.py)
    # changed: previous is yesterday's store; unchanged: previous and since carried from yesterday's row
    assert changed["home_store_previous"].to_list() == changed["before"].to_list()
    assert same["home_store_previous"].to_list() == same["before_previous"].to_list()
    assert same["home_store_since"].to_list() == same["before_since"].to_list()
    assert (both.filter(~pl.col("home_store").eq_missing(pl.col("before")))["home_store_since"] == AS_OF).all()


def test_home_store_in_summary_groups_override_export_and_explain(user_run, capsys: pytest.CaptureFixture) -> None:
    root, cfg, _ = user_run
    seg = _current(root, "customer_segments")
    summary = _current(root, "segment_summary").filter(pl.col("segmentation") == "home_store")
    expected = seg.group_by(pl.col("home_store").fill_null("unassigned")).len()
    assert sorted(summary.select("segment", "customers").rows()) == sorted(expected.rows())
    groups = _current(root, "segment_summary_by_group").filter(pl.col("group_by") == "home_store")
    tiers = groups.filter(pl.col("segmentation") == "value_tier").select("group_value", "segment", "customers")
    expected = seg.group_by(pl.col("home_store").fill_null("unknown"), "value_tier").len()
    assert sorted(tiers.rows()) == sorted(expected.rows())
    assert "home_store" not in set(groups["segmentation"])  # never grouped by itself
    # the override to a store id of the snapshot applied; an unknown store refused, naming the known ones
    audit = _current(root, "override_audit").filter(pl.col("field") == "home_store").sort("line")
    cid = audit["customer_id"][0]
    assert audit["status"].to_list() == ["applied", "refused"]
    assert f"no home_store 'S999' in this snapshot; home_store values: {STORE}" in audit["detail"][1]
    me = seg.filter(pl.col("customer_id") == cid).row(0, named=True)
    assert me["home_store"] == STORE and me["overridden_fields"] == ["home_store"]
    assert audit["computed_value"][0] == me["home_store_computed"]
    out = root / "store.csv"
    assert cli_main(["--config", str(cfg), "export", "--by", "home_store", "--segment", STORE, "--out", str(out)]) == 0
    assert pl.read_csv(out, infer_schema=False)["customer_id"].sort().to_list() == sorted(
        seg.filter(pl.col("home_store") == STORE)["customer_id"].to_list()
    )
    exported = pl.read_csv(out, infer_schema=False)
    assert set(exported["home_store"]) == {STORE}
    capsys.readouterr()
    assert cli_main(["--config", str(cfg), "export", "--by", "home_store", "--segment", "S999"]) == 2
    assert f"home_store: no home_store 'S999' in customer_segments.parquet; known: {STORE}" in capsys.readouterr().err
    assert cli_main(["--config", str(cfg), "explain", cid, "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert p["features"]["home_store"] == STORE
    assert p["history"]["home_store"]["current"] == STORE


def test_shipped_rules_follow_a_complaint_window_of_60_days(user_run) -> None:
    root, _, _ = user_run
    seg = _current(root, "customer_segments").filter(pl.col("overridden_fields").list.len() == 0)
    assert "complaints_60d" in seg.columns and "complaints_90d" not in seg.columns
    complained = seg["complaints_60d"] >= 1
    assert complained.any()
    assert seg["tag_recent_complainer"].to_list() == complained.to_list()
    assert (seg.filter(complained)["satisfaction"] == "dissatisfied").all()


def test_a_broken_rule_stops_the_run_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rules = {"tags": {"bad": {"title": {"en": "Bad", "zh": "坏"}, "when": "monetary > 0 or 1=1 --"}}}
    cfg = tmp_path / "segments.yaml"
    cfg.write_text(
        yaml.safe_dump({"sources": {"orders": {"glob": "orders/*"}}, "segmentation": rules}), encoding="utf-8"
    )
    assert cli_main(["--config", str(cfg), "run"]) == 2
    err = capsys.readouterr().err
    assert "segmentation.tags.bad.when: comments are not allowed" in err and "^^" in err
    shutil.rmtree(tmp_path, ignore_errors=True)
