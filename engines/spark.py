"""Apache Spark as the engine of the heavy stages: the session settings results depend on, and the engine adapter.

pyspark is an optional extra (``pip install .[spark]``) and needs Java 17; it is imported only here and
only when a session is asked for. Settings that change answers are fixed, not left to the cluster's
defaults: the session time zone is UTC (a DST zone shifts timestamp arithmetic even on timestamp_ntz)
and ANSI mode is on (an overflow is an error, not a wrong number).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from engines.sql import Engine, Statement

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Settings the parity guarantee relies on; a user's `conf` may not override them.
PINNED_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
}


# The JIT compiles Spark's generated code even where one method is large (the JVM skips methods over 8,000
# bytes of bytecode by default, and ingestion's staging statement generates such a method: measured 7.8 s
# -> 4.8 s for 250,000 order lines). A user's own extraJavaOptions replace these.
JVM_OPTIONS = "-XX:-DontCompileHugeMethods"


class SparkUnavailableError(RuntimeError):
    """pyspark or Java is missing; the message says how to install them."""


@dataclass(frozen=True)
class SparkSettings:
    """How to reach Spark. ``master`` local[2] is the tested default; a cluster URL (or ``None`` under
    spark-submit, which sets it) runs the same statements distributed."""

    master: str | None = "local[2]"
    app_name: str = "segments"
    shuffle_partitions: int = 4
    driver_memory: str = "2g"
    conf: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.shuffle_partitions < 1:
            raise ValueError(f"shuffle_partitions must be >= 1, got {self.shuffle_partitions}")
        clash = sorted(set(self.conf) & set(PINNED_CONF))
        if clash:
            raise ValueError(f"spark conf {clash} is fixed by segments (results depend on it): {PINNED_CONF}")


def spark_session(settings: SparkSettings = SparkSettings()) -> SparkSession:
    """A Spark session with the pinned settings (an existing session in this process is reused)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise SparkUnavailableError(
            "engine: spark needs pyspark: pip install '.[spark]' (and Java 17, e.g. openjdk-17-jre-headless)"
        ) from exc
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no reverse-DNS lookup of the host address
    # Python workers (the Parquet writer of engines/spark_publish.py) run this interpreter, which has pyarrow;
    # on a cluster the platform's PYSPARK_PYTHON wins.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(settings.app_name)
    if settings.master:
        builder = builder.master(settings.master)
    conf = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": settings.driver_memory,
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.default.parallelism": str(settings.shuffle_partitions),
        "spark.driver.extraJavaOptions": JVM_OPTIONS,
        "spark.executor.extraJavaOptions": JVM_OPTIONS,
        **settings.conf,
        **PINNED_CONF,
    }
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:
        raise SparkUnavailableError(
            f"could not start Spark ({exc}); Java 17 must be on PATH (java -version), "
            "e.g. apt-get install openjdk-17-jre-headless"
        ) from exc
    session.sparkContext.setLogLevel("ERROR")
    for key, value in PINNED_CONF.items():  # an existing session keeps its conf: set again
        session.conf.set(key, value)
    return session


class SparkEngine:
    """:class:`engines.engine.SqlEngine` on a Spark session; materialized views are checkpointed DataFrames."""

    name: Engine = "spark"

    def __init__(self, session: SparkSession) -> None:
        self.session = session
        self._cached: dict[str, Any] = {}

    def register(self, view: str, table: pa.Table) -> None:
        self._keep(view, self.session.createDataFrame(table))

    def register_parquet(self, view: str, path: Path) -> None:
        self._keep(view, self.session.read.parquet(str(path)), cache=False)

    def create(
        self, view: str, statement: Statement, values: Mapping[str, object], columns: Sequence[str] = ()
    ) -> None:
        frame = self.session.sql(statement.text, args=statement.bind(values))
        self._keep(view, frame.toDF(*columns) if columns else frame)

    def fetch(self, statement: Statement, values: Mapping[str, object]) -> pa.Table:
        return self.session.sql(statement.text, args=statement.bind(values)).toArrow()

    def fetch_view(self, view: str) -> pa.Table:
        return self.session.table(view).toArrow()

    def close(self) -> None:
        """Drop this engine's views and release their cached data (the session stays up)."""
        for view, frame in self._cached.items():
            frame.unpersist()
            self.session.catalog.dropTempView(view)
        self._cached.clear()

    def _keep(self, view: str, frame: Any, *, cache: bool = True) -> None:
        old = self._cached.pop(view, None)
        if old is not None:
            old.unpersist()
        if cache:
            # Materialize now and cut the lineage: a view over a cached DataFrame still carries the whole
            # plan that built it, and the optimizer re-plans it at every reference (minutes for the
            # feature query joined six times).
            frame = frame.localCheckpoint(eager=True)
        frame.createOrReplaceTempView(view)
        self._cached[view] = frame
