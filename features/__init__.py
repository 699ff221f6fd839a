"""Feature library: pure functions over a DuckDB connection and an explicit snapshot date (no Dagster)."""

from features.customer_features import (
    DEFAULT_TABLE,
    FeatureError,
    FeatureParams,
    anonymous_browsing_counts,
    build_customer_features,
    customer_features_frame,
    output_columns,
)

__all__ = [
    "DEFAULT_TABLE",
    "FeatureError",
    "FeatureParams",
    "anonymous_browsing_counts",
    "build_customer_features",
    "customer_features_frame",
    "output_columns",
]
