"""Dagster resources: the config file, the warehouse connection and the Spark session, injected by parameter name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from engines.spark import SparkEngine, SparkSettings, spark_session
from models.registry import Registry, config_registry
from segments.config import Settings, load_settings
from segments.warehouse import connect


class SegmentsResource(dg.ConfigurableResource):
    """Settings from ``segments.yaml`` (or ``$SEGMENTS_CONFIG``) and a waiting warehouse connection."""

    config_path: str = ""
    lock_timeout_s: float = 600.0

    def settings(self) -> Settings:
        """Validated settings; fails before any work with an error naming the bad key."""
        return load_settings(self.config_path or None)

    def registry(self) -> Registry:
        """The registry of segmentations under the config file's segmentation rules."""
        settings = self.settings()
        return config_registry(settings.segmentation, settings.windows())

    @contextmanager
    def warehouse(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse file, waiting for another writer up to ``lock_timeout_s``."""
        settings = self.settings()
        with connect(
            settings.warehouse, read_only=read_only, timeout_s=self.lock_timeout_s, memory_limit=settings.memory_limit
        ) as con:
            yield con


class SparkResource(dg.ConfigurableResource):
    """The Spark session of ``engine: spark``, started on first use (never when the engine is duckdb).

    ``master`` local[2] is the tested default; a ``spark://``/``yarn``/``k8s://`` URL, or empty under
    spark-submit, runs the same statements on a cluster. ``staging_dir`` is where the warehouse tables are
    handed to Spark as Parquet (and staged rows handed back): a POSIX path the driver's DuckDB and every executor
    mount (default: ``spark_staging`` beside the warehouse file).
    """

    master: str = "local[2]"
    shuffle_partitions: int = 4
    driver_memory: str = "2g"
    staging_dir: str = ""

    def engine(self) -> SparkEngine:
        """A fresh engine (its own views) on the process's Spark session."""
        settings = SparkSettings(
            master=self.master or None, shuffle_partitions=self.shuffle_partitions, driver_memory=self.driver_memory
        )
        return SparkEngine(spark_session(settings))

    def staging(self, settings: Settings, key: str) -> Path:
        """The staging folder of one run step, e.g. ``<staging_dir>/2026-11-21/features``."""
        root = Path(self.staging_dir) if self.staging_dir else settings.warehouse.parent / "spark_staging"
        return root / key
