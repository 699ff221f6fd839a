"""The SQL path of the engines grades like models.grades when a basis has no data (orders-only data)."""

from __future__ import annotations

import polars as pl
import pytest
from test_models_pipeline import SNAPSHOT, _features

from engines.engine import DuckDBEngine
from engines.pipeline import segment_features
from models.pipeline import segment_customers
from models.settings import load_segmentation_settings

GRADES = ["monetary_grade", "frequency_grade", "engagement_grade", "overall_grade"]


@pytest.mark.parametrize("case", ["no_browsing", "no_positive_spend"])
def test_sql_path_leaves_a_basis_without_data_out_like_the_python_path(case: str) -> None:
    features = _features().with_columns(sessions_90d=pl.lit(0, pl.Int64), add_to_carts_90d=pl.lit(0, pl.Int64))
    if case == "no_positive_spend":
        features = _features().with_columns(monetary=pl.lit(0, pl.Decimal(18, 2)))
    settings = load_segmentation_settings({"clusters": {"enabled": False}})
    python = segment_customers(features, settings, SNAPSHOT)
    sql = segment_features(DuckDBEngine(), features, settings, SNAPSHOT)
    basis = "engagement" if case == "no_browsing" else "monetary"
    assert python.customers[f"{basis}_grade"].null_count() == python.customers.height
    assert sql.customers.select("customer_id", *GRADES).rows() == python.customers.select("customer_id", *GRADES).rows()
    assert (
        [w for w in sql.warnings if w.startswith("grades:")]
        == [w for w in python.warnings if w.startswith("grades:")]
        != []
    )
