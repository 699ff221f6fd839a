"""Manual overrides (applied / expired / unknown / conflicting) and per-customer history, on hand-made frames."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from models.history import add_history
from models.overrides import Override, OverrideFileError, apply_overrides, load_overrides
from models.published_columns import customer_segments_contract, finalize_customers
from models.registry import builtin_registry
from models.settings import load_segmentation_settings

D = date(2026, 11, 21)
PREV = date(2026, 11, 20)
SETTINGS = load_segmentation_settings()
REGISTRY = builtin_registry(SETTINGS)
NAMES = {s.column: {lab.key: lab.zh for lab in s.labels} for s in REGISTRY if s.labels and s.kind != "tag"}


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "snapshot_date": [D, D, D],
            "customer_id": ["a", "b", "c"],
            "value_tier": ["general", "low_value", "high_value"],
            "value_tier_name": ["一般", "低价值", "高价值"],
            "cluster_id": pl.Series([0, 1, None], dtype=pl.Int64),
            "cluster_name": ["x", "y", None],
            "tag_recent_complainer": [False, True, False],
            "tags": [[], ["recent_complainer"], []],
        }
    )


def _o(line: int, cid: str, field: str, value: str, expires: date | None = None) -> Override:
    return Override(line, cid, field, value, "because", "li.na", expires)


def test_overrides_applied_expired_unknown_and_conflicting() -> None:
    overrides = [
        _o(2, "a", "value_tier", "高价值", date(2026, 12, 31)),  # by Chinese display name, expires later
        _o(3, "b", "recent_complainer", "false"),  # a tag by its bare name
        _o(4, "b", "value_tier", "general", date(2026, 11, 20)),  # expired the day before
        _o(5, "zz", "value_tier", "general"),  # unknown customer
        _o(6, "a", "colour", "red"),  # unknown field
        _o(7, "c", "value_tier", "vip"),  # unknown label
        _o(8, "c", "cluster", "1"),  # a cluster id of this snapshot
        _o(9, "b", "lifecycle_stage", "active"),
        _o(10, "b", "lifecycle_stage", "churned"),  # conflicts with line 9
        _o(11, "a", "cluster", "7"),  # no such cluster
    ]
    frame = _frame().with_columns(lifecycle_stage=pl.lit("at_risk"))
    out, audit = apply_overrides(frame, overrides, REGISTRY, D, NAMES)
    assert audit["status"].to_list() == [
        "applied",
        "applied",
        "expired",
        "refused",
        "refused",
        "refused",
        "applied",
        "refused",
        "refused",
        "refused",
    ]
    details = dict(zip(audit["line"].to_list(), audit["detail"].to_list(), strict=True))
    assert details[2] == "value_tier: general -> high_value"
    assert details[4] == "expired on 2026-11-20"
    assert details[5].startswith("unknown customer 'zz'")
    assert details[6].startswith("unknown field 'colour'")
    assert details[7].startswith("unknown label") and "high_value (High value / 高价值)" in details[7]
    assert details[9] == details[10] == "conflicts with another override of lifecycle_stage (lines 9, 10)"
    assert details[11].startswith("unknown label: no cluster '7'")
    assert audit.filter(pl.col("line") == 3)["computed_value"].to_list() == ["true"]
    rows = {r["customer_id"]: r for r in out.iter_rows(named=True)}
    assert (rows["a"]["value_tier"], rows["a"]["value_tier_name"], rows["a"]["value_tier_computed"]) == (
        "high_value",
        "高价值",
        "general",
    )
    assert rows["b"]["value_tier"] == "low_value"  # expired override not applied
    assert rows["b"]["lifecycle_stage"] == "at_risk"  # conflicting overrides not applied
    assert rows["b"]["tag_recent_complainer"] is False and rows["b"]["tags"] == []
    assert rows["b"]["tag_recent_complainer_computed"] is True
    assert (rows["c"]["cluster_id"], rows["c"]["cluster_name"]) == (1, "y")
    assert [rows[c]["overridden_fields"] for c in "abc"] == [["value_tier"], ["tag_recent_complainer"], ["cluster_id"]]


def test_home_store_override_takes_a_store_id_of_the_snapshot() -> None:
    frame = _frame().with_columns(home_store=pl.Series(["S02", None, "S01"], dtype=pl.String))
    overrides = [
        _o(2, "b", "home_store", "S01"),  # online-only customer moved to store S01 by hand
        _o(3, "a", "home_store", "S77"),  # no customer has S77 as home store in this snapshot
    ]
    out, audit = apply_overrides(frame, overrides, REGISTRY, D, NAMES)
    assert audit["status"].to_list() == ["applied", "refused"]
    assert audit["detail"].to_list() == [
        "home_store: None -> S01",
        "unknown label: no home_store 'S77' in this snapshot; home_store values: S01, S02",
    ]
    assert out["home_store"].to_list() == ["S02", "S01", "S01"]
    assert out["home_store_computed"].to_list() == ["S02", None, "S01"]
    assert out["overridden_fields"].to_list() == [[], ["home_store"], []]


def test_no_overrides_publish_computed_columns_and_empty_lists() -> None:
    out, audit = apply_overrides(_frame(), [], REGISTRY, D, NAMES)
    assert audit.height == 0 and audit.columns[:3] == ["snapshot_date", "line", "customer_id"]
    assert out["overridden_fields"].to_list() == [[], [], []]
    assert out["value_tier_computed"].to_list() == out["value_tier"].to_list()


def test_history_keeps_since_while_the_value_holds() -> None:
    frame = _frame()
    previous = pl.DataFrame(
        {
            "customer_id": ["a", "b", "gone"],
            "value_tier": ["general", "general", "low_value"],
            "value_tier_previous": ["potential", "potential", None],
            "value_tier_since": [date(2026, 10, 1), date(2026, 10, 1), PREV],
            "cluster_id": [0, 1, 2],
            # no cluster_id_since: the previous snapshot was built before history existed
        }
    )
    out = add_history(frame, previous, REGISTRY, D, PREV)
    got = out.select(
        "customer_id", "value_tier_previous", "value_tier_since", "cluster_id_previous", "cluster_id_since"
    )
    assert got.rows() == [
        # unchanged: previous value and since carried (the tier was "potential" before 2026-10-01); the
        # cluster since = previous date and its previous value unknown (no history columns back then)
        ("a", "potential", date(2026, 10, 1), None, PREV),
        ("b", "general", D, None, PREV),  # changed tier today: the previous value is yesterday's
        ("c", None, D, None, D),  # new customer
    ]
    assert out["tag_recent_complainer_since"].to_list() == [D, D, D]  # no tag column in the previous snapshot


def test_first_snapshot_starts_every_value_today() -> None:
    out = add_history(_frame(), None, REGISTRY, D, None)
    assert out["value_tier_since"].to_list() == [D, D, D] and out["value_tier_previous"].null_count() == 3


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "o.csv",
            "customer_id,field,value,reason,author,expires\na,value_tier,general,,me,\n",
            "o.csv:2: column 'reason'",
        ),
        (
            "o.csv",
            "customer_id,field,value,reason,author,expires\na,value_tier,general,r,me,31/12/2026\n",
            "o.csv:2: column 'expires' is '31/12/2026'",
        ),
        ("o.csv", "customer_id,value\na,b\n", "o.csv:1: header lacks ['field', 'reason', 'author']"),
        (
            "o.yaml",
            "- {customer_id: a, field: value_tier, value: general, reason: r, author: me, colour: red}\n",
            "o.yaml:1: unknown column(s) ['colour']",
        ),
        ("o.txt", "x", "must be a .csv or .yaml"),
    ],
)
def test_bad_override_files_name_the_file_and_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(OverrideFileError) as info:
        load_overrides(path)
    assert message in str(info.value)


def test_yaml_overrides_load(tmp_path: Path) -> None:
    path = tmp_path / "o.yaml"
    path.write_text(
        "overrides:\n- {customer_id: C1, field: value_tier, value: 潜力, reason: 大客户推荐, author: 李娜, "
        "expires: 2027-01-31}\n",
        encoding="utf-8",
    )
    assert load_overrides(path) == [Override(1, "C1", "value_tier", "潜力", "大客户推荐", "李娜", date(2027, 1, 31))]


def test_finalized_rows_match_the_extended_contract() -> None:
    """Every column the contract adds for the config exists in the finalized frame, and vice versa."""
    contract = customer_segments_contract(SETTINGS)
    added = [c for c in contract.column_names if c.endswith(("_computed", "_previous", "_since"))]
    assert "value_tier_since" in added and "tag_cart_abandoner_computed" in added and "cluster_id_previous" in added
    assert contract.column("value_tier").accepted_values == ("high_value", "potential", "general", "low_value")
    frame = _frame()
    for seg in REGISTRY:
        if seg.column not in frame.columns:
            frame = frame.with_columns(
                pl.lit(None, dtype=pl.Boolean if seg.kind == "tag" else pl.String).alias(seg.column)
            )
    out, _ = finalize_customers(frame, [], None, None, SETTINGS, D)
    assert set(added) <= set(out.columns)


def test_previous_is_the_value_before_the_change_and_holds_while_the_value_holds() -> None:
    """A CRM's "previous group": general, general, high_value, high_value -> previous general from day 3 on."""
    days = [date(2026, 11, d) for d in (18, 19, 20, 21)]
    tiers = ["general", "general", "high_value", "high_value"]
    previous, previous_date, seen = None, None, []
    for day, tier in zip(days, tiers, strict=True):
        frame = pl.DataFrame({"snapshot_date": [day], "customer_id": ["a"], "value_tier": [tier]})
        out = add_history(frame, previous, REGISTRY, day, previous_date)
        seen.append((out["value_tier_previous"][0], out["value_tier_since"][0]))
        previous, previous_date = out, day
    assert seen == [(None, days[0]), (None, days[0]), ("general", days[2]), ("general", days[2])]
