"""One Spark session per test process (local[2], one shuffle partition), and both engines as fixtures' values."""

from __future__ import annotations

from functools import cache

from engines.engine import DuckDBEngine, SqlEngine
from engines.spark import SparkEngine, SparkSettings, spark_session


@cache
def _session():
    return spark_session(SparkSettings(master="local[2]", shuffle_partitions=1, driver_memory="1g"))


def make_engine(name: str) -> SqlEngine:
    """A fresh engine: a private in-memory DuckDB, or new views on the shared Spark session."""
    return DuckDBEngine() if name == "duckdb" else SparkEngine(_session())
