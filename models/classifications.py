"""User classifications and tags: rules from config, compiled to one SQL select with bound literals.

A classification is a ``case when <rule 1> then <label 1> ... else <default> end``; a tag is
``coalesce(<rule>, false)``. Rules read the columns of ``customer_segments`` that exist before any
classification runs (features, scores, segments, grades, stage, cluster: the *rule inputs*); tag rules
may also read the classification columns. The select is compiled from the same parse trees for DuckDB
(run here by default) or for Spark SQL (run by ``engines.segmentation`` when ``engine: spark``), so a rule
is written once and its values are bound on both engines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from data_contracts.contracts import Windows, load_output_contract
from models.rules import PSEUDO_COLUMNS, Dialect, Rule, RuleError, SqlParams, compile_rule, matches, to_sql

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from models.settings import SegmentationSettings

# Columns of the static contract that rules never read: they are built from the rules (or after them).
DERIVED_COLUMNS = frozenset({"tags", "overridden_fields"})
TAG_PREFIX = "tag_"


@dataclass(frozen=True)
class CompiledClassification:
    """A classification with its rules parsed and type-checked."""

    name: str
    rules: tuple[tuple[str, Rule], ...]  # (label, rule) in order
    default: str

    def label_for(self, row: Mapping[str, Any]) -> tuple[str, int | None]:
        """The label of ``row`` and the index of the rule that fired (None = the default)."""
        for i, (label, rule) in enumerate(self.rules):
            if matches(rule, row):
                return label, i
        return self.default, None


@dataclass(frozen=True)
class CompiledRules:
    """Every enabled classification and tag of a settings object, compiled."""

    classifications: tuple[CompiledClassification, ...]
    tags: tuple[tuple[str, Rule], ...]  # (tag name, rule)


@cache
def _static_columns(windows: Windows = ()) -> tuple[tuple[str, str, tuple[str, ...] | None], ...]:
    """Columns of the static contract, window columns named from ``windows`` (e.g. ``complaints_60d``)."""
    contract = load_output_contract("customer_segments", dict(windows))
    return tuple((c.name, c.type, c.accepted_values) for c in contract.columns)


def rule_inputs(settings: SegmentationSettings) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """(column -> logical type, column -> accepted values) that classification rules may read."""
    produced = set(settings.classifications) | {f"{c}_name" for c in settings.classifications}
    types: dict[str, str] = {}
    accepted: dict[str, tuple[str, ...]] = {}
    for name, kind, values in _static_columns(settings.window_key):
        if name in DERIVED_COLUMNS or name in produced:
            continue
        types[name] = kind
        if values:
            accepted[name] = tuple(values)
    accepted["rfm_segment"] = settings.rfm.segment_map_obj().keys
    accepted["value_class"] = settings.rfm.value_map_obj().keys
    return types, accepted


def tag_column(name: str) -> str:
    """The boolean column of tag ``name``."""
    return TAG_PREFIX + name


def compile_settings_rules(settings: SegmentationSettings) -> CompiledRules:
    """Parse and type-check every rule; RuleError/ValueError naming the config key on the first problem."""
    types, accepted = rule_inputs(settings)
    static = {name for name, _, _ in _static_columns(settings.window_key)}
    classes: list[CompiledClassification] = []
    for name, cls in settings.active_classifications().items():
        key = f"classifications.{name}"
        if not _is_ident(name):
            raise ValueError(f"{key}: classification names must be lower_snake_case ASCII")
        clash = {name, f"{name}_name"} & (static - {"value_tier", "value_tier_name"})
        if clash or name.startswith(TAG_PREFIX):
            raise ValueError(f"{key}: the name collides with column {sorted(clash) or [name]} of customer_segments")
        rules = tuple(
            (r.label, compile_rule(r.when, types, accepted, where=f"{key}.rules.{i}.when"))
            for i, r in enumerate(cls.rules)
        )
        classes.append(CompiledClassification(name, rules, cls.default))
    if "value_tier" not in settings.active_classifications():
        raise ValueError("classifications.value_tier: the value tier is part of the published contract; edit its rules")
    tag_types = {**types, **{c.name: "string" for c in classes}}
    tag_accepted = {**accepted, **{c.name: tuple(settings.classifications[c.name].labels) for c in classes}}
    tags: list[tuple[str, Rule]] = []
    for name, tag in settings.active_tags().items():
        key = f"tags.{name}"
        if not _is_ident(name):
            raise ValueError(f"{key}: tag names must be lower_snake_case ASCII")
        tags.append((name, compile_rule(tag.when, tag_types, tag_accepted, where=f"{key}.when")))
    return CompiledRules(tuple(classes), tuple(tags))


def _is_ident(name: str) -> bool:
    return name.isascii() and name.replace("_", "a").isalnum() and name[:1].isalpha() and name == name.lower()


_STRING_TYPE = {"duckdb": "varchar", "spark": "string"}


def classification_sql(
    rules: CompiledRules, source: str = "frame", dialect: Dialect = "duckdb"
) -> tuple[str, dict[str, Any]]:
    """One select giving ``customer_id``, every classification key and every tag flag, by customer_id.

    Written for ``dialect`` (DuckDB or Spark SQL) from the same parse trees. Identifiers come from
    validated config names; every literal (rule values and label keys) is bound, never spliced.
    """
    params = SqlParams(dialect=dialect)
    q = params.quote
    cases = []
    for cls in rules.classifications:
        whens = " ".join(f"when {to_sql(rule.tree, params)} then {params.bind(label)}" for label, rule in cls.rules)
        body = f"case {whens} else {params.bind(cls.default)} end" if whens else params.bind(cls.default)
        cases.append(f"cast({body} as {_STRING_TYPE[dialect]}) as {q(cls.name)}")
    tags = [f"coalesce({to_sql(rule.tree, params)}, false) as {q(tag_column(name))}" for name, rule in rules.tags]
    inner = ", ".join(["*", *cases])
    outer = ", ".join([q("customer_id"), *(q(c.name) for c in rules.classifications), *tags])
    order = q("customer_id")
    sql = f"with classified as (select {inner} from {q(source)}) select {outer} from classified order by {order}"
    return sql, params.values


# Runs the compiled select on some engine: (rule input rows, compiled rules) -> rows of classification_sql.
RuleEvaluator = Callable[[pl.DataFrame, "CompiledRules"], pl.DataFrame]


def evaluate_on_duckdb(source: pl.DataFrame, rules: CompiledRules) -> pl.DataFrame:
    """The classification select on a private in-memory DuckDB over ``source``."""
    sql, params = classification_sql(rules)
    con = duckdb.connect()
    try:
        con.register("frame", source.to_arrow())
        return con.sql(sql, params=params).pl()
    finally:
        con.close()


def rule_input_frame(frame: pl.DataFrame, rules: CompiledRules, settings: SegmentationSettings) -> pl.DataFrame:
    """``customer_id`` and the columns the rules read, sorted by customer_id; a rule input the frame lacks
    (a source not delivered) is a typed null column, so the rules on it match nobody."""
    types, _ = rule_inputs(settings)
    used = rule_columns(rules)
    missing = missing_rule_columns(frame, rules, types)
    present = [c for c in frame.columns if c in used and c != "customer_id"]
    return (
        frame.select("customer_id", *present)
        .with_columns(pl.lit(None, dtype=_POLARS_TYPES[types[c]]).alias(c) for c in missing)
        .sort("customer_id")
    )


def apply_classifications(
    frame: pl.DataFrame, settings: SegmentationSettings, evaluate: RuleEvaluator = evaluate_on_duckdb
) -> pl.DataFrame:
    """Add every classification (``<name>``, ``<name>_name``), every ``tag_<name>`` and the ``tags`` list.

    ``frame`` holds one snapshot (``snapshot_date`` is read by the ``age``/``snapshot_year`` columns)
    sorted by ``customer_id``; rows keep their order. The compiled SQL runs where ``evaluate`` runs it
    (DuckDB by default; ``engines.segmentation`` passes the Spark engine's evaluator).
    """
    rules = compile_settings_rules(settings)
    out = evaluate(rule_input_frame(frame, rules, settings), rules)
    if out["customer_id"].to_list() != frame["customer_id"].to_list():
        raise ValueError("apply_classifications: frame must be sorted by customer_id with unique ids")
    new_cols: list[pl.Series] = []
    for cls in rules.classifications:
        zh = {k: v.zh for k, v in settings.classifications[cls.name].labels.items()}
        new_cols.append(out[cls.name].cast(pl.String))
        new_cols.append(out[cls.name].replace_strict(zh, return_dtype=pl.String).alias(f"{cls.name}_name"))
    for name, _ in rules.tags:
        new_cols.append(out[tag_column(name)].cast(pl.Boolean))
    frame = frame.drop([s.name for s in new_cols if s.name in frame.columns]).with_columns(new_cols)
    return frame.with_columns(tags_list_expr([name for name, _ in rules.tags]).alias("tags"))


_POLARS_TYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "integer": pl.Int64(),
    "decimal": pl.Decimal(18, 2),
    "double": pl.Float64(),
    "date": pl.Date(),
    "boolean": pl.Boolean(),
}


def rule_columns(rules: CompiledRules) -> set[str]:
    """Every column some rule reads (the pseudo-columns ``age``/``snapshot_year`` as the columns behind them)."""
    used: set[str] = set()
    for cls in rules.classifications:
        for _, rule in cls.rules:
            used |= rule.columns()
    for _, rule in rules.tags:
        used |= rule.columns()
    if used & {"age", "snapshot_year"}:
        used |= {"snapshot_date", "birth_year"}
    produced = {c.name for c in rules.classifications}
    return used - produced - set(PSEUDO_COLUMNS)


def missing_rule_columns(frame: pl.DataFrame, rules: CompiledRules, types: Mapping[str, str]) -> list[str]:
    """Rule inputs the frame lacks (a source not delivered): read as null, so those rules match nobody."""
    return sorted(c for c in rule_columns(rules) if c in types and c not in frame.columns)


def tags_list_expr(tag_names: list[str]) -> pl.Expr:
    """The sorted list of the names of the tags a row carries (empty list when none)."""
    if not tag_names:
        return pl.lit([], dtype=pl.List(pl.String))
    parts = [pl.when(pl.col(tag_column(n))).then(pl.lit(n)) for n in sorted(tag_names)]
    return pl.concat_list(parts).list.drop_nulls()


def explain_rules(rules: CompiledRules, row: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per classification: the label the rules give ``row`` and the rule that fired (text) or the default."""
    out: dict[str, dict[str, Any]] = {}
    for cls in rules.classifications:
        label, index = cls.label_for(row)
        out[cls.name] = {
            "label": label,
            "rule_index": index,
            "rule": None if index is None else cls.rules[index][1].text,
        }
    return out


__all__ = [
    "CompiledClassification",
    "CompiledRules",
    "RuleError",
    "RuleEvaluator",
    "apply_classifications",
    "classification_sql",
    "compile_settings_rules",
    "evaluate_on_duckdb",
    "explain_rules",
    "rule_input_frame",
    "rule_inputs",
    "tag_column",
]
