"""Where a source's landing files are: a local folder (``landing_dir``), or, with ``engine: spark``, a URL only
Spark's file systems read (``landing_url``: ``s3a://``, ``abfss://``, ``hdfs://``; ``engines/spark_landing.py``).

The loader asks a ``Landing`` for what it needs of a file and no more: its name relative to the landing root
(the manifest's key), size and content hash, the first bytes (a CSV header), a Parquet footer (the schema) and,
only for a file DuckDB's readers read (JSON Lines, gzip, a CSV line Spark does not stage), the whole file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ingestion.discovery import Discovery, LandingPath, LandingURL, discover
from ingestion.lines import FileScan, scan_file
from segments.config import Settings

__all__ = ["Landing", "LandingPath", "LandingURL", "LocalLanding"]


class Landing(Protocol):
    """The landing files of a run, wherever they are."""

    def discover(self, source: str) -> Discovery:
        """The files of ``source`` in sorted order, and problems worth telling (see ``discovery.discover``)."""

    def prepare(self, paths: list[LandingPath]) -> None:
        """Before the files' own passes: hash them all at once where that is one job instead of many."""

    def rel(self, path: LandingPath) -> str:
        """The file's path relative to the landing root, ``/``-separated: the manifest's key."""

    def size(self, path: LandingPath) -> int:
        """Size in bytes (FileNotFoundError when it vanished)."""

    def scan(self, path: LandingPath) -> FileScan:
        """Content hash and, when the bytes pass through this process anyway, the physical line counts."""

    def head(self, path: LandingPath) -> Path:
        """A local file that begins as ``path`` does (at least its first MiB): enough for a CSV header."""

    def footer(self, path: LandingPath) -> Path:
        """A local Parquet file with ``path``'s schema: enough to describe its columns, not to read rows."""

    def local(self, path: LandingPath) -> Path:
        """The whole file, local, for DuckDB's readers."""

    def release(self) -> None:
        """After the run: remove the local copies."""


class LocalLanding:
    """``landing_dir``: every file is local already."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.landing_dir.resolve()

    def discover(self, source: str) -> Discovery:
        return discover(self.settings, source)

    def prepare(self, paths: list[LandingPath]) -> None:
        return None

    def rel(self, path: LandingPath) -> str:
        return Path(path).resolve().relative_to(self.root).as_posix()

    def size(self, path: LandingPath) -> int:
        return Path(path).stat().st_size

    def scan(self, path: LandingPath) -> FileScan:
        return scan_file(Path(path))

    def head(self, path: LandingPath) -> Path:
        return Path(path)

    def footer(self, path: LandingPath) -> Path:
        return Path(path)

    def local(self, path: LandingPath) -> Path:
        return Path(path)

    def release(self) -> None:
        return None
