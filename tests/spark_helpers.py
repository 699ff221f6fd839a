"""One Spark session per test process (local[2], one shuffle partition, UI off); both engines for fixtures."""

from __future__ import annotations

import threading
from typing import Any

from engines.engine import DuckDBEngine, SqlEngine
from engines.spark import JVM_OPTIONS, SparkEngine, SparkSettings, spark_session

# The JIT's first tier only: tests run many short queries once, where C2 compilation competes with the work
# for the two cores (measured: session start 14 s -> 8 s, the feature query 12 s -> 8 s warm). Results do
# not depend on the JIT.
_TEST_JVM = f"-XX:TieredStopAtLevel=1 -XX:+UseSerialGC {JVM_OPTIONS}"
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


def _warm_python_workers() -> None:
    """Start the session and its Python worker (which the published-file writer runs in) with a one-row job."""

    def passthrough(batches: Any) -> Any:
        import pyarrow.parquet  # noqa: F401  (the writer's import, done once per worker)

        yield from batches

    _session().range(1).mapInArrow(passthrough, "id long").collect()


def start_spark_in_background(*, python_workers: bool = False) -> None:
    """Start the session (JVM launch, ~8 s), and with ``python_workers`` its Python worker (~2-5 s), on a
    thread while the caller does DuckDB work; the first ``make_engine("spark")`` then waits for it instead
    of starting it."""
    target = _warm_python_workers if python_workers else _session
    threading.Thread(target=target, name="spark-start", daemon=True).start()


def make_engine(name: str) -> SqlEngine:
    """A fresh engine: a private in-memory DuckDB, or new views on the shared Spark session."""
    return DuckDBEngine() if name == "duckdb" else SparkEngine(_session())
