"""Fuzz test of the readers: random bytes, quoting, line endings, JSON lines and Parquet schemas.

Every generated file must end loaded or rejected, with accounting that adds up against the warehouse
(table rows, quarantine rows), line numbers inside the file, and never an exception out of ingestion.
Hypothesis runs derandomized (same examples every run) with a bounded number of examples.
"""

from __future__ import annotations

import gzip
import io
import json
import tempfile
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.lines import count_lines
from ingestion.loader import ingest_source
from segments.config import settings_from_dict

RUN_TS = datetime(2026, 11, 22, 12)
FUZZ = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
COLUMNS = ["order_id", "customer_id", "order_ts", "amount", "line_id", "category", "note"]

_field_chars = st.sampled_from([*'ab1,;"\t \r\n.-:9\u3000\u00a0é中', "\ufeff", "¥"])
_field = st.one_of(
    st.text(_field_chars, max_size=8),
    st.sampled_from(["o1", "c1", "2026-11-21 00:30:00", "2026-11-21 00:30:00 CST", "10.005", "1,234.50", "", '""']),
)
_eol = st.sampled_from(["\n", "\r\n", "\r"])


def _settings(root: Path):
    return settings_from_dict(
        {
            "landing_dir": str(root / "landing"),
            "warehouse": str(root / "w.duckdb"),
            "time_zone": "America/New_York",
            "sources": {"orders": {"glob": "orders/*"}},
        },
        base_dir=root,
    )


def _ingest_one(name: str, content: bytes) -> None:
    """Ingest one file in a fresh landing zone and check the accounting against the warehouse."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "landing" / "orders" / name
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
        con = duckdb.connect()
        con.execute("set TimeZone = 'UTC'")
        try:
            report = ingest_source(con, _settings(root), "orders", run_id="fuzz", run_ts=RUN_TS)
            [f] = report.files
            assert f.status in ("loaded", "rejected"), f
            assert f.balanced, f
            if f.status == "rejected":
                assert f.error and f.rows_loaded == 0
            table = con.execute("select count(*) from orders").fetchall()[0][0]
            q = con.execute("select count(*), count(distinct line), min(line), max(line) from quarantine").fetchall()[0]
            assert table == f.rows_loaded and q[0] == f.rows_quarantined
            assert q[0] == q[1], "one quarantine row per line"
            if not name.endswith(".csv"):  # typed sources: nested values never become ids or text
                ids = con.execute("select order_id, customer_id, category from orders").fetchall()
                assert not [v for r in ids for v in r if v and v[0] in "[{"], ids
            lines = [r[0] for r in con.execute("select _line from orders").fetchall()]
            assert len(set(lines)) == len(lines)
            if f.status == "loaded" and name.endswith(".csv"):
                physical = count_lines(path).lines
                assert f.rows_read <= physical - 1  # the header is line 1
                quarantined = {r[0] for r in con.execute("select line from quarantine").fetchall()}
                assert not quarantined & set(lines)
                assert all(2 <= n <= physical for n in quarantined | set(lines))
        finally:
            con.close()


@FUZZ
@given(data=st.binary(max_size=400), gz=st.booleans())
def test_random_bytes_never_escape_ingestion(data, gz):
    _ingest_one("a.csv.gz" if gz else "a.csv", gzip.compress(data) if gz else data)


VALID = {
    "order_id": ["o1", "o2", "o3", " o4\t"],
    "customer_id": ["c1", "c2", "\u3000c1", "123.0"],
    "order_ts": ["2026-11-21 00:30:00", "2026-11-21T00:30:00+08:00", "2026-03-08 02:30:00", "2026-11-20 10:00 UTC"],
    "amount": ["1", "10.50", "0", "10.005", "-1"],
    "line_id": ["1", "2", "1.0"],
    "category": ["a", "中文", ""],
    "note": ["x", "multi\nline", 'say "hi"'],
}
REQUIRED = ["order_id", "customer_id", "order_ts", "amount"]


@FUZZ
@given(
    optional=st.lists(st.sampled_from(["line_id", "category", "note"]), max_size=3, unique=True),
    data=st.data(),
    eol=_eol,
    quote=st.sampled_from(["none", "all", "some"]),
    bom=st.booleans(),
)
def test_random_csv_quoting_and_line_endings_are_accounted(optional, data, eol, quote, bom):
    header = [*REQUIRED, *optional]
    cell = {c: st.one_of(st.sampled_from(VALID[c]), st.sampled_from(VALID[c]), _field) for c in header}
    rows = data.draw(
        st.lists(st.tuples(st.tuples(*(cell[c] for c in header)), st.sampled_from([-1, 0, 0, 0, 0, 1])), max_size=10)
    )

    def fmt(v: str) -> str:
        quoted = '"' + v.replace('"', '""') + '"'
        return quoted if quote == "all" or (quote == "some" and any(ch in v for ch in ',"\r\n')) else v

    lines = [",".join(header)]
    for values, delta in rows:
        cells = [*values, "x"] if delta > 0 else list(values)[: len(values) + delta]
        lines.append(",".join(fmt(v) for v in cells))
    _ingest_one("a.csv", (("\ufeff" if bom else "") + eol.join(lines) + eol).encode("utf-8"))


_json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=True), st.text(max_size=6)
)
_json_value = st.recursive(
    _json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=5,
)


@FUZZ
@given(
    objects=st.lists(
        st.fixed_dictionaries(
            {c: st.one_of(st.sampled_from(VALID[c]), _json_value) for c in REQUIRED},
            optional={c: _json_value for c in COLUMNS[4:]},
        ),
        max_size=8,
    ),
    junk=st.lists(st.sampled_from(["[1]", "42", '"x"', "{", "null", "", "\x00", '{"a":']), max_size=3),
    eol=_eol,
    bom=st.booleans(),
)
def test_random_json_lines_are_accounted(objects, junk, eol, bom):
    lines = [json.dumps(o) for o in objects] + junk
    _ingest_one("a.jsonl", (("\ufeff" if bom else "") + eol.join(lines)).encode("utf-8", errors="surrogatepass"))


_arrow_types = st.sampled_from(
    [
        pa.string(),
        pa.int64(),
        pa.int8(),
        pa.float64(),
        pa.float32(),
        pa.bool_(),
        pa.binary(),
        pa.date32(),
        pa.timestamp("us"),
        pa.timestamp("ms", tz="UTC"),
        pa.decimal128(18, 4),
        pa.list_(pa.string()),
        pa.struct([("l1", pa.string())]),
        pa.map_(pa.string(), pa.int64()),
    ]
)


GOOD_TYPES = {
    "order_id": [pa.string(), pa.int64()],
    "customer_id": [pa.string(), pa.float64()],
    "order_ts": [pa.string(), pa.timestamp("us"), pa.timestamp("ms", tz="UTC")],
    "amount": [pa.float64(), pa.decimal128(18, 4), pa.int64()],
}


@FUZZ
@given(
    required=st.tuples(
        *(st.one_of(st.sampled_from(GOOD_TYPES[c]), st.sampled_from(GOOD_TYPES[c]), _arrow_types) for c in REQUIRED)
    ),
    drop=st.sampled_from([False, False, False, False, True]),
    optional=st.lists(st.tuples(st.sampled_from(COLUMNS[4:]), _arrow_types), max_size=3, unique_by=lambda c: c[0]),
    n_rows=st.integers(0, 4),
    seed=st.integers(0, 2**16),
)
def test_random_parquet_schemas_are_loaded_or_rejected(required, drop, optional, n_rows, seed):
    import random

    schema = [*zip(REQUIRED, required, strict=True), *optional]
    if drop:  # now and then a required column is missing
        schema = schema[1:]
    rnd = random.Random(seed)

    def value(t: pa.DataType):
        if rnd.random() < 0.2:
            return None
        if pa.types.is_string(t):
            return rnd.choice(["o1", "c1", "2026-11-21 00:30:00", "x", " \t", "123.0"])
        if pa.types.is_integer(t):
            return rnd.randint(-100, 100)
        if pa.types.is_floating(t):
            return rnd.choice([1.0, 1.5, -2.0, 1e30, float("inf")])
        if pa.types.is_boolean(t):
            return rnd.random() < 0.5
        if pa.types.is_binary(t):
            return bytes([rnd.randint(0, 255) for _ in range(3)])
        if pa.types.is_date(t):
            return datetime(rnd.choice([1, 1999, 2026]), 1, 2).date()
        if pa.types.is_timestamp(t):
            return datetime(rnd.choice([1, 2026]), 11, 21, 0, 30)
        if pa.types.is_decimal(t):
            from decimal import Decimal

            return Decimal(rnd.choice(["1.0000", "10.0050", "-3.5000"]))
        if pa.types.is_list(t):
            return ["a", "b"]
        if pa.types.is_struct(t):
            return {"l1": "a"}
        return [("k", 1)]

    table = pa.table({n: pa.array([value(t) for _ in range(n_rows)], t) for n, t in schema})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    _ingest_one("a.parquet", buf.getvalue())
