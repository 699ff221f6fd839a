"""Tokenizer and recursive-descent parser of the rule language (grammar in ``models/rules.py``).

The grammar is the whitelist: there is no production for a function call, subquery, statement
separator or comment, and every token keeps its position so a refusal points at it with a caret.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

NUMERIC = ("integer", "decimal", "double")
_KEYWORDS = {"and", "or", "not", "in", "between", "is", "null", "true", "false", "date"}
_SQL_WORDS = {
    "select", "from", "where", "union", "drop", "insert", "delete", "update", "create", "alter", "exists",
    "case", "when", "then", "else", "end", "cast", "like", "ilike", "similar", "join", "limit", "order",
    "group", "having", "into", "exec", "execute", "attach", "copy", "pragma", "install", "load", "with",
}  # fmt: skip
COMPARE = ("=", "<>", "!=", "<", "<=", ">", ">=")
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
            if self.is_op(*COMPARE):
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
        if self.is_op(*COMPARE):
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
