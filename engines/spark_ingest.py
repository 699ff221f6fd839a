"""Ingestion's row rules on Spark: the one staging statement of ``ingestion/rules.py``, rendered for Spark SQL.

A Parquet landing file is read by Spark (any path Spark can read) and every row rule is evaluated there: the
typed values, the first broken rule and its quarantine finding. The staged rows come back as Parquet and the
rest of the load runs where the warehouse lives (DuckDB, the system of record): duplicates and key conflicts
across the file and the warehouse, the insert, the quarantine table and the manifest. So the accounting,
reasons and masking are the DuckDB path's own code; only the per-row statement runs on Spark.

The statement is written once, in DuckDB SQL (``Stage.stage_sql``); :func:`render_stage` parses it with
sqlglot and rewrites the functions whose meaning differs (``docs/scale-out.md``, "Ingestion on Spark"):

- ``try_strptime(v, fmt)``: ``try_to_timestamp`` with the format as a Java pattern (:func:`strptime_pattern`),
  only where the text has the digits the format allows (DuckDB's ``%m`` takes 1-2 digits, Java's ``MM``
  exactly 2; ``M`` takes any number) and white space runs read as one space, as DuckDB does;
- ``timezone(zone, ts)``: DuckDB's pair reads a naive time in a zone or a zone-aware time as naive;
  rewritten to ``to_utc_timestamp`` / ``from_utc_timestamp`` (both keep the spring-forward gap detectable and
  pick an instant the statement's earlier-instant rule then settles, whichever of the two an engine picks);
- ``try_cast(x as timestamptz)``: Spark's cast needs seconds before an offset (``10:00+08:00``), added;
- ``regexp_full_match(x, p)``: ``x rlike '^(?:p)\\z'`` (``$`` would match before a final newline in Java);
- ``list[i]`` (1-based): ``element_at(list, i)`` (Spark's ``[]`` is 0-based);
- ``isfinite(x)``: ``not isnan(x) and abs(x) < 'Infinity'``; ``trunc(x)`` of a number: ``try_cast(x as bigint)``
  (Spark's ``trunc`` is a date function);
- ``read_parquet(...)``: the view ``_landing`` with Spark's own row index of the file.

Patterns are the same text on both engines: the statement uses only what RE2 and Java read alike
(``\\p{Z}``, ``\\x{..}``, classes written out instead of ``\\s``). Bound values stay bound: lists become
``array(...)`` literals and timestamps ``timestamp_ntz`` ones, never SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from engines.sql import parse

if TYPE_CHECKING:
    pass

# strptime directive -> (Java pattern letter, digits the text may have there). DuckDB reads %Y with 1-4 digits,
# %f with 1-6 and the others with 1-2; Java's single letters take any number, so the guard bounds them.
_DIRECTIVES: dict[str, tuple[str, str]] = {
    "Y": ("y", "[0-9]{1,4}"),
    "m": ("M", "[0-9]{1,2}"),
    "d": ("d", "[0-9]{1,2}"),
    "H": ("H", "[0-9]{1,2}"),
    "M": ("m", "[0-9]{1,2}"),
    "S": ("s", "[0-9]{1,2}"),
    "f": ("SSSSSS", "[0-9]{1,6}"),
}
_SPACES = r"[ \t\n\f\r]"


class SparkIngestError(ValueError):
    """A statement or setting the Spark staging cannot render; the file's rows are staged by DuckDB instead."""


def strptime_pattern(fmt: str, key: str = "timestamp_format") -> tuple[str, str]:
    """``fmt`` (strptime) as a Java date-time pattern and the regular expression of texts it may parse.

    Every character that is not a directive is quoted (Java gives ``[``, ``#``, ``{`` meanings); white-space
    runs read as one space (texts are collapsed alike). Directives that touch (``%Y%m%d``) have no digit count
    Java and DuckDB split alike, and are refused, as are directives other than ``%Y %m %d %H %M %S %f``.
    """
    java, guard, i, directive_before = [], [], 0, False
    fmt = re.sub(f"{_SPACES}+", " ", fmt)
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%":
            directive = fmt[i + 1 : i + 2]
            if directive not in _DIRECTIVES:
                raise SparkIngestError(
                    f"{key}: %{directive} is not read on Spark (only {' '.join('%' + d for d in _DIRECTIVES)})"
                )
            if directive_before:
                raise SparkIngestError(f"{key}: directives without a separator ({fmt!r}) are not read on Spark")
            letter, digits = _DIRECTIVES[directive]
            java.append(letter)
            guard.append(digits)
            directive_before = True
            i += 2
            continue
        directive_before = False
        if ch == " ":
            java.append(" ")
            guard.append(f"{_SPACES}+")
        else:
            java.append("''" if ch == "'" else f"'{ch}'")
            guard.append(re.escape(ch))
        i += 1
    return "".join(java), "^" + "".join(guard) + r"\z"


def text_types(schema: Any) -> dict[str, str]:
    """DuckDB's names for the Spark column types whose text :func:`_as_text` writes as DuckDB does."""
    names = {"DoubleType": "DOUBLE", "FloatType": "FLOAT", "TimestampType": "TIMESTAMP WITH TIME ZONE"}
    return {f.name: names[type(f.dataType).__name__] for f in schema.fields if type(f.dataType).__name__ in names}


def _fn(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _ntz(node: exp.Expression) -> exp.Expression:
    return exp.Cast(this=node, to=exp.DataType.build("timestamp_ntz", dialect="spark"))


def _is_utc(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and node.is_string and node.this.upper() == "UTC"


def _timezone(node: exp.Anonymous, raw_types: Mapping[str, str]) -> exp.Expression:
    """DuckDB ``timezone(zone, x)`` pairs as Spark functions (naive UTC in, naive UTC or local out)."""
    zone, value = node.expressions
    inner = value if isinstance(value, exp.Anonymous) and str(value.this).lower() == "timezone" else None
    if _is_utc(zone) and inner is not None and not _is_utc(inner.expressions[0]):
        # local time in a zone -> naive UTC
        return _ntz(
            _fn(
                "to_utc_timestamp", _rewrite(inner.expressions[1], raw_types), _rewrite(inner.expressions[0], raw_types)
            )
        )
    if inner is not None and _is_utc(inner.expressions[0]):
        # naive UTC -> local time in a zone
        return _ntz(_fn("from_utc_timestamp", _rewrite(inner.expressions[1], raw_types), _rewrite(zone, raw_types)))
    if _is_utc(zone):  # a zone-aware time as naive UTC (the session time zone is UTC)
        return _ntz(_rewrite(value, raw_types))
    raise SparkIngestError(f"timezone() form not rendered for Spark: {node.sql('duckdb')[:80]}")


def _strptime(
    node: exp.Expression, text: exp.Expression, fmt: exp.Expression, raw_types: Mapping[str, str]
) -> exp.Expression:
    if not (isinstance(fmt, exp.Placeholder) and fmt.this == "ts_fmt"):
        raise SparkIngestError(f"try_strptime with a format other than $ts_fmt: {node.sql('duckdb')[:80]}")
    text = _rewrite(text, raw_types)
    spaced = exp.RegexpReplace(
        this=text.copy(), expression=exp.Literal.string(f"{_SPACES}+"), replacement=exp.Literal.string(" ")
    )
    parsed = _ntz(_fn("try_to_timestamp", spaced, exp.Placeholder(this="ts_java")))
    guard = exp.RegexpLike(this=text, expression=exp.Placeholder(this="ts_guard"))
    return exp.Case(ifs=[exp.If(this=guard, true=parsed)])


def _as_text(node: exp.Expression, raw_types: Mapping[str, str]) -> exp.Expression | None:
    """A raw column's value as DuckDB writes it as text, where Spark writes it otherwise (else None)."""
    if not (
        isinstance(node, exp.Cast)
        and node.to.this in (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT)
        and isinstance(node.this, exp.Column)
    ):
        return None
    kind = raw_types.get(node.this.name, "")
    text = exp.Cast(this=node.this.copy(), to=exp.DataType.build("string", dialect="spark"))
    if kind == "TIMESTAMP WITH TIME ZONE":  # DuckDB adds the offset (the session zone is UTC on both)
        return _fn("concat", text, exp.Literal.string("+00"))
    if kind in ("DOUBLE", "FLOAT"):  # 'nan'/'inf', not 'NaN'/'Infinity' (other notation may still differ)
        x = node.this
        inf = exp.Cast(this=exp.Literal.string("Infinity"), to=exp.DataType.build("double"))
        return exp.Case(
            ifs=[
                exp.If(this=_fn("isnan", x.copy()), true=exp.Literal.string("nan")),
                exp.If(this=exp.EQ(this=x.copy(), expression=inf), true=exp.Literal.string("inf")),
                exp.If(
                    this=exp.EQ(this=x.copy(), expression=exp.Neg(this=inf.copy())), true=exp.Literal.string("-inf")
                ),
            ],
            default=text,
        )
    return None


def _rewrite(node: exp.Expression, raw_types: Mapping[str, str]) -> exp.Expression:
    """``node`` with every DuckDB-only construct replaced; ``raw_types``: the raw columns' DuckDB types."""
    as_text = _as_text(node, raw_types)
    if as_text is not None:
        return as_text
    if isinstance(node, exp.Anonymous):
        name = str(node.this).lower()
        if name == "timezone":
            return _timezone(node, raw_types)
        if name == "try_strptime":
            return _strptime(node, *node.expressions, raw_types)
        if name == "isfinite":
            x = _rewrite(node.expressions[0], raw_types)
            infinity = exp.Cast(this=exp.Literal.string("Infinity"), to=exp.DataType.build("double"))
            return exp.and_(exp.Not(this=_fn("isnan", x.copy())), exp.LT(this=exp.Abs(this=x), expression=infinity))
    if isinstance(node, exp.StrToTime):  # sqlglot's own node for strptime, should a version parse it so
        return _strptime(node, node.this, node.args["format"], raw_types)
    if isinstance(node, exp.RegexpFullMatch):
        pattern = node.expression
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            raise SparkIngestError(f"regexp_full_match needs a literal pattern: {node.sql('duckdb')[:80]}")
        anchored = exp.Literal.string(f"^(?:{pattern.this})\\z")
        return exp.RegexpLike(this=_rewrite(node.this, raw_types), expression=anchored)
    if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
        return _fn("element_at", _rewrite(node.this, raw_types), _rewrite(node.expressions[0], raw_types))
    if isinstance(node, exp.Trunc) and node.args.get("decimals") is None:
        return exp.TryCast(this=_rewrite(node.this, raw_types), to=exp.DataType.build("bigint"), safe=True)
    if isinstance(node, exp.TryCast) and node.to.this == exp.DataType.Type.TIMESTAMPTZ:
        # Spark reads an offset only after seconds: '10:00+08:00' -> '10:00:00+08:00'.
        text = exp.RegexpReplace(
            this=_rewrite(node.this, raw_types),
            expression=exp.Literal.string(r"^([0-9-]+[T ][0-9]{1,2}:[0-9]{1,2})([zZ+-])"),
            replacement=exp.Literal.string("$1:00$2"),
        )
        return exp.TryCast(this=text, to=exp.DataType.build("timestamp", dialect="spark"), safe=True)
    if (
        isinstance(node, exp.Table)
        and isinstance(node.this, exp.Expression)
        and "read_parquet" in node.sql("duckdb").lower().split("(", 1)[0]
    ):
        return exp.to_table("_landing")
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expression):
            node.set(key, _rewrite(value, raw_types))
        elif isinstance(value, list):
            node.set(key, [_rewrite(v, raw_types) if isinstance(v, exp.Expression) else v for v in value])
    return node


def render_stage(stage_sql: str, raw_types: Mapping[str, str] | None = None) -> tuple[str, frozenset[str]]:
    """The select of ``Stage.stage_sql`` (DuckDB dialect, without hashes) as Spark SQL, and the names of the
    parameters it binds; ``raw_types`` are the DuckDB types of the raw relation's columns (some are written as
    text differently)."""
    tree = parse(stage_sql, "ingestion staging statement")
    select = _rewrite((tree.expression if isinstance(tree, exp.Create) else tree).copy(), raw_types or {})
    names = frozenset(str(p.this) for p in select.find_all(exp.Placeholder) if p.this)
    return select.sql(dialect="spark", comments=False), names


def spark_args(values: Mapping[str, Any], names: set[str]) -> dict[str, Any]:
    """``values`` as Spark SQL parameters: lists as ``array(...)``, datetimes as ``timestamp_ntz`` literals."""
    from pyspark.sql import functions as F

    out: dict[str, Any] = {}
    for name in sorted(names):
        value = values[name]
        if isinstance(value, (list, tuple)):
            # Spark takes array(...) of literals only (no cast); an empty list holds one value no text has
            # (a NUL), so that it stays array<string>.
            out[name] = F.array(*[F.lit(v) for v in value]) if value else F.array(F.lit("\x00"))
        elif isinstance(value, datetime):
            # Naive UTC as ISO text, compared with timestamp_ntz columns: a Python datetime would be read in
            # the driver's local zone, and a cast is not a literal Spark takes as a parameter.
            out[name] = value.isoformat(sep=" ")
        elif value is None:
            out[name] = F.lit(None).cast("string")
        else:
            out[name] = value
    return out
