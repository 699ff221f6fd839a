"""Classifications and tags on an engine: the rule compiler's select, in the engine's dialect, run there.

``models.classifications`` compiles every rule from its parse tree into one select (DuckDB or Spark SQL,
values bound on both) and turns the rows it returns into the published columns; this module only hands
the rule inputs to the engine and runs the select there. The rule inputs are the assembled per-customer
rows (features, scores, segments, grades, stage, cluster) restricted to the columns the rules read: the
segment-map lookups that produce some of them run on the driver (``models.pipeline``), so these columns
are registered with the engine rather than read from a table the engine already holds.
"""

from __future__ import annotations

import polars as pl

from engines.engine import SqlEngine
from engines.sql import Statement
from models.classifications import CompiledRules, classification_sql

RULE_INPUTS_VIEW = "rule_inputs"
_UNSIGNED = (pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)


def evaluate_rules_on_engine(engine: SqlEngine, source: pl.DataFrame, rules: CompiledRules) -> pl.DataFrame:
    """The rows of ``classification_sql`` for ``source`` (customer_id and the rule inputs) computed on
    ``engine``: ``customer_id``, one label column per classification, one ``tag_<name>`` flag per tag."""
    sql, values = classification_sql(rules, source=RULE_INPUTS_VIEW, dialect=engine.name)
    # Spark's Arrow reader has no unsigned integers; the values fit Int64 unchanged.
    source = source.with_columns(pl.col(c).cast(pl.Int64) for c, t in source.schema.items() if t in _UNSIGNED)
    engine.register(RULE_INPUTS_VIEW, source.to_arrow())
    statement = Statement("classifications and tags (models.classifications)", engine.name, sql, frozenset(values))
    return pl.from_arrow(engine.fetch(statement, values))
