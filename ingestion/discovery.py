"""Landing discovery: which files of a source to read, and why none were found when none were."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ingestion.readers import FileRejected
from segments.config import Settings

_SKIP_NAME = re.compile(r"^[._~]|\.(tmp|part|partial|crdownload)$", re.IGNORECASE)
_FORMATS = (
    (".csv", "csv"),
    (".tsv", "csv"),
    (".txt", "csv"),
    (".parquet", "parquet"),
    (".pq", "parquet"),
    (".jsonl", "jsonl"),
    (".ndjson", "jsonl"),
    (".json", "jsonl"),
)


@dataclass
class Discovery:
    """Files to read in sorted order, and problems worth telling the user (missing dir, empty glob, ...)."""

    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def discover(settings: Settings, source: str) -> Discovery:
    """Landing files of ``source``; hidden and in-flight temp files are skipped, escapes are named."""
    src = settings.sources[source]
    root = settings.landing_dir.resolve()
    out = Discovery()
    if not root.is_dir():
        out.problems.append(f"landing_dir {settings.landing_dir} does not exist: create it or fix landing_dir")
        return out
    outside: list[str] = []
    for p in sorted(root.glob(src.glob)):
        if not p.is_file() or _SKIP_NAME.search(p.name):
            continue
        if not p.resolve().is_relative_to(root):  # a symlink (file or folder) pointing outside the landing root
            outside.append(p.relative_to(root).as_posix())
            continue
        out.files.append(p)
    if outside:
        out.problems.append(
            f"sources.{source}.glob {src.glob!r}: {len(outside)} file(s) resolve outside landing_dir {root} "
            f"through a symlink and were skipped ({', '.join(outside[:3])}{', ...' if len(outside) > 3 else ''}); "
            "move them under landing_dir or point landing_dir at their folder"
        )
    elif not out.files:
        out.problems.append(f"sources.{source}.glob {src.glob!r} matched no file in landing_dir {root}")
    return out


def discover_files(settings: Settings, source: str) -> list[Path]:
    """Landing files of ``source`` in sorted order (see ``discover`` for the problems)."""
    return discover(settings, source).files


def detect_format(path: Path, configured: str) -> str:
    """csv | parquet | jsonl from the config, or from the file extension when ``auto``."""
    if configured != "auto":
        return configured
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for ext, fmt in _FORMATS:
        if name.endswith(ext):
            return fmt
    raise FileRejected(
        f"cannot tell the format of {path.name} from its extension; name it .csv/.csv.gz/.parquet/.jsonl "
        f"or set sources.<source>.format in the config"
    )
