"""One Spark session per test process (local[2], one shuffle partition, UI off); both engines for fixtures."""

from __future__ import annotations

import threading
from typing import Any

from engines.engine import DuckDBEngine, SqlEngine
from engines.spark import SparkEngine, SparkSettings, spark_session

# The JIT's first tier only: tests run many short queries once, where C2 compilation competes with the work
# for the two cores (measured: session start 14 s -> 8 s, the feature query 12 s -> 8 s warm). Results do
# not depend on the JIT.
_TEST_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
_LOCK = threading.Lock()
_SESSION: list[Any] = []


def _session() -> Any:
    with _LOCK:
        if not _SESSION:
            settings = SparkSettings(
                master="local[2]",
                shuffle_partitions=1,
                driver_memory="1g",
                conf={"spark.driver.extraJavaOptions": _TEST_JVM},
            )
            _SESSION.append(spark_session(settings))
        return _SESSION[0]


def start_spark_in_background() -> None:
    """Start the session (JVM launch, ~8 s) on a thread while the caller does DuckDB work; the first
    ``make_engine("spark")`` then waits for it instead of starting it."""
    threading.Thread(target=_session, name="spark-start", daemon=True).start()


def make_engine(name: str) -> SqlEngine:
    """A fresh engine: a private in-memory DuckDB, or new views on the shared Spark session."""
    return DuckDBEngine() if name == "duckdb" else SparkEngine(_session())
