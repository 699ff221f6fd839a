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

Literals become bound parameters (``$p1``...) of the compiled SQL, never text. Null semantics follow SQL
(three-valued logic); a rule *matches* only when it is true. ``/`` is real division and gives null when
dividing by zero, in SQL and in Python alike.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

NUMERIC = ("integer", "decimal", "double")
# Columns computed from the snapshot date, usable in every rule (documented in docs/definitions.md).
PSEUDO_COLUMNS: dict[str, str] = {"snapshot_year": "integer", "age": "integer"}
_PSEUDO_SQL = {
    "snapshot_year": 'cast(extract(year from "snapshot_date") as bigint)',
    "age": '(cast(extract(year from "snapshot_date") as bigint) - "birth_year")',
}
_KEYWORDS = {"and", "or", "not", "in", "between", "is", "null", "true", "false", "date"}
_SQL_WORDS = {
    "select", "from", "where", "union", "drop", "insert", "delete", "update", "create", "alter", "exists",
    "case", "when", "then", "else", "end", "cast", "like", "ilike", "similar", "join", "limit", "order",
    "group", "having", "into", "exec", "execute", "attach", "copy", "pragma", "install", "load", "with",
}  # fmt: skip
_COMPARE = ("=", "<>", "!=", "<", "<=", ">", ">=")
_TWO_CHAR = ("<>", "!=", "<=", ">=")
_ONE_CHAR = "=<>+-*/(),"


class RuleError(ValueError):
    """A rule was refused; ``str()`` quotes the rule and points at the offending token."""

    def __init__(self, message: str, rule: str, pos: int, length: int = 1, where: str = "") -> None:
        self.reason, self.rule, self.pos, self.length, self.where = message, rule, pos, max(length, 1), where
        super().__init__(self._render())

    def _render(self) -> str:
        start = self.rule.rfind("\n", 0, self.pos) + 1
        end = self.rule.find("\n", self.pos)
        line_text = self.rule[start : end if end >= 0 else len(self.rule)]
        line_no = self.rule.count("\n", 0, self.pos) + 1
        col = self.pos - start
        caret = " " * col + "^" * max(1, min(self.length, len(line_text) - col))
        head = f"{self.where}: " if self.where else ""
        return f"{head}{self.reason} (line {line_no}, column {col + 1})\n    {line_text}\n    {caret}"

    def located(self, where: str) -> RuleError:
        """The same error naming the config key that holds the rule."""
        return RuleError(self.reason, self.rule, self.pos, self.length, where)


# ---------------------------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Token:
    kind: str  # num, str, ident, op, end
    text: str
    pos: int
    value: Any = None


def _char_name(ch: str) -> str:
    return f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')})"


def tokenize(rule: str) -> list[Token]:
    """Split ``rule`` into tokens; refuse comments, ``;``, double quotes and non-ASCII names."""
    out: list[Token] = []
    i, n = 0, len(rule)
    while i < n:
        ch = rule[i]
        if ch.isspace():
            i += 1
        elif rule.startswith("--", i) or rule.startswith("/*", i):
            raise RuleError("comments are not allowed in a rule", rule, i, 2)
        elif ch == ";":
            raise RuleError("';' is not allowed: a rule is one expression, not statements", rule, i)
        elif ch == "'":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise RuleError("unterminated string literal (a quote inside is written '')", rule, i, n - i)
                if rule[j] == "'":
                    if rule.startswith("''", j):
                        buf.append("'")
                        j += 2
                        continue
                    break
                buf.append(rule[j])
                j += 1
            out.append(Token("str", rule[i : j + 1], i, "".join(buf)))
            i = j + 1
        elif ch.isascii() and (ch.isdigit() or (ch == "." and i + 1 < n and rule[i + 1].isdigit())):
            j = i
            while j < n and rule[j].isascii() and (rule[j].isdigit() or rule[j] == "."):
                j += 1
            text = rule[i:j]
            if j < n and (rule[j].isalpha() or rule[j] == "_"):
                raise RuleError(f"malformed number {rule[i : j + 1]!r}", rule, i, j + 1 - i)
            try:
                value: Any = int(text) if "." not in text else Decimal(text)
                if isinstance(value, Decimal) and text.count(".") > 1:
                    raise InvalidOperation
            except InvalidOperation:
                raise RuleError(f"malformed number {text!r}", rule, i, j - i) from None
            out.append(Token("num", text, i, value))
            i = j
        elif ch.isascii() and (ch.isalpha() or ch == "_"):
            j = i
            while j < n and rule[j].isascii() and (rule[j].isalnum() or rule[j] == "_"):
                j += 1
            if j < n and not rule[j].isascii() and (rule[j].isalnum() or unicodedata.category(rule[j])[0] == "L"):
                raise RuleError(
                    f"unexpected character {_char_name(rule[j])} in a name; column names are plain ASCII", rule, j
                )
            out.append(Token("ident", rule[i:j], i, rule[i:j].lower()))
            i = j
        elif rule.startswith(_TWO_CHAR, i):
            out.append(Token("op", rule[i : i + 2], i))
            i += 2
        elif ch in _ONE_CHAR:
            out.append(Token("op", ch, i))
            i += 1
        elif ch == '"':
            raise RuleError("double quotes are not allowed: strings use single quotes, names none", rule, i)
        elif not ch.isascii():
            raise RuleError(f"unexpected character {_char_name(ch)}; rules are written in ASCII", rule, i)
        else:
            raise RuleError(f"character {ch!r} is not part of the rule language", rule, i)
    out.append(Token("end", "", n))
    return out


# ---------------------------------------------------------------------------------------------- tree


@dataclass(frozen=True)
class Node:
    pos: int
    end: int


@dataclass(frozen=True)
class Col(Node):
    name: str


@dataclass(frozen=True)
class Lit(Node):
    value: Any
    type: str  # integer, decimal, string, date, boolean


@dataclass(frozen=True)
class Unary(Node):
    op: str  # not, -
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str  # and, or, comparisons, + - * /
    left: Node
    right: Node


@dataclass(frozen=True)
class InList(Node):
    expr: Node
    items: tuple[Lit, ...]
    negated: bool


@dataclass(frozen=True)
class Between(Node):
    expr: Node
    low: Node
    high: Node
    negated: bool


@dataclass(frozen=True)
class IsNull(Node):
    expr: Node
    negated: bool


class _Parser:
    def __init__(self, rule: str) -> None:
        self.rule, self.tokens, self.i = rule, tokenize(rule), 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def fail(self, message: str, tok: Token | None = None) -> RuleError:
        tok = tok or self.tok
        return RuleError(message, self.rule, tok.pos, len(tok.text) or 1)

    def is_kw(self, word: str, offset: int = 0) -> bool:
        tok = self.tokens[min(self.i + offset, len(self.tokens) - 1)]
        return tok.kind == "ident" and tok.value == word

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def take(self) -> Token:
        tok = self.tok
        self.i += 1
        return tok

    def expect_kw(self, word: str, context: str) -> Token:
        if not self.is_kw(word):
            raise self.fail(f"expected '{word}' {context}, found {self._found()}")
        return self.take()

    def expect_op(self, op: str, context: str) -> Token:
        if not self.is_op(op):
            raise self.fail(f"expected '{op}' {context}, found {self._found()}")
        return self.take()

    def _found(self) -> str:
        return "the end of the rule" if self.tok.kind == "end" else repr(self.tok.text)

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.fail("the rule is empty")
        node = self.or_()
        if self.tok.kind != "end":
            if self.is_op(*_COMPARE):
                raise self.fail("chained comparisons are not allowed; combine two comparisons with 'and'")
            raise self.fail(f"unexpected {self._found()} after a complete expression (missing 'and'/'or'?)")
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.is_kw("or"):
            self.take()
            right = self.and_()
            node = Binary(node.pos, right.end, "or", node, right)
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.is_kw("and"):
            self.take()
            right = self.not_()
            node = Binary(node.pos, right.end, "and", node, right)
        return node

    def not_(self) -> Node:
        if self.is_kw("not"):
            tok = self.take()
            operand = self.not_()
            return Unary(tok.pos, operand.end, "not", operand)
        return self.predicate()

    def predicate(self) -> Node:
        left = self.sum_()
        if self.is_op(*_COMPARE):
            op = self.take().text
            right = self.sum_()
            return Binary(left.pos, right.end, "<>" if op == "!=" else op, left, right)
        negated = False
        if self.is_kw("not") and (self.is_kw("in", 1) or self.is_kw("between", 1)):
            self.take()
            negated = True
        if self.is_kw("in"):
            self.take()
            self.expect_op("(", "after 'in'")
            items = [self.literal_item()]
            while self.is_op(","):
                self.take()
                items.append(self.literal_item())
            close = self.expect_op(")", "to close the 'in' list")
            return InList(left.pos, close.pos + 1, left, tuple(items), negated)
        if self.is_kw("between"):
            self.take()
            low = self.sum_()
            self.expect_kw("and", "between the bounds of 'between'")
            high = self.sum_()
            return Between(left.pos, high.end, left, low, high, negated)
        if self.is_kw("is"):
            self.take()
            neg = False
            if self.is_kw("not"):
                self.take()
                neg = True
            end = self.expect_kw("null", "after 'is' (only 'is null' / 'is not null' are allowed)")
            return IsNull(left.pos, end.pos + 4, left, neg)
        return left

    def literal_item(self) -> Lit:
        minus = self.take() if self.is_op("-") else None
        node = self.primary()
        if not isinstance(node, Lit):
            raise RuleError("an 'in' list holds literals only", self.rule, node.pos, node.end - node.pos)
        if minus is not None:
            if node.type not in NUMERIC:
                raise RuleError("'-' applies to numbers only", self.rule, minus.pos, 1)
            node = Lit(minus.pos, node.end, -node.value, node.type)
        return node

    def sum_(self) -> Node:
        node = self.product()
        while self.is_op("+", "-"):
            op = self.take().text
            right = self.product()
            node = Binary(node.pos, right.end, op, node, right)
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.is_op("*", "/"):
            op = self.take().text
            right = self.unary()
            node = Binary(node.pos, right.end, op, node, right)
        return node

    def unary(self) -> Node:
        if self.is_op("-"):
            tok = self.take()
            operand = self.unary()
            return Unary(tok.pos, operand.end, "-", operand)
        return self.primary()

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind == "num":
            self.take()
            return Lit(
                tok.pos, tok.pos + len(tok.text), tok.value, "integer" if isinstance(tok.value, int) else "decimal"
            )
        if tok.kind == "str":
            self.take()
            return Lit(tok.pos, tok.pos + len(tok.text), tok.value, "string")
        if self.is_op("("):
            self.take()
            if self.is_kw("select") or self.is_kw("with"):
                raise self.fail("subqueries are not allowed in a rule")
            node = self.or_()
            close = self.expect_op(")", "to close '('")
            return _with_span(node, tok.pos, close.pos + 1)
        if tok.kind == "ident":
            word = tok.value
            nxt = self.tokens[self.i + 1]
            if word == "date" and nxt.kind == "str":
                self.take()
                self.take()
                try:
                    value = date.fromisoformat(nxt.value)
                except ValueError:
                    raise RuleError(
                        f"invalid date {nxt.value!r}; write date 'YYYY-MM-DD'", self.rule, nxt.pos, len(nxt.text)
                    ) from None
                return Lit(tok.pos, nxt.pos + len(nxt.text), value, "date")
            if word in ("true", "false"):
                self.take()
                return Lit(tok.pos, tok.pos + len(tok.text), word == "true", "boolean")
            if nxt.kind == "op" and nxt.text == "(":
                raise self.fail(f"function calls are not allowed: {tok.text}(...)")
            if word == "null":
                raise self.fail("a bare null is not allowed; write 'column is null' or 'column is not null'")
            if word in _SQL_WORDS:
                raise self.fail(f"SQL keyword '{tok.text}' is not allowed in a rule")
            if word in _KEYWORDS:
                raise self.fail(f"expected a column or a value, found the keyword '{tok.text}'")
            if word.startswith("__"):
                raise self.fail(f"names starting with '__' are not allowed: {tok.text!r}")
            self.take()
            return Col(tok.pos, tok.pos + len(tok.text), word)
        if tok.kind == "end":
            raise self.fail("the rule ends too early: expected a column or a value")
        raise self.fail(f"expected a column or a value, found {tok.text!r}")


def _with_span(node: Node, pos: int, end: int) -> Node:
    """The node re-spanned to include its parentheses (so carets cover them)."""
    fields = {k: getattr(node, k) for k in node.__dataclass_fields__}
    fields.update(pos=pos, end=end)
    return type(node)(**fields)


def parse_rule(rule: str) -> Node:
    """Parse ``rule`` into a tree; RuleError (with a caret) when it is not in the language."""
    if not isinstance(rule, str):
        raise RuleError(f"a rule must be a string, got {type(rule).__name__}", str(rule), 0)
    return _Parser(rule).parse()


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
            if n.op in _COMPARE:
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


class SqlParams:
    """Collects bound values and hands out DuckDB-style ``$name`` placeholders."""

    def __init__(self, prefix: str = "p") -> None:
        self.prefix = prefix
        self.values: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        """A placeholder for ``value``."""
        name = f"{self.prefix}{len(self.values) + 1}"
        self.values[name] = value
        return f"${name}"


def to_sql(node: Node, params: SqlParams) -> str:
    """SQL text of ``node``: identifiers from the checked tree (quoted), every literal bound."""
    if isinstance(node, Lit):
        return params.bind(node.value)
    if isinstance(node, Col):
        return _PSEUDO_SQL.get(node.name, '"' + node.name + '"')  # names are [a-z_][a-z0-9_]*, never quoted
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
        if node.op in _COMPARE:
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
