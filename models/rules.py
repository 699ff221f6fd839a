"""The rule language of classifications and tags: parse, type-check, compile to SQL, evaluate in Python.

A rule is one boolean expression over columns of the published ``customer_segments`` table::

    monetary > 5000 and frequency >= 10 and recency_days <= 30
    source_channel in ('web', 'app') or online_share >= 0.6
    age between 18 and 24 and nps_class is not null and last_purchase_date >= date '2026-01-01'

Grammar (lowest precedence first; keywords are case-insensitive)::

    rule      := or
    or        := and ('or' and)*
    and       := not ('and' not)*
    not       := 'not' not | predicate
    predicate := sum [ cmp sum | ['not'] 'in' '(' literal (',' literal)* ')'
                     | ['not'] 'between' sum 'and' sum | 'is' ['not'] 'null' ]
    sum       := product (('+' | '-') product)*
    product   := unary (('*' | '/') unary)*
    unary     := '-' unary | primary
    primary   := number | 'string' | true | false | date 'YYYY-MM-DD' | column | '(' or ')'
    cmp       := '=' | '<>' | '!=' | '<' | '<=' | '>' | '>='

Why a hand-written recursive-descent parser rather than sqlglot or Python's ``ast``: the grammar above
is the whitelist itself (there is no production for a function call, subquery, statement separator or
comment, so nothing has to be filtered out after a permissive parse); every token keeps its exact
position, so each refusal points at the offending token with a caret; and the SQL syntax the users
already write (``=``, ``<>``, ``between``, ``is null``, single-quoted strings) needs no translation,
which Python's ``ast`` cannot parse and sqlglot would accept along with hundreds of constructs we refuse.

The same tree compiles to DuckDB SQL or Spark SQL (``SqlParams(dialect=...)``): the two differ only in
how identifiers are quoted and how a parameter is marked (``$p1`` / ``:p1``). Literals become bound
parameters of the compiled SQL, never text, on both engines. Null semantics follow SQL
(three-valued logic); a rule *matches* only when it is true. ``/`` is real division and gives null when
dividing by zero, in SQL and in Python alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from models.rule_parser import (
    COMPARE,
    NUMERIC,
    Between,
    Binary,
    Col,
    InList,
    IsNull,
    Lit,
    Node,
    RuleError,
    Unary,
    parse_rule,
    tokenize,
)

# Columns computed from the snapshot date, usable in every rule (documented in docs/definitions.md).
PSEUDO_COLUMNS: dict[str, str] = {"snapshot_year": "integer", "age": "integer"}
_PSEUDO_SQL = {  # {snapshot_date} and {birth_year} are filled with the dialect's quoted identifiers
    "snapshot_year": "cast(extract(year from {snapshot_date}) as bigint)",
    "age": "(cast(extract(year from {snapshot_date}) as bigint) - {birth_year})",
}

Dialect = Literal["duckdb", "spark"]
DIALECTS: tuple[str, ...] = ("duckdb", "spark")
_QUOTE = {"duckdb": '"', "spark": "`"}
_MARKER = {"duckdb": "$", "spark": ":"}

# ---------------------------------------------------------------------------------------------- types


def _num_result(a: str, b: str) -> str:
    if "double" in (a, b):
        return "double"
    return "decimal" if "decimal" in (a, b) else "integer"


def _comparable(a: str, b: str) -> bool:
    return a == b or (a in NUMERIC and b in NUMERIC)


def check_rule(
    node: Node, rule: str, columns: Mapping[str, str], accepted: Mapping[str, tuple[str, ...]] | None = None
) -> str:
    """The type of ``node`` (must be boolean at the top); RuleError for unknown columns and mismatches.

    ``columns`` maps usable column names to logical contract types; ``accepted`` lists the values a
    string column can hold (a literal outside them is refused: a typo would otherwise match nobody).
    """
    accepted = accepted or {}
    known = {**PSEUDO_COLUMNS, **columns}

    def err(msg: str, n: Node) -> RuleError:
        return RuleError(msg, rule, n.pos, n.end - n.pos)

    def check_values(col: Node, lits: tuple[Node, ...]) -> None:
        if isinstance(col, Col) and col.name in accepted:
            for lit in lits:
                if isinstance(lit, Lit) and lit.type == "string" and lit.value not in accepted[col.name]:
                    raise err(f"{col.name} never holds {lit.value!r}; its values are {list(accepted[col.name])}", lit)

    def kind(n: Node) -> str:
        if isinstance(n, Lit):
            return n.type
        if isinstance(n, Col):
            if n.name not in known:
                import difflib

                close = difflib.get_close_matches(n.name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise err(f"unknown column {n.name!r}{hint}; rules use columns of customer_segments", n)
            return known[n.name]
        if isinstance(n, Unary):
            t = kind(n.operand)
            want = "boolean" if n.op == "not" else "number"
            if (n.op == "not" and t != "boolean") or (n.op == "-" and t not in NUMERIC):
                raise err(f"'{n.op}' needs a {want}, got {t}", n.operand)
            return t
        if isinstance(n, Binary):
            a, b = kind(n.left), kind(n.right)
            if n.op in ("and", "or"):
                for side, t in ((n.left, a), (n.right, b)):
                    if t != "boolean":
                        raise err(f"'{n.op}' joins conditions, but this is a {t} value", side)
                return "boolean"
            if n.op in COMPARE:
                if not _comparable(a, b):
                    raise err(f"cannot compare {_describe(n.left, a)} with {_describe(n.right, b)}", n.right)
                if n.op not in ("=", "<>") and a == "boolean":
                    raise err(f"'{n.op}' does not order true/false; use = or <>", n)
                check_values(n.left, (n.right,))
                check_values(n.right, (n.left,))
                return "boolean"
            for side, t in ((n.left, a), (n.right, b)):
                if t not in NUMERIC:
                    raise err(f"'{n.op}' needs numbers, but this is a {t} value", side)
            return "double" if n.op == "/" else _num_result(a, b)
        if isinstance(n, InList):
            t = kind(n.expr)
            for item in n.items:
                if not _comparable(t, item.type):
                    raise err(
                        f"'in' list item {_describe(item, item.type)} does not match {_describe(n.expr, t)}", item
                    )
            check_values(n.expr, n.items)
            return "boolean"
        if isinstance(n, Between):
            t = kind(n.expr)
            for bound in (n.low, n.high):
                tb = kind(bound)
                if not _comparable(t, tb) or t == "boolean":
                    raise err(f"'between' bound {_describe(bound, tb)} does not match {_describe(n.expr, t)}", bound)
            return "boolean"
        if isinstance(n, IsNull):
            kind(n.expr)
            return "boolean"
        raise err(f"unsupported expression {type(n).__name__}", n)  # pragma: no cover - parser builds no other

    top = kind(node)
    if top != "boolean":
        raise err(f"a rule must be a condition (true/false), but this is a {top} value", node)
    return top


def _describe(n: Node, t: str) -> str:
    if isinstance(n, Col):
        return f"{n.name} ({t})"
    if isinstance(n, Lit):
        shown = f"'{n.value}'" if t in ("string", "date") else str(n.value).lower()
        return f"{shown} ({t})"
    return f"an expression ({t})"


@dataclass(frozen=True)
class Rule:
    """A parsed, type-checked rule and the source text it came from."""

    text: str
    tree: Node

    def columns(self) -> set[str]:
        """Every column the rule reads (pseudo-columns included)."""
        return referenced_columns(self.tree)


def compile_rule(
    text: str, columns: Mapping[str, str], accepted: Mapping[str, tuple[str, ...]] | None = None, where: str = ""
) -> Rule:
    """Parse and type-check ``text``; errors name ``where`` (the config key)."""
    try:
        tree = parse_rule(text)
        check_rule(tree, text, columns, accepted)
    except RuleError as exc:
        raise exc.located(where) if where else exc from None
    return Rule(text, tree)


def referenced_columns(node: Node) -> set[str]:
    """Names of the columns read by ``node``."""
    if isinstance(node, Col):
        return {node.name}
    out: set[str] = set()
    for child in _children(node):
        out |= referenced_columns(child)
    return out


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, InList):
        return (node.expr, *node.items)
    if isinstance(node, Between):
        return (node.expr, node.low, node.high)
    if isinstance(node, IsNull):
        return (node.expr,)
    return ()


# ---------------------------------------------------------------------------------------------- SQL


def quote_identifier(name: str, dialect: Dialect = "duckdb") -> str:
    """``name`` quoted for ``dialect``; only lower_snake_case ASCII names (what the tokenizer and the config
    validation let through) are accepted, so quoting never has to escape anything."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}; expected one of {list(DIALECTS)} (config key: engine)")
    plain = name.isascii() and name == name.lower() and name.replace("_", "a").isalnum()
    if not (plain and not name[:1].isdigit()):
        raise ValueError(f"{name!r} is not a plain column name (lower_snake_case ASCII)")
    return _QUOTE[dialect] + name + _QUOTE[dialect]


class SqlParams:
    """Collects bound values and hands out placeholders in the dialect's form (``$p1`` DuckDB, ``:p1`` Spark)."""

    def __init__(self, prefix: str = "p", dialect: Dialect = "duckdb") -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"unknown SQL dialect {dialect!r}; expected one of {list(DIALECTS)} (config key: engine)")
        self.prefix = prefix
        self.dialect: Dialect = dialect
        self.values: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        """A placeholder for ``value``."""
        name = f"{self.prefix}{len(self.values) + 1}"
        self.values[name] = value
        return f"{_MARKER[self.dialect]}{name}"

    def quote(self, name: str) -> str:
        """A column name quoted for this dialect."""
        return quote_identifier(name, self.dialect)


def to_sql(node: Node, params: SqlParams) -> str:
    """SQL text of ``node`` in ``params.dialect``: identifiers from the checked tree (quoted), every literal bound.

    The text is the same on both dialects apart from quoting and markers: every operator used here
    (comparisons, ``and``/``or``/``not``, ``+ - *``, ``in``, ``between``, ``is null``, ``nullif``, ``cast``,
    ``extract``) means the same on DuckDB and Spark; ``/`` goes through DOUBLE on both.
    """
    if isinstance(node, Lit):
        return params.bind(node.value)
    if isinstance(node, Col):
        if node.name in _PSEUDO_SQL:
            return _PSEUDO_SQL[node.name].format(
                snapshot_date=params.quote("snapshot_date"), birth_year=params.quote("birth_year")
            )
        return params.quote(node.name)
    if isinstance(node, Unary):
        return f"(not {to_sql(node.operand, params)})" if node.op == "not" else f"(- {to_sql(node.operand, params)})"
    if isinstance(node, Binary):
        left, right = to_sql(node.left, params), to_sql(node.right, params)
        if node.op == "/":
            return f"(cast({left} as double) / nullif(cast({right} as double), 0))"
        return f"({left} {node.op} {right})"
    if isinstance(node, InList):
        items = ", ".join(to_sql(i, params) for i in node.items)
        return f"({to_sql(node.expr, params)} {'not in' if node.negated else 'in'} ({items}))"
    if isinstance(node, Between):
        op = "not between" if node.negated else "between"
        return f"({to_sql(node.expr, params)} {op} {to_sql(node.low, params)} and {to_sql(node.high, params)})"
    if isinstance(node, IsNull):
        return f"({to_sql(node.expr, params)} is {'not ' if node.negated else ''}null)"
    raise TypeError(f"cannot compile {type(node).__name__}")  # pragma: no cover


# ---------------------------------------------------------------------------------------------- Python


def _num_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """SQL numeric promotion: a double on either side makes both doubles."""
    if isinstance(a, float) or isinstance(b, float):
        return float(a), float(b)
    return a, b


def _compare(op: str, a: Any, b: Any) -> bool | None:
    if a is None or b is None:
        return None
    if not isinstance(a, str | date | bool):
        a, b = _num_pair(a, b)
    return {
        "=": a == b,
        "<>": a != b,
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
    }[op]


def _pseudo(name: str, row: Mapping[str, Any]) -> Any:
    snap = row.get("snapshot_date")
    year = None if snap is None else snap.year
    if name == "snapshot_year":
        return year
    birth = row.get("birth_year")
    return None if year is None or birth is None else year - birth


def evaluate(node: Node, row: Mapping[str, Any]) -> Any:
    """The value of ``node`` on one row, with SQL semantics (None is SQL null)."""
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Col):
        return _pseudo(node.name, row) if node.name in PSEUDO_COLUMNS and node.name not in row else row.get(node.name)
    if isinstance(node, Unary):
        v = evaluate(node.operand, row)
        if v is None:
            return None
        return (not v) if node.op == "not" else -v
    if isinstance(node, Binary):
        if node.op in ("and", "or"):
            a, b = evaluate(node.left, row), evaluate(node.right, row)
            if node.op == "and":
                return False if (a is False or b is False) else (None if a is None or b is None else True)
            return True if (a is True or b is True) else (None if a is None or b is None else False)
        a, b = evaluate(node.left, row), evaluate(node.right, row)
        if node.op in COMPARE:
            return _compare(node.op, a, b)
        if a is None or b is None:
            return None
        if node.op == "/":
            return None if float(b) == 0 else float(a) / float(b)
        a, b = _num_pair(a, b)
        return {"+": a + b, "-": a - b, "*": a * b}[node.op]
    if isinstance(node, InList):
        v = evaluate(node.expr, row)
        if v is None:
            return None
        found = any(_compare("=", v, i.value) for i in node.items)
        return (not found) if node.negated else found
    if isinstance(node, Between):
        v, lo, hi = (evaluate(x, row) for x in (node.expr, node.low, node.high))
        ge, le = _compare(">=", v, lo), _compare("<=", v, hi)
        both = False if (ge is False or le is False) else (None if ge is None or le is None else True)
        return (None if both is None else not both) if node.negated else both
    if isinstance(node, IsNull):
        v = evaluate(node.expr, row)
        return (v is not None) if node.negated else (v is None)
    raise TypeError(f"cannot evaluate {type(node).__name__}")  # pragma: no cover


def matches(rule: Rule, row: Mapping[str, Any]) -> bool:
    """Whether ``rule`` is true on ``row`` (null counts as not matching, as in SQL ``where``)."""
    return evaluate(rule.tree, row) is True


__all__ = [
    "DIALECTS",
    "NUMERIC",
    "PSEUDO_COLUMNS",
    "Between",
    "Binary",
    "Col",
    "Dialect",
    "InList",
    "IsNull",
    "Lit",
    "Node",
    "Rule",
    "RuleError",
    "SqlParams",
    "Unary",
    "check_rule",
    "compile_rule",
    "evaluate",
    "matches",
    "parse_rule",
    "quote_identifier",
    "referenced_columns",
    "to_sql",
    "tokenize",
]
