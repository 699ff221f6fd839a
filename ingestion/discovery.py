"""Landing discovery: which files of a source to read, and why none were found when none were."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ingestion.lines import gzipped
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


class LandingURL(str):
    """A file under ``landing_url`` as Spark's file systems name it (``s3a://bucket/landing/orders/a.csv``)."""

    @property
    def name(self) -> str:
        return self.rsplit("/", 1)[-1]


LandingPath = Path | LandingURL


@dataclass
class Discovery:
    """Files to read in sorted order, and problems worth telling the user (missing dir, empty glob, ...)."""

    files: list[LandingPath] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def skipped_name(name: str) -> bool:
    """Hidden (``.x``, ``_x``, ``~x``) and in-flight (``.tmp``, ``.part``, ...) files are never read."""
    return bool(_SKIP_NAME.search(name))


def _class_end(part: str, start: int) -> int:
    """Index of the ``]`` closing the class opened at ``start``, -1 if none: a ``]`` first (after ``!``) is a
    member, as ``fnmatch`` reads it."""
    k = start + 1
    if k < len(part) and part[k] == "!":
        k += 1
    if k < len(part) and part[k] == "]":
        k += 1
    return part.find("]", k)


def glob_pattern(glob: str) -> re.Pattern[str]:
    """The paths (relative, ``/``-separated) that ``Path.glob(glob)`` yields as files, as one pattern: for a
    listing that does not come from ``pathlib`` (``landing_url``). ``**`` is any number of folders; ``*``,
    ``?`` and ``[...]`` stay within a name."""
    parts = glob.split("/")
    out = []
    for i, part in enumerate(parts):
        if part == "**":
            out.append("(?!)" if i == len(parts) - 1 else "(?:[^/]+/)*")  # a trailing ** yields folders only
            continue
        j, seg = 0, []
        while j < len(part):
            ch = part[j]
            end = _class_end(part, j) if ch == "[" else -1
            if ch == "*":
                seg.append("[^/]*")
            elif ch == "?":
                seg.append("[^/]")
            elif end != -1:
                body = re.sub(r"([\\&~|\[\]])", r"\\\1", part[j + 1 : end])  # literal in a class, as fnmatch
                if body.startswith("!"):
                    body = "^/" + body[1:]  # negated, and never a folder separator
                elif body.startswith("^"):
                    body = "\\" + body  # pathlib reads a leading ^ as itself
                seg.append("[" + body + "]")
                j = end
            else:
                seg.append(re.escape(ch))
            j += 1
        out.append("".join(seg) + ("" if i == len(parts) - 1 else "/"))
    return re.compile("".join(out))


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
        if not p.is_file() or skipped_name(p.name):
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
    return [Path(p) for p in discover(settings, source).files]


def detect_format(path: LandingPath, configured: str) -> str:
    """csv | parquet | jsonl from the config, or from the file extension when ``auto``."""
    if configured != "auto":
        return configured
    name = path.name.lower()
    if gzipped(name):
        name = name[:-3]
    for ext, fmt in _FORMATS:
        if name.endswith(ext):
            return fmt
    raise FileRejected(
        f"cannot tell the format of {path.name} from its extension; name it .csv/.csv.gz/.parquet/.jsonl "
        f"or set sources.<source>.format in the config"
    )
