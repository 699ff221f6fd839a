"""Publishing: contract checks, Parquet round trips, atomic replacement, kills, backfills, catalog."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_contracts.contracts import Contract, load_contract_file
from publishing import atomic
from publishing import parquet as pub
from publishing.dictionary import dagster_column_schema, render_data_dictionary

REPO = Path(__file__).resolve().parents[1]

SEGMENTS_YAML = """\
name: segs
description: One row per customer per snapshot.
grain: one row per customer per snapshot
primary_key: [snapshot_date, customer_id]
columns:
  - name: snapshot_date
    type: date
    description: As-of date of the snapshot.
  - name: customer_id
    type: string
    description: Customer identifier.
  - name: orders
    type: integer
    description: Orders placed | all time.
  - name: revenue
    type: decimal
    description: Revenue in the reporting currency.
  - name: score
    type: double
    description: Model score.
  - name: last_order_ts
    type: timestamp
    description: Last order, UTC.
  - name: is_vip
    type: boolean
    description: VIP flag.
"""

QUALITY_YAML = """\
name: quality
description: Row accounting per file.
grain: one row per file and run
columns:
  - name: file
    type: string
    description: Input file.
  - name: rows
    type: integer
    description: Rows read.
"""

PII_YAML = """\
name: leaky
description: Has PII.
grain: one row per customer
columns:
  - name: customer_id
    type: string
    description: Customer identifier.
  - name: contact
    type: string
    pii: true
    description: E-mail address.
"""


def _contract(tmp_path: Path, text: str) -> Contract:
    folder = tmp_path / "contracts"
    folder.mkdir(exist_ok=True)
    path = folder / (text.split("\n", 1)[0].split(": ")[1] + ".yaml")
    path.write_text(text, encoding="utf-8")
    return load_contract_file(path)


@pytest.fixture
def contracts(tmp_path: Path) -> dict[str, Contract]:
    return {c.name: c for c in (_contract(tmp_path, SEGMENTS_YAML), _contract(tmp_path, QUALITY_YAML))}


def segs(snapshot: date, n: int = 3, offset: int = 0) -> pa.Table:
    """A tiny ``segs`` table, sorted by key."""
    ids = [f"c{i + offset:03d}" for i in range(n)]
    return pa.table(
        {
            "snapshot_date": pa.array([snapshot] * n, pa.date32()),
            "customer_id": pa.array(ids, pa.string()),
            "orders": pa.array([i + 1 for i in range(n)], pa.int64()),
            "revenue": pa.array([Decimal(f"{i}.25") for i in range(n)], pa.decimal128(18, 2)),
            "score": pa.array([i / 4 for i in range(n)], pa.float64()),
            "last_order_ts": pa.array([datetime(2024, 1, 1, 12, i) for i in range(n)], pa.timestamp("us")),
            "is_vip": pa.array([i % 2 == 0 for i in range(n)], pa.bool_()),
        }
    )


def quality(n: int = 2) -> pa.Table:
    return pa.table({"file": [f"f{i}.csv" for i in range(n)], "rows": pa.array(range(n), pa.int64())})


def snapshot_of(root: Path) -> dict[str, bytes]:
    """Every visible file under ``root`` (relative path -> bytes), the lock file excluded."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != pub.LOCK_NAME
    }


def reader_globs(root: Path) -> list[Path]:
    """What BI readers glob: history partitions and current files."""
    return sorted([*root.glob("*/snapshot_date=*/*.parquet"), *root.glob("current/*.parquet")])


def temp_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.tmp*") if p.is_file())


# --------------------------------------------------------------------------------------------------
# round trip and layout


def test_publish_writes_history_and_current_readable_by_pyarrow_polars_and_duckdb(tmp_path, contracts):
    root = tmp_path / "published"
    day = date(2024, 3, 31)
    table = segs(day)
    report = pub.publish(root, {"segs": table}, snapshot_date=day, contracts=contracts)

    hist = root / "segs" / "snapshot_date=2024-03-31" / "part-0.parquet"
    cur = root / "current" / "segs.parquet"
    got = report.tables["segs"]
    assert (got.history_path, got.current_path, got.rows) == (hist, cur, 3)
    assert got.bytes == hist.stat().st_size
    # the folder carries snapshot_date; the history file leaves the column out (no hive type clash)
    assert pq.read_schema(hist).names == table.column_names[1:]
    assert (
        pq.read_table(hist).select(table.column_names[1:]).to_pylist()
        == table.drop_columns(["snapshot_date"]).to_pylist()
    )
    assert pq.ParquetFile(cur).metadata.row_group(0).column(0).compression == "ZSTD"

    by_arrow = pq.read_table(cur)
    assert by_arrow.equals(table)
    schema = by_arrow.schema
    assert schema.field("orders").metadata[b"description"] == b"Orders placed | all time."
    assert schema.field("revenue").metadata[b"logical_type"] == b"decimal"
    assert schema.metadata[b"description"] == b"One row per customer per snapshot."
    assert schema.metadata[b"grain"] == b"one row per customer per snapshot"
    assert schema.metadata[b"snapshot_date"] == b"2024-03-31"

    by_polars = pl.read_parquet(cur)
    assert by_polars.columns == table.column_names
    assert by_polars.to_arrow().cast(table.schema).equals(table)

    con = duckdb.connect()
    by_duckdb = con.sql("select * from read_parquet($p)", params={"p": str(cur)}).to_arrow_table()
    assert by_duckdb.column_names == table.column_names
    assert by_duckdb.cast(table.schema).equals(table)
    kv = dict(
        con.sql("select decode(key), decode(value) from parquet_kv_metadata($p)", params={"p": str(cur)}).fetchall()
    )
    assert kv["description"] == "One row per customer per snapshot."


def test_publish_casts_compatible_types_to_contract_storage_types(tmp_path, contracts):
    day = date(2024, 3, 31)
    table = segs(day)
    loose = table.set_column(2, "orders", table["orders"].cast(pa.int32()))
    loose = loose.set_column(1, "customer_id", loose["customer_id"].cast(pa.large_string()))
    loose = loose.set_column(3, "revenue", loose["revenue"].cast(pa.decimal128(10, 2)))
    loose = loose.set_column(5, "last_order_ts", loose["last_order_ts"].cast(pa.timestamp("ns")))
    pub.publish(tmp_path, {"segs": loose}, snapshot_date=day, contracts=contracts)
    got = pub.read_current(tmp_path, "segs")
    assert got.schema.remove_metadata().equals(table.schema)


def test_publish_accepts_polars_output_including_categoricals(tmp_path, contracts):
    day = date(2024, 3, 31)
    table = segs(day)
    frame = pl.from_arrow(table).with_columns(pl.col("customer_id").cast(pl.Categorical))
    pub.publish(tmp_path, {"segs": frame.to_arrow()}, snapshot_date=day, contracts=contracts)
    assert pub.read_current(tmp_path, "segs").equals(table)


def test_tables_left_out_of_history_are_published_in_the_current_set_only(tmp_path, contracts):
    root = tmp_path / "published"
    day = date(2024, 1, 1)
    report = pub.publish(
        root, {"segs": segs(day), "quality": quality()}, snapshot_date=day, contracts=contracts, history=["segs"]
    )
    assert report.tables["quality"].history_path is None
    assert sorted(str(p.relative_to(root)) for p in reader_globs(root)) == [
        "current/quality.parquet",
        "current/segs.parquet",
        "segs/snapshot_date=2024-01-01/part-0.parquet",
    ]
    assert pub.read_current(root, "quality").num_rows == 2


def test_read_current_names_the_published_tables_when_missing(tmp_path, contracts):
    pub.publish(tmp_path, {"quality": quality()}, snapshot_date=date(2024, 1, 1), contracts=contracts)
    with pytest.raises(FileNotFoundError, match=r"'segs' has not been published.*\['quality'\]"):
        pub.read_current(tmp_path, "segs")


# --------------------------------------------------------------------------------------------------
# refusals happen before anything is written


def test_pii_columns_are_refused_before_any_file_is_written(tmp_path, contracts):
    leaky = _contract(tmp_path, PII_YAML)
    root = tmp_path / "published"
    table = pa.table({"customer_id": ["c1"], "contact": ["a@example.com"]})
    with pytest.raises(pub.PublishError, match=r"'leaky'.*\['contact'\] are PII"):
        pub.publish(
            root,
            {"quality": quality(), "leaky": table},
            snapshot_date=date(2024, 1, 1),
            contracts={**contracts, "leaky": leaky},
        )
    assert not root.exists()


def test_input_pii_column_names_are_refused_even_if_the_output_contract_forgets(tmp_path):
    forgetful = _contract(tmp_path, PII_YAML.replace("    pii: true\n", "").replace("contact", "email"))
    with pytest.raises(pub.PublishError, match=r"\['email'\] are PII"):
        pub.publish(
            tmp_path / "p",
            {"leaky": pa.table({"customer_id": ["c1"], "email": ["a@example.com"]})},
            snapshot_date=date(2024, 1, 1),
            contracts={"leaky": forgetful},
        )
    assert not (tmp_path / "p").exists()


def _drop(t: pa.Table) -> pa.Table:
    return t.drop_columns(["score"])


def _extra(t: pa.Table) -> pa.Table:
    return t.append_column("extra", pa.array([1] * t.num_rows))


def _reorder(t: pa.Table) -> pa.Table:
    return t.select(["customer_id", "snapshot_date", *t.column_names[2:]])


def _wrong_type(t: pa.Table) -> pa.Table:
    return t.set_column(2, "orders", t["orders"].cast(pa.string()))


def _lossy(t: pa.Table) -> pa.Table:
    return t.set_column(3, "revenue", pa.array([Decimal("1.255")] * t.num_rows, pa.decimal128(18, 3)))


def _other_date(t: pa.Table) -> pa.Table:
    return t.set_column(0, "snapshot_date", pa.array([date(2024, 1, 2)] * t.num_rows, pa.date32()))


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (_drop, r"missing \['score'\], unexpected \[\]"),
        (_extra, r"missing \[\], unexpected \['extra'\]"),
        (_reorder, r"same names, other order"),
        (_wrong_type, r"column 'orders' has type string, expected integer"),
        (_lossy, r"column 'revenue' .* without losing values"),
        (_other_date, r"'snapshot_date' holds \[datetime.date\(2024, 1, 2\)\].*snapshot 2024-01-01"),
    ],
)
def test_tables_not_matching_the_contract_are_refused_and_nothing_changes(tmp_path, contracts, mangle, message):
    day = date(2024, 1, 1)
    pub.publish(tmp_path, {"segs": segs(day), "quality": quality()}, snapshot_date=day, contracts=contracts)
    before = snapshot_of(tmp_path)
    with pytest.raises(pub.PublishError, match=message):
        pub.publish(
            tmp_path,
            {"quality": quality(5), "segs": mangle(segs(day, 5))},
            snapshot_date=day,
            contracts=contracts,
        )
    assert snapshot_of(tmp_path) == before


@pytest.mark.parametrize(
    ("tables", "kwargs", "message"),
    [
        ({"nope": quality()}, {}, r"table 'nope' has no output contract"),
        ({"../x": quality()}, {}, r"must be lower_snake_case"),
        ({"quality": quality()}, {"snapshot_date": datetime(2024, 1, 1)}, r"must be a datetime.date"),
        ({"quality": quality()}, {"snapshot_date": None}, r"must be a datetime.date"),
        ({}, {}, r"needs at least one table"),
        ({"quality": quality()}, {"history": ["segs"]}, r"history= names tables \['segs'\]"),
    ],
)
def test_bad_calls_are_refused_before_anything_is_written(tmp_path, contracts, tables, kwargs, message):
    kwargs = {"snapshot_date": date(2024, 1, 1), **kwargs}
    with pytest.raises(pub.PublishError, match=message):
        pub.publish(tmp_path / "p", tables, contracts=contracts, **kwargs)
    assert not (tmp_path / "p").exists()


def test_contract_for_another_table_is_refused(tmp_path, contracts):
    with pytest.raises(pub.PublishError, match=r"table 'quality' was given the contract named 'segs'"):
        pub.publish(
            tmp_path, {"quality": quality()}, snapshot_date=date(2024, 1, 1), contracts={"quality": contracts["segs"]}
        )


# --------------------------------------------------------------------------------------------------
# atomicity


def test_failure_while_writing_the_second_table_leaves_both_previous_versions(tmp_path, contracts, monkeypatch):
    day, day2 = date(2024, 1, 1), date(2024, 1, 2)
    pub.publish(tmp_path, {"segs": segs(day), "quality": quality()}, snapshot_date=day, contracts=contracts)
    before = snapshot_of(tmp_path)
    real = atomic._write_parquet
    calls: list[Path] = []

    def flaky(table: pa.Table, path: Path) -> None:
        calls.append(path)
        if len(calls) == 2:  # second table: leave half a file behind, as a crash would
            real(table.slice(0, 1), path)
            with open(path, "r+b") as fh:
                fh.truncate(path.stat().st_size // 2)
            raise OSError("disk full")
        real(table, path)

    monkeypatch.setattr(atomic, "_write_parquet", flaky)
    with pytest.raises(OSError, match="disk full"):
        pub.publish(tmp_path, {"segs": segs(day2, 7), "quality": quality(9)}, snapshot_date=day2, contracts=contracts)
    assert len(calls) == 2
    assert snapshot_of(tmp_path) == before
    assert list(tmp_path.glob("*/snapshot_date=2024-01-02")) == []  # new partition folders removed too
    assert temp_files(tmp_path) == []
    assert [pq.read_table(p).num_rows for p in reader_globs(tmp_path)] == [2, 3, 2, 3]


def test_stale_temp_files_of_a_killed_run_are_removed_by_the_next_call(tmp_path, contracts):
    day = date(2024, 1, 1)
    pub.publish(tmp_path, {"segs": segs(day)}, snapshot_date=day, contracts=contracts)
    stale = [
        tmp_path / "segs" / "snapshot_date=2024-01-02" / ".part-0.parquet.4242-0123456789ab.tmp",
        tmp_path / "snapshots" / ".2024-01-02.4242-0123456789ab.tmp" / "segs.parquet",
        tmp_path / ".catalog.duckdb.4242-0123456789ab.tmp.wal",
    ]
    keep = tmp_path / "current" / "notes.tmp"
    for p in [*stale, keep]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half a file")
    link = tmp_path / ".current.4242-0123456789ab.tmp"
    link.symlink_to("snapshots/nowhere")
    pub.publish(tmp_path, {"segs": segs(day, 2)}, snapshot_date=day, contracts=contracts)
    assert [p for p in stale if p.exists()] == []
    assert not os.path.lexists(link)
    assert not (tmp_path / "snapshots" / ".2024-01-02.4242-0123456789ab.tmp").exists()
    assert not (tmp_path / "segs" / "snapshot_date=2024-01-02").exists()
    assert pub.read_current(tmp_path, "segs").num_rows == 2


def current_files(root: Path) -> dict[str, bytes]:
    """What a reader of ``current/`` sees: file name -> bytes."""
    return {p.name: p.read_bytes() for p in sorted((root / "current").glob("*")) if p.is_file()}


def assert_one_set(root: Path) -> date:
    """Every table in ``current/`` comes from the set its manifest names, all of one snapshot date."""
    snap = pub.current_set(root)
    assert snap is not None
    assert (root / "current").resolve() == snap.folder
    for name, entry in snap.tables.items():
        assert hashlib.sha256((root / "current" / f"{name}.parquet").read_bytes()).hexdigest() == entry["sha256"]
    segs_dates = set(pq.read_table(root / "current" / "segs.parquet")["snapshot_date"].to_pylist())
    assert segs_dates == {snap.snapshot_date}
    return snap.snapshot_date


def test_current_switches_as_one_set_and_keeps_only_the_previous_set(tmp_path, contracts):
    root = tmp_path / "published"
    ids = []
    for i, day in enumerate((date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1))):
        report = pub.publish(
            root, {"segs": segs(day, 3 + i), "quality": quality(i + 1)}, snapshot_date=day, contracts=contracts
        )
        assert report.current_switched
        ids.append(report.snapshot_id)
        assert os.readlink(root / "current") == f"snapshots/{report.snapshot_id}"  # relative: the folder can move
        assert assert_one_set(root) == day
        assert pub.read_current(root, "quality").num_rows == i + 1
    assert ids[0].startswith("2024-01-01-") and len(set(ids)) == 3
    assert sorted(p.name for p in (root / "snapshots").iterdir()) == ids[1:]  # current + the one it replaced
    manifest = json.loads((root / "current" / "_manifest.json").read_text())
    assert manifest["snapshot_date"] == "2024-03-01"
    assert sorted(manifest["tables"]) == ["quality", "segs"]
    assert manifest["tables"]["segs"]["rows"] == 5
    day, tables = pub.read_current_set(root)
    assert day == date(2024, 3, 1) and tables["quality"].num_rows == 3


def test_a_reader_holding_a_file_of_a_pruned_set_keeps_reading_it(tmp_path, contracts):
    root = tmp_path / "published"
    first = date(2024, 1, 1)
    pub.publish(root, {"segs": segs(first)}, snapshot_date=first, contracts=contracts)
    pinned = pub.current_set(root)
    held = open(pinned.folder / "segs.parquet", "rb")  # noqa: SIM115 - held open across two publishes
    try:
        for day in (date(2024, 2, 1), date(2024, 3, 1)):
            pub.publish(root, {"segs": segs(day, 7)}, snapshot_date=day, contracts=contracts)
        assert not pinned.folder.exists()  # pruned two switches later
        assert pq.read_table(held).num_rows == 3
    finally:
        held.close()


def test_a_current_folder_of_the_earlier_layout_becomes_the_symlink(tmp_path, contracts):
    root = tmp_path / "published"
    (root / "current").mkdir(parents=True)
    (root / "current" / "segs.parquet").write_bytes(b"old layout")
    day = date(2024, 1, 1)
    pub.publish(root, {"segs": segs(day)}, snapshot_date=day, contracts=contracts)
    assert (root / "current").is_symlink()
    assert assert_one_set(root) == day
    assert temp_files(root) == [] and sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == [
        ".publish.lock"
    ]


KILL_DAY = date(2024, 2, 1)
KILL_ROWS = 400_000


def kill_tables(n: int) -> dict[str, pa.Table]:
    """Deterministic tables for the kill tests: a big ``segs`` and a one-row ``quality``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    i = pa.array(range(n), pa.int64())
    mixed = pc.bit_wise_and(pc.multiply(i, 2654435761), 0xFFFFFFFF)  # poorly compressible
    big = pa.table(
        {
            "snapshot_date": pa.repeat(pa.scalar(KILL_DAY, pa.date32()), n),
            "customer_id": pc.binary_join_element_wise("c", pc.cast(i, pa.string()), ""),
            "orders": mixed,
            "revenue": pc.cast(pc.divide(pc.cast(mixed, pa.float64()), 100.0), pa.decimal128(18, 2)),
            "score": pc.divide(pc.cast(mixed, pa.float64()), 2.0**32),
            "last_order_ts": pc.cast(pc.multiply(mixed, 1_000_000), pa.timestamp("us")),
            "is_vip": pc.equal(pc.bit_wise_and(mixed, 1), 1),
        }
    )
    return {"quality": pa.table({"file": ["new.csv"], "rows": pa.array([n], pa.int64())}), "segs": big}


# Runs in a child process, which stops at a chosen point of publish() so the test can SIGKILL it there.
# Renames of one publish, in order: history of quality, history of segs, the set folder, the symlink.
KILL_SCRIPT = (
    textwrap.dedent(
        """
        import sys, time
        from datetime import date
        from pathlib import Path
        import pyarrow as pa
        from data_contracts.contracts import load_contract_file
        from publishing import atomic
        from publishing import parquet as pub

        mode, root, contracts_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
        KILL_DAY = date.fromisoformat(sys.argv[4])
        n = int(sys.argv[5])
        contracts = {t: load_contract_file(contracts_dir / f"{t}.yaml") for t in ("segs", "quality")}
        STOP_AT = {"before_rename": 1, "after_history": 3, "before_switch": 4}

        def hang(label):
            print(label, flush=True)
            time.sleep(600)

        if mode == "during_write":
            real = atomic._write_parquet
            def writer(table, path):
                if table.num_rows == n:
                    print("writing", flush=True)  # the parent kills as soon as the temp file exists
                real(table, path)
                if table.num_rows == n:
                    hang("written")
            atomic._write_parquet = writer
        else:
            real_replace = atomic._replace
            seen = []
            def replace(src, dst):
                seen.append(dst)
                if len(seen) == STOP_AT[mode]:
                    hang("renaming")
                real_replace(src, dst)
            atomic._replace = replace
        """
    )
    + textwrap.dedent(inspect.getsource(kill_tables))
    + "\npub.publish(root, kill_tables(n), snapshot_date=KILL_DAY, contracts=contracts)\nprint('done')\n"
)


def _start(mode: str, root: Path, contracts_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    args = [mode, str(root), str(contracts_dir), KILL_DAY.isoformat(), str(KILL_ROWS)]
    return subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=contracts_dir,
    )


def _wait_for_line(proc: subprocess.Popen[str], want: str, timeout: float = 60.0) -> None:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().strip() if ready else "<timeout>"
    if line != want:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"expected {want!r} from the publisher, got {line!r}; stderr:\n{err}")


HISTORY = "segs/snapshot_date=2024-02-01/part-0.parquet"


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> tuple[dict[str, bytes], bytes]:
    """What an uninterrupted publish of the kill tables produces: current/ files and segs' history file."""
    base = tmp_path_factory.mktemp("clean")
    contracts = {c.name: c for c in (_contract(base, SEGMENTS_YAML), _contract(base, QUALITY_YAML))}
    pub.publish(base / "published", kill_tables(KILL_ROWS), snapshot_date=KILL_DAY, contracts=contracts)
    return current_files(base / "published"), (base / "published" / HISTORY).read_bytes()


@pytest.mark.parametrize("mode", ["during_write", "before_rename", "after_history", "before_switch"])
def test_sigkill_mid_publish_leaves_the_previous_set_and_rerun_completes(tmp_path, contracts, mode, clean_run):
    root = tmp_path / "published"
    for day in (date(2024, 1, 1), date(2024, 2, 1)):
        pub.publish(root, {"segs": segs(day), "quality": quality()}, snapshot_date=day, contracts=contracts)
    before = snapshot_of(root)
    before_current = current_files(root)
    proc = _start(mode, root, tmp_path / "contracts")
    try:
        if mode == "during_write":
            _wait_for_line(proc, "writing")
            # kill once the temp file has bytes: it grows for a few hundred ms, so this lands mid-write
            while not any(p.stat().st_size for p in (root / "segs").glob("*/.part-0.parquet.*.tmp")):
                assert proc.poll() is None, proc.communicate()[1]
                time.sleep(0.001)
        else:
            _wait_for_line(proc, "renaming")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL

    # current/ is the previous set, whole, wherever the kill landed
    assert current_files(root) == before_current
    assert assert_one_set(root) == date(2024, 2, 1)
    visible = {k: v for k, v in snapshot_of(root).items() if ".tmp" not in k}
    if mode in ("after_history", "before_switch"):
        # both history renames happened: each history file is the old one or the complete new one
        changed = sorted(k for k in before if visible.get(k) != before[k])
        assert changed == ["quality/snapshot_date=2024-02-01/part-0.parquet", HISTORY]
        assert visible[HISTORY] == clean_run[1]
    else:
        assert {k: v for k, v in visible.items() if not k.startswith("snapshots/")} == {
            k: v for k, v in before.items() if not k.startswith("snapshots/")
        }
    for path in reader_globs(root):
        assert pq.read_table(path).num_rows in (1, 2, 3, KILL_ROWS)

    pub.publish(root, kill_tables(KILL_ROWS), snapshot_date=KILL_DAY, contracts=contracts)  # re-run
    assert temp_files(root) == []
    assert current_files(root) == clean_run[0]
    assert (root / HISTORY).read_bytes() == clean_run[1]
    older = "segs/snapshot_date=2024-01-01/part-0.parquet"
    assert (root / older).read_bytes() == before[older]
    assert pub.read_current(root, "segs").num_rows == KILL_ROWS
    assert assert_one_set(root) == KILL_DAY


# --------------------------------------------------------------------------------------------------
# backfills


def test_backfill_of_an_older_date_keeps_current_on_the_newest_snapshot(tmp_path, contracts):
    new, old = date(2024, 3, 1), date(2024, 2, 1)
    pub.publish(tmp_path, {"segs": segs(new)}, snapshot_date=new, contracts=contracts)
    current = (tmp_path / "current" / "segs.parquet").read_bytes()

    report = pub.publish(tmp_path, {"segs": segs(old, 5)}, snapshot_date=old, contracts=contracts)
    assert report.tables["segs"].current_path is None
    assert (tmp_path / "current" / "segs.parquet").read_bytes() == current
    assert pub.published_snapshots(tmp_path, "segs") == [old, new]
    assert pq.read_table(pub.history_path(tmp_path, "segs", old)).num_rows == 5

    # re-publishing the newest date replaces current again
    pub.publish(tmp_path, {"segs": segs(new, 4)}, snapshot_date=new, contracts=contracts)
    assert pub.read_current(tmp_path, "segs").num_rows == 4


def test_update_current_false_writes_history_only(tmp_path, contracts):
    first, later = date(2024, 3, 1), date(2024, 4, 1)
    pub.publish(tmp_path, {"segs": segs(first)}, snapshot_date=first, contracts=contracts)
    current = (tmp_path / "current" / "segs.parquet").read_bytes()
    report = pub.publish(
        tmp_path, {"segs": segs(later, 5)}, snapshot_date=later, contracts=contracts, update_current=False
    )
    assert report.tables["segs"].current_path is None
    assert (tmp_path / "current" / "segs.parquet").read_bytes() == current
    assert pub.published_snapshots(tmp_path, "segs") == [first, later]


def test_republishing_the_same_tables_gives_byte_identical_files(tmp_path, contracts):
    day = date(2024, 1, 1)
    tables = {"segs": segs(day), "quality": quality()}
    first = pub.publish(tmp_path, tables, snapshot_date=day, contracts=contracts)
    once = snapshot_of(tmp_path)
    again = pub.publish(tmp_path, tables, snapshot_date=day, contracts=contracts)
    assert snapshot_of(tmp_path) == once
    # the set is named by its content: the same set again, current not switched
    assert (again.snapshot_id, again.current_switched) == (first.snapshot_id, False)
    assert os.readlink(tmp_path / "current") == f"snapshots/{first.snapshot_id}"


# --------------------------------------------------------------------------------------------------
# data dictionary


def test_data_dictionary_lists_tables_grain_key_and_columns(tmp_path, contracts):
    text = render_data_dictionary(list(contracts.values()))
    assert text.startswith("# Data dictionary\n")
    assert text.index("## `quality`") < text.index("## `segs`")
    assert "- **Grain:** one row per customer per snapshot" in text
    assert "- **Key:** `snapshot_date`, `customer_id`" in text
    assert "- **Key:** none" in text
    assert "| `orders` | integer | Orders placed \\| all time. |" in text
    assert "| `revenue` | decimal | Revenue in the reporting currency. |" in text


def test_dagster_column_schema_is_name_type_description_in_contract_order(contracts):
    assert dagster_column_schema(contracts["quality"]) == [
        ("file", "string", "Input file."),
        ("rows", "integer", "Rows read."),
    ]


def test_a_page_waits_for_a_publisher_and_goes_to_current_only_for_the_newest_date(tmp_path, contracts):
    """The report page is written under the publish lock: a publisher running at the same time would
    otherwise delete its temp file as stale (seen with two runs started at once)."""
    import threading

    D1, D2 = date(2024, 3, 30), date(2024, 3, 31)
    root = tmp_path / "pub"
    pub.publish(root, {"segs": segs(D2)}, snapshot_date=D2, contracts=contracts)
    done = threading.Event()
    with atomic.publish_lock(root.resolve()):
        worker = threading.Thread(
            target=lambda: (pub.publish_page(root, D2, "page", "<p>new</p>", table="segs"), done.set())
        )
        worker.start()
        assert not done.wait(0.5), "the page was written while another publisher held the lock"
    worker.join(10)
    assert done.is_set()
    assert (root / "reports" / f"page_{D2.isoformat()}.html").read_text() == "<p>new</p>"
    assert (root / "current" / "page.html").read_text() == "<p>new</p>"
    # an older date gets its dated page but never replaces current's
    pub.publish_page(root, D1, "page", "<p>old</p>", table="segs")
    assert (root / "reports" / f"page_{D1.isoformat()}.html").read_text() == "<p>old</p>"
    assert (root / "current" / "page.html").read_text() == "<p>new</p>"
    assert temp_files(root) == []


def test_an_unchanged_run_table_is_linked_from_the_previous_set_not_written_again(tmp_path, contracts):
    """Publishing writes only what changed: ``quality`` (no snapshot date) equal to the previous set's is the same
    file (one inode, two names); a changed one is written anew; the dated table is always written."""
    root = tmp_path / "published"
    first = pub.publish(
        root,
        {"segs": segs(date(2024, 1, 1)), "quality": quality(2)},
        snapshot_date=date(2024, 1, 1),
        contracts=contracts,
    )
    second = pub.publish(
        root,
        {"segs": segs(date(2024, 1, 2)), "quality": quality(2)},
        snapshot_date=date(2024, 1, 2),
        contracts=contracts,
    )
    old, new = root / "snapshots" / first.snapshot_id, root / "snapshots" / second.snapshot_id
    assert first.reused == [] and second.reused == ["quality"]
    assert (new / "quality.parquet").stat().st_ino == (old / "quality.parquet").stat().st_ino
    assert (new / "segs.parquet").stat().st_ino != (old / "segs.parquet").stat().st_ino
    manifests = [json.loads((folder / "_manifest.json").read_text())["tables"] for folder in (old, new)]
    assert manifests[0]["quality"] == manifests[1]["quality"]  # rows, bytes, sha256 and content digest
    assert pub.read_current(root, "quality").equals(quality(2))

    third = pub.publish(
        root,
        {"segs": segs(date(2024, 1, 3)), "quality": quality(3)},
        snapshot_date=date(2024, 1, 3),
        contracts=contracts,
    )
    assert third.reused == []
    assert pub.read_current(root, "quality").num_rows == 3
    # pruning the first set removed one name of the shared file; the second set still reads it
    assert not old.exists() and pq.read_table(new / "quality.parquet").equals(quality(2))
