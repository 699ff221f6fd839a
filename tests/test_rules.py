"""The rule language: what is accepted, what is refused (with the message and the caret), compiled SQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb
import pytest

from models.rules import RuleError, SqlParams, compile_rule, evaluate, matches, to_sql

COLUMNS = {
    "monetary": "decimal",
    "frequency": "integer",
    "recency_days": "integer",
    "avg_rating": "double",
    "source_channel": "string",
    "nps_class": "string",
    "is_buyer": "boolean",
    "last_purchase_date": "date",
    "snapshot_date": "date",
    "birth_year": "integer",
}
ACCEPTED = {"nps_class": ("promoter", "passive", "detractor")}


def _compile(text: str):
    return compile_rule(text, COLUMNS, ACCEPTED, where="tags.t.when")


@pytest.mark.parametrize(
    ("rule", "sql", "params"),
    [
        ("monetary > 5000 and frequency >= 10", '(("monetary" > $p1) and ("frequency" >= $p2))', [5000, 10]),
        ("source_channel in ('web', 'app')", '("source_channel" in ($p1, $p2))', ["web", "app"]),
        ("source_channel not in ('x')", '("source_channel" not in ($p1))', ["x"]),
        ("monetary between 10.5 and 20", '("monetary" between $p1 and $p2)', [Decimal("10.5"), 20]),
        ("nps_class is not null", '("nps_class" is not null)', []),
        ("NOT is_buyer OR is_buyer = TRUE", '((not "is_buyer") or ("is_buyer" = $p1))', [True]),
        ("source_channel = 'it''s'", '("source_channel" = $p1)', ["it's"]),
        ("source_channel = '华东'", '("source_channel" = $p1)', ["华东"]),
        ("last_purchase_date >= date '2026-01-01'", '("last_purchase_date" >= $p1)', [date(2026, 1, 1)]),
        (
            "monetary / frequency > 100",
            '((cast("monetary" as double) / nullif(cast("frequency" as double), 0)) > $p1)',
            [100],
        ),
        ("-frequency < -1", '((- "frequency") < (- $p1))', [1]),
        ("frequency * 2 + 1 <> 3", '((("frequency" * $p1) + $p2) <> $p3)', [2, 1, 3]),
        ("age >= 18", '((cast(extract(year from "snapshot_date") as bigint) - "birth_year") >= $p1)', [18]),
        ("avg_rating != 3", '("avg_rating" <> $p1)', [3]),
    ],
)
def test_accepted_rules_compile_with_every_literal_bound(rule: str, sql: str, params: list) -> None:
    p = SqlParams()
    assert to_sql(_compile(rule).tree, p) == sql
    assert list(p.values.values()) == params


# (rule, message fragment, caret column (1-based), caret width)
REFUSED = [
    ("1=1; drop table x", "';' is not allowed", 4, 1),
    ("monetary > 0 or 1=1 --", "comments are not allowed", 21, 2),
    ("monetary > 0 /* hi */", "comments are not allowed", 14, 2),
    ("source_channel = 'it's'", "unterminated string literal", 23, 1),
    ('source_channel = "web"', "double quotes are not allowed", 18, 1),
    ("read_csv('x') is null", "function calls are not allowed: read_csv(...)", 1, 8),
    ("getattr(monetary, 'x') = 1", "function calls are not allowed", 1, 7),
    ("getattr = 1", "unknown column 'getattr'", 1, 7),
    ("__class__ = 1", "names starting with '__' are not allowed", 1, 9),
    ("monetary.__class__ = 1", "character '.' is not part of the rule language", 9, 1),
    ("monetаry > 1", "U+0430 CYRILLIC SMALL LETTER A", 6, 1),
    ("monetary ＞ 1", "U+FF1E FULLWIDTH GREATER-THAN SIGN", 10, 1),
    ("ｍonetary > 1", "U+FF4D FULLWIDTH LATIN SMALL LETTER M", 1, 1),
    ("monetary > 1 union select 1", "unexpected 'union' after a complete expression", 14, 5),
    ("frequency in (select 1)", "SQL keyword 'select' is not allowed", 15, 6),
    ("(select 1) = 1", "subqueries are not allowed", 2, 6),
    ("monetery > 5", "unknown column 'monetery' (did you mean 'monetary'?)", 1, 8),
    ("monetary > '5000'", "cannot compare monetary (decimal) with '5000' (string)", 12, 6),
    ("source_channel > 5", "cannot compare source_channel (string) with 5 (integer)", 18, 1),
    ("nps_class = 'promotor'", "nps_class never holds 'promotor'", 13, 10),
    ("frequency", "a rule must be a condition", 1, 9),
    ("frequency + 1", "a rule must be a condition", 1, 13),
    ("monetary > 1 < 2", "chained comparisons are not allowed", 14, 1),
    ("monetary > null", "a bare null is not allowed", 12, 4),
    ("monetary = ", "the rule ends too early", 12, 1),
    ("", "the rule is empty", 1, 1),
    ("frequency in ()", "expected a column or a value, found ')'", 15, 1),
    ("frequency in (recency_days)", "an 'in' list holds literals only", 15, 12),
    ("frequency between 1", "expected 'and' between the bounds", 20, 1),
    ("source_channel and is_buyer", "'and' joins conditions, but this is a string value", 1, 14),
    ("last_purchase_date > date '2026-02-30'", "invalid date '2026-02-30'", 27, 12),
    ("monetary > 1e3", "malformed number '1e'", 12, 2),
    ("is_buyer > false", "does not order true/false", 1, 16),
    ("frequency = 1 and $x = 1", "character '$' is not part of the rule language", 19, 1),
]


@pytest.mark.parametrize(("rule", "message", "column", "width"), REFUSED)
def test_refused_rules_quote_the_rule_and_point_at_the_token(rule: str, message: str, column: int, width: int) -> None:
    with pytest.raises(RuleError) as info:
        _compile(rule)
    err = info.value
    assert message in err.reason
    text = str(err)
    assert text.startswith("tags.t.when: ") and f"column {column})" in text
    quoted, caret = text.splitlines()[1:3]
    assert quoted == "    " + rule
    assert caret == "    " + " " * (column - 1) + "^" * width


def test_a_multi_line_rule_points_at_the_right_line() -> None:
    with pytest.raises(RuleError) as info:
        _compile("monetary > 10\nand frequncy > 2")
    assert "(line 2, column 5)" in str(info.value)
    assert str(info.value).splitlines()[1:] == ["    and frequncy > 2", "        ^^^^^^^^"]


def test_literals_never_reach_the_sql_text() -> None:
    """A quote-laden value is bound: the statement runs and matches the row holding exactly that text."""
    nasty = "x'); drop table t; --"
    rule = _compile("source_channel = '" + nasty.replace("'", "''") + "'")
    p = SqlParams()
    sql = to_sql(rule.tree, p)
    assert nasty not in sql and "drop" not in sql
    con = duckdb.connect()
    con.execute("create table t as select 'x''); drop table t; --' as source_channel union all select 'web'")
    got = con.execute(f"select source_channel from t where {sql}", p.values).fetchall()
    assert got == [(nasty,)]
    assert con.execute("select count(*) from t").fetchall() == [(2,)]


@pytest.mark.parametrize(
    ("rule", "row", "value"),
    [
        ("monetary > 10", {"monetary": None}, None),
        ("monetary > 10 or frequency = 1", {"monetary": None, "frequency": 1}, True),
        ("monetary > 10 and frequency = 1", {"monetary": None, "frequency": 2}, False),
        ("not monetary > 10", {"monetary": None}, None),
        ("nps_class in ('promoter', 'passive')", {"nps_class": None}, None),
        ("nps_class is null", {"nps_class": None}, True),
        ("frequency / recency_days > 1", {"frequency": 3, "recency_days": 0}, None),
        ("age between 18 and 24", {"snapshot_date": date(2026, 11, 21), "birth_year": 2004}, True),
        ("avg_rating > 0.1", {"avg_rating": 0.1}, False),
    ],
)
def test_python_evaluation_follows_sql_null_logic(rule: str, row: dict, value: object) -> None:
    assert evaluate(_compile(rule).tree, row) is value
    assert matches(_compile(rule), row) is (value is True)
