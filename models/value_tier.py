"""Value tier (高价值/潜力/一般/低价值) from ordered first-match rules in config.

A rule matches a customer when every column it lists holds one of the listed values (a null never
matches). Rules are tried in order; the first match sets the tier; customers matching none get the
default tier. Columns and values are validated when settings load (models/settings.py).
"""

from __future__ import annotations

import polars as pl

from models.settings import TierRule, ValueTierSettings


def rule_condition(rule: TierRule) -> pl.Expr:
    """True where every condition of ``rule`` holds (null counts as false)."""
    conds = [pl.col(column).is_in(values).fill_null(False) for column, values in rule.when.items()]
    return pl.all_horizontal(conds)


def value_tier_expr(settings: ValueTierSettings) -> pl.Expr:
    """The tier key of each row: first matching rule, else the default."""
    if not settings.rules:
        return pl.lit(settings.default)
    expr = pl.when(rule_condition(settings.rules[0])).then(pl.lit(settings.rules[0].tier))
    for rule in settings.rules[1:]:
        expr = expr.when(rule_condition(rule)).then(pl.lit(rule.tier))
    return expr.otherwise(pl.lit(settings.default))


def assign_value_tier(frame: pl.DataFrame, settings: ValueTierSettings) -> pl.DataFrame:
    """Add ``value_tier`` (key) and ``value_tier_name`` (display label)."""
    needed = sorted({c for rule in settings.rules for c in rule.when})
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"value_tier.rules use columns {missing} that the frame does not have")
    return frame.with_columns(value_tier_expr(settings).alias("value_tier")).with_columns(
        pl.col("value_tier").replace_strict(settings.labels, return_dtype=pl.String).alias("value_tier_name")
    )
