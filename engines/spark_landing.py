"""``landing_url``: landing files listed, hashed and read through Spark's file systems (Hadoop's ``FileSystem``).

The driver's Python never opens such a file for what Spark stages: the listing is one call to the file
system, the content hashes one Spark job over every file (``binaryFile``, hashed on the executors), a CSV
header the first MiB, a Parquet schema the footer. Only a file DuckDB's readers read (JSON Lines, gzip, a
CSV file with a line Spark does not stage, one Spark could not stage) is copied to the driver, read, and
removed after the run. A file over ``_MAX_BINARY`` (``binaryFile`` holds a whole file in one value, in a task's
memory) is hashed on the driver from a stream of the file system, a chunk at a time.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import struct
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from engines.spark_stager import engine_failure, hadoop_literal
from ingestion.discovery import Discovery, LandingURL, glob_pattern, skipped_name
from ingestion.landing import LandingPath
from ingestion.lines import FileScan, gzipped, scan_file
from ingestion.loader import StagerUnavailable, safe_error
from segments.config import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_HEAD = (1 << 20) + 2  # the CSV header's limit (``ingestion.lines.first_line``) and its line end
_MAX_BINARY = 128 << 20  # binaryFile reads a file into one value held by a task: larger files are streamed here
_CHUNK = 16 << 20

log = logging.getLogger(__name__)


class SparkLanding:
    """The ``ingestion.landing.Landing`` of ``landing_url``."""

    def __init__(self, settings: Settings, session: Callable[[], SparkSession], work_dir: Path) -> None:
        """``session`` is called on first use; ``work_dir`` holds the local copies of one run (then removed)."""
        assert settings.landing_url is not None
        self.settings = settings
        self.url = settings.landing_url
        self._session = session
        self.work_dir = Path(work_dir)
        self._sizes: dict[LandingURL, int] = {}
        self._hashes: dict[LandingURL, str] = {}
        self._copies: dict[tuple[str, LandingURL], Path] = {}
        self.copied: list[LandingURL] = []  # files copied whole to the driver, in order (the run's metadata)

    # ---- Landing
    def discover(self, source: str) -> Discovery:
        src = self.settings.sources[source]
        out = Discovery()
        try:
            fs, root = self._fs(self.url)
            if not fs.exists(root) or not fs.getFileStatus(root).isDirectory():
                out.problems.append(
                    f"landing_url {self.url} is not a folder Spark can list: create it or fix landing_url"
                )
                return out
            prefix = fs.makeQualified(root).toString().rstrip("/") + "/"
            pattern, found = glob_pattern(src.glob), []
            listing = fs.listFiles(root, True)
            while listing.hasNext():
                status = listing.next()
                full = status.getPath().toString()
                rel = full[len(prefix) :] if full.startswith(prefix) else None
                if rel is None or skipped_name(PurePosixPath(rel).name) or not pattern.fullmatch(rel):
                    continue
                found.append((tuple(rel.split("/")), LandingURL(f"{self.url}/{rel}"), int(status.getLen())))
        except Exception as exc:
            raise StagerUnavailable(f"landing_url {self.url}: Spark could not list it: {safe_error(exc)}") from exc
        for _, url, size in sorted(found):
            self._sizes[url] = size
            out.files.append(url)
        if not out.files:
            out.problems.append(f"sources.{source}.glob {src.glob!r} matched no file in landing_url {self.url}")
        return out

    def prepare(self, paths: list[LandingPath]) -> None:
        """Hash every file below ``binaryFile``'s limit in one Spark job; a failure leaves them to ``scan``."""
        todo = [LandingURL(p) for p in paths if LandingURL(p) not in self._hashes and self.size(p) < _MAX_BINARY]
        if not todo:
            return
        from pyspark.sql import functions as F

        try:
            fs, _ = self._fs(self.url)
            qualified = {fs.makeQualified(self._path(p)).toString(): p for p in todo}
            rows = (
                self._start()
                .read.format("binaryFile")
                .load([hadoop_literal(p) for p in todo])
                .select("path", "length", F.sha2("content", 256).alias("sha256"))
                .collect()
            )
        except Exception as exc:  # a file that vanished or cannot be read: each file's own pass meets it, named
            log.warning(
                "landing_url: hashing %d files in one Spark job failed (%s); each is hashed alone",
                len(todo),
                safe_error(exc),
            )
            return
        for r in rows:
            url = qualified.get(r["path"])
            if url is not None and r["length"] == self._sizes.get(url):
                self._hashes[url] = r["sha256"]

    def rel(self, path: LandingPath) -> str:
        return str(path)[len(self.url) + 1 :]

    def size(self, path: LandingPath) -> int:
        url = LandingURL(path)
        if url not in self._sizes:
            self._sizes[url] = int(self._call(url, lambda fs, p: fs.getFileStatus(p).getLen()))
        return self._sizes[url]

    def scan(self, path: LandingPath) -> FileScan:
        url = LandingURL(path)
        digest = self._hashes.get(url)
        if digest is None and ("file", url) in self._copies:
            return scan_file(self._copies[("file", url)])
        return FileScan(digest if digest is not None else self._stream_hash(url), None)

    def head(self, path: LandingPath) -> Path:
        url = LandingURL(path)
        if gzipped(url.name):  # the header is in the decompressed stream: the whole file
            return self.local(url)
        return self._write("head", url, lambda: self._read(url, 0, min(self.size(url), _HEAD)))

    def footer(self, path: LandingPath) -> Path:
        """``PAR1``, the file's footer, its length and ``PAR1`` again: a Parquet file of no readable row group
        that DuckDB describes. Anything unexpected (not Parquet, truncated) copies the whole file instead, so
        DuckDB's reader words the error as for a local file."""
        url = LandingURL(path)
        size = self.size(url)
        if size >= 12:
            tail = self._read(url, size - 8, 8)
            length = struct.unpack("<i", tail[:4])[0]
            if tail[4:] == b"PAR1" and 0 < length <= size - 12:
                footer = self._read(url, size - 8 - length, length)
                return self._write("footer", url, lambda: b"PAR1" + footer + tail)
        return self.local(url)

    def local(self, path: LandingPath) -> Path:
        url = LandingURL(path)
        key = ("file", url)
        if key not in self._copies:
            dst = self._target("file", url)
            self._call(
                url, lambda fs, p: fs.copyToLocalFile(False, p, self._jvm().org.apache.hadoop.fs.Path(str(dst)), True)
            )
            self._copies[key] = dst
            self.copied.append(url)
        return self._copies[key]

    def release(self) -> None:
        """Remove the run's copies and forget its sizes and hashes: the next run lists and hashes afresh."""
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self._copies.clear()
        self._sizes.clear()
        self._hashes.clear()

    # ---- internals
    def _start(self) -> SparkSession:
        try:
            return self._session()
        except Exception as exc:
            raise StagerUnavailable(f"landing_url needs a Spark session, which could not start: {exc}") from exc

    def _jvm(self) -> Any:
        return self._start()._jvm

    def _path(self, url: str) -> Any:
        return self._jvm().org.apache.hadoop.fs.Path(url)

    def _fs(self, url: str) -> tuple[Any, Any]:
        session = self._start()
        path = self._path(url)
        return path.getFileSystem(session._jsc.hadoopConfiguration()), path

    def _call(self, url: LandingURL, fn: Callable[[Any, Any], Any]) -> Any:
        """``fn(file system, path)``. The session failing is not the file's fault: the run fails and is retried
        (``StagerUnavailable``). Java's FileNotFoundException becomes Python's (the loader's vanished file), any
        other failure an OSError naming the file, which rejects it as an unreadable local file is; with no hash
        recorded, the next run reads it again."""
        try:
            fs, p = self._fs(url)
            return fn(fs, p)
        except StagerUnavailable:
            raise
        except Exception as exc:
            if engine_failure(exc):
                raise StagerUnavailable(
                    f"landing_url: the Spark session failed reading {url}: {safe_error(exc)}"
                ) from exc
            if "java.io.FileNotFoundException" in str(exc):
                raise FileNotFoundError(f"{self.rel(url)} is no longer in landing_url") from exc
            raise OSError(f"{self.rel(url)}: Spark's file system could not read it: {safe_error(exc)}") from exc

    def _stream_hash(self, url: LandingURL) -> str:
        """SHA-256 of the file read through the file system a chunk at a time (no local copy, bounded memory)."""
        size, digest = self.size(url), hashlib.sha256()

        def read(fs: Any, p: Any) -> None:
            utils, stream = self._jvm().org.apache.commons.io.IOUtils, fs.open(p)
            try:
                for offset in range(0, size, _CHUNK):
                    digest.update(bytes(utils.toByteArray(stream, min(_CHUNK, size - offset))))
            finally:
                stream.close()

        self._call(url, read)
        return digest.hexdigest()

    def _read(self, url: LandingURL, offset: int, n: int) -> bytes:
        def read(fs: Any, p: Any) -> bytes:
            stream = fs.open(p)
            try:
                stream.seek(offset)
                return bytes(self._jvm().org.apache.commons.io.IOUtils.toByteArray(stream, n))
            finally:
                stream.close()

        return self._call(url, read) if n else b""

    def _target(self, kind: str, url: LandingURL) -> Path:
        """A fresh local path for ``url``'s ``kind`` copy, keeping its name (readers' messages name the file)."""
        folder = self.work_dir / kind / str(len(self._copies))
        folder.mkdir(parents=True, exist_ok=True)
        return folder / url.name

    def _write(self, kind: str, url: LandingURL, content: Callable[[], bytes]) -> Path:
        key = (kind, url)
        if key not in self._copies:
            dst = self._target(kind, url)
            dst.write_bytes(content())
            self._copies[key] = dst
        return self._copies[key]
