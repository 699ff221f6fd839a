"""One source of SQL for two engines: DuckDB statements rendered for Spark with sqlglot, plus a portability lint.

The statements are written once, in DuckDB SQL, one per ``.sql`` file. :func:`render` returns them unchanged
for DuckDB and transpiled for Spark SQL, with two fixes sqlglot does not make on its own (``date_diff``
arguments cast to DATE, ``arg_max``/``arg_min`` skipping NULL arguments as DuckDB does). Constructs that
give a *different answer without an error* on one engine are refused by :func:`lint` before anything runs;
``FORBIDDEN`` is that list and ``docs/scale-out.md`` explains each entry (a test keeps the two in step).

Parameters stay bound: ``$name`` in DuckDB becomes ``:name`` in Spark, and both engines take the same
Python values (``spark.sql(text, args=...)``). Values never enter the text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import sqlglot
from sqlglot import exp

Engine = Literal["duckdb", "spark"]
ENGINES: tuple[str, ...] = ("duckdb", "spark")

# Construct key -> why it is refused (what goes wrong, and what to write instead).
FORBIDDEN: dict[str, str] = {
    "epoch": "epoch()/epoch_ms()/extract(epoch) become UNIX_TIMESTAMP (whole seconds) or the inverse "
    "function on Spark; use date_diff('microsecond', a, b)",
    "log": "log(x) is log10 in DuckDB and ln in Spark; write ln(x) or log10(x)",
    "day_of_week": "dayofweek/isodow/week/yearweek number days and weeks differently; derive from a DATE "
    "difference to a known Monday",
    "ordered_array_agg": "array_agg(x ORDER BY y) loses its ORDER BY and list() keeps NULLs only in DuckDB; "
    "rank with row_number() instead",
    "quantile": "quantile_cont/quantile_disc/percentile fail or interpolate differently; rank distinct "
    "values with window sums",
    "columns_star": "COLUMNS(...) does not exist in Spark; name the columns",
    "qualify": "QUALIFY is rewritten to a subquery whose helper column leaks into SELECT *; filter a "
    "row_number() in a subquery",
    "clock": "now()/current_date/current_timestamp read the wall clock; pass the snapshot date as a parameter",
    "engine_function": "hash()/random()/range()/len()/list functions are engine-specific; compute in SQL "
    "both engines define, or in Python",
    "round": "round() rounds half-even on DuckDB decimals and half-up on Spark; use floor(x + 0.5) in integer cents",
    "interval": "DATE - INTERVAL is a TIMESTAMP in DuckDB and a DATE in Spark; pass window bounds as DATE parameters",
    "day_diff_unit": "date_diff units other than 'day' (on DATEs) and 'microsecond' count boundaries in "
    "DuckDB and elapsed units in Spark",
    "day_diff_args": "date_diff('day', ...) on TIMESTAMPs counts elapsed days in Spark; cast both sides "
    "to DATE or use *_date columns",
    "decimal_division": "a division of decimals keeps a decimal scale in Spark and goes through double in "
    "DuckDB; cast both operands to DOUBLE",
    "fractional_literal": "a literal such as 1.5 is a DECIMAL whose arithmetic differs between engines; "
    "write cast(1.5 as double) or cast(... as decimal(p, s))",
    "double_to_integer": "cast(double as bigint) rounds in DuckDB and truncates in Spark; floor() or ceil() first",
    "double_sum": "sum(cast(... as double)) depends on summation order; sum DECIMALs or integers",
}

_EPOCH = (exp.TimeToUnix, exp.UnixToTime, exp.UnixSeconds)
_DAY_OF_WEEK = (exp.DayOfWeek, exp.DayOfWeekIso, exp.Week, exp.WeekOfYear, exp.YearOfWeek)
_QUANTILE = (exp.PercentileCont, exp.PercentileDisc, exp.Quantile, exp.ApproxQuantile)
_CLOCK = (exp.CurrentDate, exp.CurrentTimestamp, exp.CurrentTime, exp.CurrentDatetime)
_ENGINE_FUNCTIONS = (exp.Rand, exp.GenerateSeries, exp.Length, exp.ArraySize)
_ENGINE_NAMES = frozenset(
    {"now", "hash", "len", "list", "range", "yearweek", "epoch_us", "epoch_ns", "today", "gen_random_uuid"}
)
_INTEGER_TYPES = (exp.DataType.Type.BIGINT, exp.DataType.Type.INT, exp.DataType.Type.SMALLINT)
_FLOAT_TYPES = (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT)


class SqlPortabilityError(ValueError):
    """A statement uses a construct that gives different answers on DuckDB and Spark."""


@dataclass(frozen=True)
class Finding:
    """One refused construct: which rule, the offending SQL and its line in the source."""

    rule: str
    line: int
    sql: str

    def message(self, source: str) -> str:
        return f"{source}:{self.line}: {self.sql!r} is not portable ({self.rule}): {FORBIDDEN[self.rule]}"


def _line_of(node: exp.Expression, text: str) -> int:
    """Best-effort source line of ``node``: the first line containing its leading keyword or name."""
    needle = node.sql("duckdb").split("(")[0].split(" ")[0].lower()
    for number, line in enumerate(text.splitlines(), start=1):
        if needle and needle in line.lower() and not line.lstrip().startswith("--"):
            return number
    return 0


def _is_cast_to(node: exp.Expression, types: tuple[exp.DataType.Type, ...]) -> bool:
    return isinstance(node, exp.Cast | exp.TryCast) and node.to.this in types


def _is_date_expr(node: exp.Expression) -> bool:
    """DATE by construction: cast(... as date), a ``*_date`` column, a DATE parameter, or lag/lead of one."""
    if _is_cast_to(node, (exp.DataType.Type.DATE,)):
        return True
    if isinstance(node, exp.Column):
        return node.name.endswith("_date")
    if isinstance(node, exp.Window):
        return _is_date_expr(node.this)
    if isinstance(node, exp.Lag | exp.Lead | exp.Min | exp.Max | exp.Coalesce):
        return _is_date_expr(node.this)
    return False


def _under(node: exp.Expression, kinds: tuple[type, ...], stop: exp.Expression) -> bool:
    parent = node.parent
    while parent is not None and parent is not stop:
        if isinstance(parent, kinds):
            return True
        parent = parent.parent
    return False


def _findings(tree: exp.Expression) -> list[tuple[str, exp.Expression]]:
    found: list[tuple[str, exp.Expression]] = []
    for node in tree.walk():
        if isinstance(node, _EPOCH) or (
            isinstance(node, exp.Extract | exp.Anonymous)
            and "epoch" in node.sql("duckdb").lower().split("(", 1)[-1][:12]
        ):
            found.append(("epoch", node))
        elif isinstance(node, exp.Log):
            found.append(("log", node))
        elif isinstance(node, _DAY_OF_WEEK):
            found.append(("day_of_week", node))
        elif isinstance(node, exp.ArrayAgg):
            found.append(("ordered_array_agg", node))
        elif isinstance(node, _QUANTILE):
            found.append(("quantile", node))
        elif isinstance(node, exp.Columns):
            found.append(("columns_star", node))
        elif isinstance(node, exp.Select) and node.args.get("qualify"):
            found.append(("qualify", node))
        elif isinstance(node, _CLOCK):
            found.append(("clock", node))
        elif isinstance(node, _ENGINE_FUNCTIONS) or (
            isinstance(node, exp.Anonymous) and str(node.this).lower() in _ENGINE_NAMES
        ):
            found.append(("engine_function", node))
        elif isinstance(node, exp.Round):
            found.append(("round", node))
        elif isinstance(node, exp.Interval):
            found.append(("interval", node))
        elif isinstance(node, exp.DateDiff):
            found.extend(_date_diff_findings(node))
        elif isinstance(node, exp.Div):
            if not (_is_cast_to(node.left, _FLOAT_TYPES) and _is_cast_to(node.right, _FLOAT_TYPES)):
                found.append(("decimal_division", node))
        elif isinstance(node, exp.Literal) and not node.is_string and "." in node.this:
            if not isinstance(node.parent, exp.Cast):
                found.append(("fractional_literal", node))
        elif _is_cast_to(node, _INTEGER_TYPES):
            inner = [n for n in node.this.walk() if isinstance(n, exp.Div) or _is_cast_to(n, _FLOAT_TYPES)]
            if any(not _under(n, (exp.Floor, exp.Ceil), node) for n in inner):
                found.append(("double_to_integer", node))
        elif isinstance(node, exp.Sum) and _is_cast_to(node.this, _FLOAT_TYPES):
            found.append(("double_sum", node))
    return found


def _date_diff_findings(node: exp.DateDiff) -> list[tuple[str, exp.Expression]]:
    unit = (node.unit.name if node.unit is not None else "day").lower()
    if unit == "microsecond":
        return []
    if unit != "day":
        return [("day_diff_unit", node)]
    if not (_is_date_expr(node.this) and _is_date_expr(node.expression)):
        return [("day_diff_args", node)]
    return []


def parse(sql: str, source: str = "<sql>") -> exp.Expression:
    """The statement's syntax tree (DuckDB dialect); a parse error names ``source``."""
    try:
        return sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as error:
        raise SqlPortabilityError(f"{source}: not valid DuckDB SQL: {error}") from None


def lint(sql: str, source: str = "<sql>") -> list[Finding]:
    """Every construct of ``sql`` on the forbidden list, in source order (empty when portable)."""
    found = [
        Finding(rule, _line_of(node, sql), node.sql("duckdb")[:80]) for rule, node in _findings(parse(sql, source))
    ]
    return sorted(found, key=lambda f: (f.line, f.rule))


def check_portable(sql: str, source: str = "<sql>") -> None:
    """Raise SqlPortabilityError listing every non-portable construct of ``sql``."""
    findings = lint(sql, source)
    if findings:
        raise SqlPortabilityError("\n".join(f.message(source) for f in findings))


def _spark_fixes(node: exp.Expression) -> exp.Expression:
    """Rewrites sqlglot leaves to us: DATE casts inside date_diff('day'), NULL-skipping arg_max/arg_min."""
    if isinstance(node, exp.DateDiff) and (node.unit is None or node.unit.name.lower() == "day"):
        for key in ("this", "expression"):
            arg = node.args[key]
            if not _is_cast_to(arg, (exp.DataType.Type.DATE,)):
                node.set(key, exp.cast(arg.copy(), exp.DataType.build("date")))
    if isinstance(node, exp.ArgMax | exp.ArgMin) and not isinstance(node.parent, exp.Filter):
        keep = exp.and_(
            exp.Not(this=exp.Is(this=node.this.copy(), expression=exp.Null())),
            exp.Not(this=exp.Is(this=node.expression.copy(), expression=exp.Null())),
        )
        return exp.Filter(this=node.copy(), expression=exp.Where(this=keep))
    return node


def render(sql: str, engine: Engine, source: str = "<sql>") -> str:
    """``sql`` (DuckDB dialect) for ``engine``: checked by :func:`lint`, then as is or transpiled to Spark."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r} (config key: engine)")
    check_portable(sql, source)
    if engine == "duckdb":
        return sql
    tree = parse(sql, source).transform(_spark_fixes)
    return tree.sql(dialect="spark", pretty=True, comments=False)


@dataclass(frozen=True)
class Statement:
    """One rendered statement: its text for one engine and the names of the parameters it binds."""

    source: str
    engine: Engine
    text: str
    parameters: frozenset[str]

    def bind(self, values: Mapping[str, object]) -> dict[str, object]:
        """The subset of ``values`` the statement uses (DuckDB refuses unused parameters)."""
        missing = sorted(self.parameters - values.keys())
        if missing:
            raise ValueError(f"{self.source}: parameters without a value: {missing}")
        return {name: values[name] for name in sorted(self.parameters)}


def parameters(sql: str, source: str = "<sql>") -> frozenset[str]:
    """Names of the ``$name`` parameters of ``sql``."""
    return frozenset(str(p.this) for p in parse(sql, source).find_all(exp.Placeholder) if p.this)


@cache
def _template(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def load_statement(folder: Path, name: str, engine: Engine, **identifiers: str) -> Statement:
    """``folder/<name>.sql`` rendered for ``engine``.

    ``identifiers`` fill ``{placeholders}`` of the file; they must be SQL built from validated identifiers
    only (the callers quote config column names checked against the feature columns), never values.
    """
    path = Path(folder) / f"{name}.sql"
    return _render_cached(str(path), _template(path), engine, tuple(sorted(identifiers.items())))


@cache
def _render_cached(source: str, template: str, engine: Engine, identifiers: tuple[tuple[str, str], ...]) -> Statement:
    text = template.format(**dict(identifiers)) if identifiers else template
    return Statement(source, engine, render(text, engine, source), parameters(text, source))
