"""Property: for random type-correct rules and random rows (nulls included), the compiled SQL run in
DuckDB and the Python evaluation of the same parse tree agree on every row."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.rules import SqlParams, compile_rule, evaluate, to_sql

COLUMNS = {
    "monetary": "decimal",
    "frequency": "integer",
    "avg_rating": "double",
    "source_channel": "string",
    "is_buyer": "boolean",
    "last_purchase_date": "date",
}
SCHEMA = pa.schema(
    [
        ("i", pa.int64()),
        ("monetary", pa.decimal128(18, 2)),
        ("frequency", pa.int64()),
        ("avg_rating", pa.float64()),
        ("source_channel", pa.string()),
        ("is_buyer", pa.bool_()),
        ("last_purchase_date", pa.date32()),
    ]
)
CON = duckdb.connect()
WORDS = ("ads", "app", "web", "Web", "o'brien", "")
BASE = date(2026, 1, 1)

ints = st.integers(-20, 20)
decimals = st.decimals(min_value=-50, max_value=50, places=2, allow_nan=False, allow_infinity=False)


def _num_lit() -> st.SearchStrategy[str]:
    return st.one_of(ints.map(str), decimals.map(lambda d: format(d, "f")))


def _num_expr() -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(["monetary", "frequency", "avg_rating"]), _num_lit())
    return st.recursive(
        leaf,
        lambda sub: st.one_of(
            st.tuples(sub, st.sampled_from(["+", "-", "*", "/"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(sub, st.sampled_from(["+", "-", "*", "/"]), sub).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
            sub.map(lambda e: f"-({e})"),
        ),
        max_leaves=4,
    )


def _str_lit() -> st.SearchStrategy[str]:
    return st.sampled_from(WORDS).map(lambda w: "'" + w.replace("'", "''") + "'")


def _date_lit() -> st.SearchStrategy[str]:
    return st.integers(0, 60).map(lambda d: f"date '{(BASE + timedelta(days=d)).isoformat()}'")


CMP = st.sampled_from(["=", "<>", "!=", "<", "<=", ">", ">="])


def _predicate() -> st.SearchStrategy[str]:
    num = _num_expr()
    arithmetic = st.tuples(num, CMP, num).map(lambda t: f"{t[0]} {t[1]} {t[2]}")
    return st.one_of(
        arithmetic,
        arithmetic,
        arithmetic,
        st.tuples(CMP, _str_lit()).map(lambda t: f"source_channel {t[0]} {t[1]}"),
        st.tuples(CMP, _date_lit()).map(lambda t: f"last_purchase_date {t[0]} {t[1]}"),
        st.tuples(st.booleans(), st.lists(_str_lit(), min_size=1, max_size=3)).map(
            lambda t: f"source_channel {'not ' if t[0] else ''}in ({', '.join(t[1])})"
        ),
        st.tuples(st.booleans(), st.lists(_num_lit(), min_size=1, max_size=3)).map(
            lambda t: f"frequency {'not ' if t[0] else ''}in ({', '.join(t[1])})"
        ),
        st.tuples(num, st.booleans(), num, num).map(
            lambda t: f"{t[0]} {'not ' if t[1] else ''}between {t[2]} and {t[3]}"
        ),
        st.tuples(st.sampled_from(list(COLUMNS)), st.booleans()).map(
            lambda t: f"{t[0]} is {'not ' if t[1] else ''}null"
        ),
        st.sampled_from(["is_buyer", "is_buyer = true", "is_buyer <> false"]),
    )


def _rule() -> st.SearchStrategy[str]:
    return st.recursive(
        _predicate(),
        lambda sub: st.one_of(
            st.tuples(sub, st.sampled_from(["and", "or"]), sub).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
            sub.map(lambda e: f"not ({e})"),
        ),
        max_leaves=4,
    )


def _maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """Null in about one row in six, so that most rows exercise the values."""
    return st.integers(0, 5).flatmap(lambda k: st.none() if k == 0 else strategy)


ROW = st.fixed_dictionaries(
    {
        "monetary": _maybe(decimals),
        "frequency": _maybe(st.integers(0, 30)),
        "avg_rating": _maybe(st.floats(1, 5, allow_nan=False).map(lambda f: round(f, 3))),
        "source_channel": _maybe(st.sampled_from(WORDS)),
        "is_buyer": _maybe(st.booleans()),
        "last_purchase_date": _maybe(st.integers(0, 60).map(lambda d: BASE + timedelta(days=d))),
    }
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule=_rule(), rows=st.lists(ROW, min_size=1, max_size=12))
def test_compiled_sql_and_python_evaluation_agree(rule: str, rows: list[dict]) -> None:
    compiled = compile_rule(rule, COLUMNS)
    params = SqlParams()
    sql = to_sql(compiled.tree, params)
    table = pa.Table.from_pylist([{"i": i, **r} for i, r in enumerate(rows)], schema=SCHEMA)
    CON.register("t", table)
    try:
        got = dict(CON.execute(f"select i, {sql} from t order by i", params.values).fetchall())
    finally:
        CON.unregister("t")
    for i, row in enumerate(rows):
        want = evaluate(compiled.tree, row)
        assert got[i] == want, (rule, row, got[i], want)
