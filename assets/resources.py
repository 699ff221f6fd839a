"""Dagster resources: the config file and the warehouse connection, injected by parameter name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

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
        return config_registry(self.settings().segmentation)

    @contextmanager
    def warehouse(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse file, waiting for another writer up to ``lock_timeout_s``."""
        settings = self.settings()
        with connect(
            settings.warehouse, read_only=read_only, timeout_s=self.lock_timeout_s, memory_limit=settings.memory_limit
        ) as con:
            yield con
