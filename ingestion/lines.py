"""Physical lines of a landing file: one pass for hash and line counts, and a line-exact CSV record splitter.

A physical line ends at LF, CRLF or a lone CR (classic Mac files). The fast CSV path trusts DuckDB only
when its record count matches the physical line count; every other file goes through ``split_csv``,
which accounts for every physical line: part of a record, a blank line, or a bad line (quarantined
with its own number). A quote that never closes costs its line only: reading resumes on the next line.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

_EOL = re.compile(rb"\r\n|\r|\n")
_CHUNK = 1 << 22
_BOM = "\ufeff"


def gzipped(name: str) -> bool:
    """Whether a landing file of this name is gzip-compressed: its lines are in the decompressed stream."""
    return name.lower().endswith(".gz")


def open_bytes(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed when it is gzipped."""
    return gzip.open(path, "rb") if gzipped(path.name) else open(path, "rb")


@dataclass(frozen=True)
class LineCounts:
    """Physical lines of a byte stream and whether any of them is blank (two line ends in a row)."""

    lines: int
    has_blank: bool


class _Counter:
    """Counts line ends over chunks, a CRLF split across two chunks included."""

    def __init__(self) -> None:
        self.lf = self.cr = self.crlf = self.blank = 0
        self.tail = b""

    def feed(self, chunk: bytes) -> None:
        cr = chunk.count(b"\r")
        self.lf += chunk.count(b"\n")
        self.cr += cr
        pairs: tuple[bytes, ...] = (b"\n\n",)
        if cr or self.tail.endswith(b"\r"):  # CR line ends: count CRLF pairs, look for CR blank lines too
            self.crlf += chunk.count(b"\r\n") + (self.tail.endswith(b"\r") and chunk.startswith(b"\n"))
            pairs = (b"\n\n", b"\r\r", b"\n\r\n")
        if not self.blank:  # only whether any line is blank matters: stop looking once one is found
            edge = self.tail + chunk[:2]
            self.blank += sum(chunk.count(p) + edge.count(p) for p in pairs)
        self.tail = (self.tail + chunk[-3:])[-3:]

    def result(self) -> LineCounts:
        last = self.tail[-1:]
        ends = self.lf + self.cr - self.crlf
        return LineCounts(ends + (1 if last and last not in b"\r\n" else 0), bool(self.blank))


@dataclass(frozen=True)
class FileScan:
    """What one streamed pass over a file's bytes tells: its hash and, unless compressed, its lines."""

    sha256: str
    counts: LineCounts | None  # None for .gz: the lines are in the decompressed stream


def scan_file(path: Path) -> FileScan:
    """Content hash and physical line count in one pass (the line count checks CSV record numbering)."""
    h = hashlib.sha256()
    counter = _Counter()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
            counter.feed(chunk)
    return FileScan(h.hexdigest(), None if gzipped(path.name) else counter.result())


def count_lines(path: Path) -> LineCounts:
    """Physical lines of the (decompressed) file."""
    counter = _Counter()
    with open_bytes(path) as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            counter.feed(chunk)
    return counter.result()


def iter_lines(path: Path) -> Iterator[bytes]:
    """Physical lines of the (decompressed) file without their line ends."""
    rest = b""
    with open_bytes(path) as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            buf = rest + chunk
            # A CR at the very end may be the first half of a CRLF: keep it for the next chunk.
            cut = len(buf) - 1 if buf.endswith(b"\r") else len(buf)
            pos = 0
            for m in _EOL.finditer(buf, 0, cut):
                yield buf[pos : m.start()]
                pos = m.end()
            rest = buf[pos:]
    if rest.endswith(b"\r"):
        rest = rest[:-1]
        yield rest
    elif rest:
        yield rest


def first_line(path: Path, limit: int = 1 << 20) -> bytes | None:
    """The first physical line (without its end), or None when none ends within ``limit`` bytes."""
    with open_bytes(path) as fh:
        head = fh.read(limit + 2)
    m = _EOL.search(head)
    if m is None:
        return head if len(head) <= limit else None
    return head[: m.start()]


def decode_line(raw: bytes, first: bool = False) -> tuple[str, bool]:
    """UTF-8 text of a line (BOM stripped on the first line) and whether it decoded cleanly."""
    try:
        text = raw.decode("utf-8")
        ok = True
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace").replace("\ufffd", "?")
        ok = False
    if first and text.startswith(_BOM):
        text = text[1:]
    return text, ok


@dataclass
class SplitCsv:
    """Records of a CSV body with their physical start lines, and the lines that are not records."""

    lines: list[int] = field(default_factory=list)  # start line of each good record
    records: list[list[str]] = field(default_factory=list)
    bad: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, reason)
    blank_lines: int = 0
    multi_line: list[tuple[int, int]] = field(default_factory=list)  # (first, last) line of multi-line records
    physical_lines: int = 0

    @property
    def lines_accounted(self) -> int:
        """Header + blank lines + lines of good records + bad lines: must equal ``physical_lines``."""
        spans = sum(b - a for a, b in self.multi_line)
        return 1 + self.blank_lines + len(self.lines) + spans + len(self.bad)


def _parse(text: str, delimiter: str) -> list[str]:
    return next(csv.reader([text], delimiter=delimiter, quotechar='"', doublequote=True, strict=True))


def _swallows_records(inner: list[str], delimiter: str, n_fields: int) -> bool:
    """True when a line inside a quoted multi-line value is itself a complete record: a stray quote, not a
    value with line breaks (a comment whose lines each hold exactly the header's field count is the price)."""
    for text in inner:
        try:
            if text and len(_parse(text, delimiter)) == n_fields:
                return True
        except csv.Error:
            continue
    return False


def split_csv(path: Path, delimiter: str, n_fields: int) -> SplitCsv:
    """Split the body (after the header line) into records, one physical line at a time.

    A line with an odd number of quotes opens a quoted value that continues on the next lines until the
    quotes balance. If they never balance, or the joined record does not have ``n_fields`` fields, only
    the opening line is quarantined and reading resumes on the line after it, so one stray quote never
    swallows the rest of the file. A multi-line value whose inner lines are complete records on their own
    is taken for two stray quotes, not a value with line breaks: the opening line is quarantined the same way.
    """
    csv.field_size_limit(1 << 30)
    raw = list(iter_lines(path))
    out = SplitCsv(physical_lines=len(raw))
    texts: list[str] = []
    clean: list[bool] = []
    for i, b in enumerate(raw):
        t, ok = decode_line(b, first=i == 0)
        texts.append(t)
        clean.append(ok)
    del raw
    odd = [t.count('"') % 2 == 1 for t in texts]
    n, k = len(texts), 1
    while k < n:
        text, line = texts[k], k + 1
        if text == "":
            out.blank_lines += 1
            k += 1
            continue
        end = k
        if odd[k]:
            balanced = False
            while end + 1 < n:
                end += 1
                if odd[end]:
                    balanced = True
                    break
            if not balanced:
                out.bad.append(
                    (
                        line,
                        text,
                        "unparseable line (unbalanced quote): a quote opened on this line is "
                        "never closed; reading resumes on the next line",
                    )
                )
                k += 1
                continue
        if end > k and _swallows_records(texts[k + 1 : end], delimiter, n_fields):
            out.bad.append(
                (
                    line,
                    text,
                    f"unparseable line (unbalanced quote): a quote opened on this line closes on line {end + 1} "
                    "and would swallow the complete records between; reading resumes on the next line",
                )
            )
            k += 1
            continue
        if not all(clean[k : end + 1]):
            out.bad.append(
                (line, text, "unparseable line (invalid encoding): not valid UTF-8; re-export the file as UTF-8")
            )
            k += 1
            continue
        joined = "\n".join(texts[k : end + 1])
        try:
            fields = _parse(joined, delimiter)
        except csv.Error as exc:
            out.bad.append((line, text, f"unparseable line (malformed quoting): {exc}"))
            k += 1
            continue
        if len(fields) != n_fields:
            where = f"the quoted value from line {line} to line {end + 1}" if end > k else "the line"
            out.bad.append(
                (
                    line,
                    text,
                    f"unparseable line (wrong number of fields): {where} has {len(fields)} field(s), "
                    f"the header {n_fields}",
                )
            )
            k += 1
            continue
        out.lines.append(line)
        out.records.append(fields)
        if end > k:
            out.multi_line.append((line, end + 1))
        k = end + 1
    return out
