"""CRM exports on a hand-made published folder with two snapshots; every expected row is worked by hand.

Snapshot D0 -> D (rfm_segment, cluster):
  C1 champions/0 -> champions/0   stayed
  C2 loyal/1     -> champions/0   moved into champions
  C3 (none)/-    -> loyal/1       unassigned -> loyal
  C4 at_risk/1   -> (none)/-      moved into unassigned
  C5 absent      -> champions/1   new customer, counts as moved in
  C6 absent      -> (none)/-      new, unassigned
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import publishing.exports as exports
from models.registry import Registry, builtin_registry
from models.settings import load_segmentation_settings
from pipelines.cli import main
from publishing.exports import ExportError, export_segment
from publishing.parquet import current_path, history_path

D0 = date(2026, 11, 14)
D = date(2026, 11, 21)
CLUSTERS = {0: "high spend · frequent", 1: "low spend · rare"}
SNAPSHOTS = {
    D0: [("C1", "champions", 0), ("C2", "loyal", 1), ("C3", None, None), ("C4", "at_risk", 1)],
    D: [
        ("C1", "champions", 0),
        ("C2", "champions", 0),
        ("C3", "loyal", 1),
        ("C4", None, None),
        ("C5", "champions", 1),
        ("C6", None, None),
    ],
}
ZH = {"champions": "冠军客户", "loyal": "忠诚客户", "at_risk": "有流失风险"}


def _table(snapshot: date) -> pa.Table:
    rows = SNAPSHOTS[snapshot]
    return pa.table(
        {
            "snapshot_date": pa.array([snapshot] * len(rows), pa.date32()),
            "customer_id": [r[0] for r in rows],
            "rfm_segment": [r[1] for r in rows],
            "rfm_segment_name": [ZH.get(r[1]) for r in rows],
            "cluster_id": pa.array([r[2] for r in rows], pa.int64()),
            "cluster_name": [CLUSTERS.get(r[2]) for r in rows],
            "monetary": pa.array([100 * (i + 1) for i in range(len(rows))], pa.decimal128(18, 2)),
            "email": ["x@example.com"] * len(rows),  # not an export column: never written
        }
    )


@pytest.fixture
def published(tmp_path: Path) -> Path:
    root = tmp_path / "published"
    for snapshot in SNAPSHOTS:
        path = history_path(root, "customer_segments", snapshot)
        path.parent.mkdir(parents=True)
        pq.write_table(_table(snapshot), path)
    current_path(root, "customer_segments").parent.mkdir(parents=True)
    pq.write_table(_table(D), current_path(root, "customer_segments"))
    return root


@pytest.fixture
def registry() -> Registry:
    return builtin_registry(load_segmentation_settings({}))


def _csv(path: Path, encoding: str = "utf-8-sig") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding=encoding))))


def _ids(path: Path) -> list[str]:
    return [r["customer_id"] for r in _csv(path)]


@pytest.mark.parametrize("segment", ["champions", "Champions", "CHAMPIONS", "冠军客户"])
def test_segment_by_key_or_english_or_chinese_display_name(
    published: Path, registry: Registry, tmp_path: Path, segment: str
) -> None:
    path, rows = export_segment(published, registry, by="rfm_segment", segment=segment, out=tmp_path / "x.csv")
    assert (rows, _ids(path)) == (3, ["C1", "C2", "C5"])
    first = _csv(path)[0]
    names = [first["segment"], first["segment_name"], first["rfm_segment_name"]]
    assert names == ["champions", "Champions", "冠军客户"]
    assert "email" not in first


def test_unassigned_is_exportable(published: Path, registry: Registry) -> None:
    path, _ = export_segment(published, registry, by="rfm_segment", segment="unassigned")
    assert path == published / "exports" / "rfm_segment=unassigned.csv"
    assert _ids(path) == ["C4", "C6"]


def test_moved_in_keeps_customers_who_changed_into_the_segment(published: Path, registry: Registry) -> None:
    path, _ = export_segment(published, registry, by="rfm_segment", segment="冠军客户", moved_in=True)
    assert path.name == "rfm_segment=champions_moved_in.csv"
    assert [(r["customer_id"], r["previous_segment"]) for r in _csv(path)] == [("C2", "loyal"), ("C5", "(none)")]
    path, _ = export_segment(published, registry, by="rfm_segment", segment="unassigned", moved_in=True)
    assert [(r["customer_id"], r["previous_segment"]) for r in _csv(path)] == [("C4", "at_risk"), ("C6", "(none)")]


def test_as_of_reads_a_history_snapshot(published: Path, registry: Registry) -> None:
    path, _ = export_segment(published, registry, by="rfm_segment", segment="champions", as_of=D0)
    assert path.name == "rfm_segment=champions_2026-11-14.csv"
    assert [(r["customer_id"], r["snapshot_date"]) for r in _csv(path)] == [("C1", "2026-11-14")]
    path, _ = export_segment(published, registry, by="rfm_segment", segment="loyal", as_of=D, moved_in=True)
    assert _ids(path) == ["C3"]


def test_as_of_or_moved_in_without_the_snapshot_is_refused(published: Path, registry: Registry) -> None:
    with pytest.raises(ExportError, match=r"no published snapshot 2026-11-01.*2026-11-14, 2026-11-21"):
        export_segment(published, registry, by="rfm_segment", segment="champions", as_of=date(2026, 11, 1))
    with pytest.raises(ExportError, match=r"no published snapshot before 2026-11-14.*at least two snapshots"):
        export_segment(published, registry, by="rfm_segment", segment="champions", as_of=D0, moved_in=True)


@pytest.mark.parametrize("segment", ["1", "LOW SPEND · RARE"])
def test_cluster_by_id_or_name(published: Path, registry: Registry, segment: str) -> None:
    path, _ = export_segment(published, registry, by="cluster", segment=segment)
    assert path.name == "cluster=1.csv"
    name = "1 · low spend · rare"
    assert [(r["customer_id"], r["segment_name"]) for r in _csv(path)] == [("C3", name), ("C5", name)]


def test_unknown_segment_cluster_or_segmentation_is_refused_with_what_is_known(
    published: Path, registry: Registry
) -> None:
    with pytest.raises(ExportError, match=r"no label 'champs'; known: champions \(Champions / 冠军客户\)"):
        export_segment(published, registry, by="rfm_segment", segment="champs")
    with pytest.raises(ExportError, match=r"no cluster '7'.*known: 0 \(high spend · frequent\); 1 \(low spend"):
        export_segment(published, registry, by="cluster", segment="7")
    with pytest.raises(ExportError, match=r"cannot export by 'monetary_grade'; exportable: rfm_segment, value_class"):
        export_segment(published, registry, by="monetary_grade", segment="A")


def test_utf8_sig_csv_starts_with_the_bom_and_keeps_chinese(published: Path, registry: Registry) -> None:
    path, _ = export_segment(published, registry, by="rfm_segment", segment="champions", encoding="utf-8-sig")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and not raw[3:].startswith(b"\xef\xbb\xbf")
    assert [r["rfm_segment_name"] for r in _csv(path, "utf-8-sig")] == ["冠军客户"] * 3
    assert (
        export_segment(published, registry, by="rfm_segment", segment="loyal")[0]
        .read_bytes()
        .startswith(b"\xef\xbb\xbf")
    )  # the default: Excel-friendly
    plain, _ = export_segment(published, registry, by="rfm_segment", segment="loyal", encoding="utf-8")
    assert plain.read_bytes().startswith(b'"customer_id"')  # plain utf-8: no BOM


def test_xlsx_opens_with_openpyxl_with_chinese_display_names(published: Path, registry: Registry) -> None:
    path, rows = export_segment(published, registry, by="rfm_segment", segment="冠军客户", fmt="xlsx", language="zh")
    assert path.name == "rfm_segment=champions.xlsx" and rows == 3
    sheet = openpyxl.load_workbook(path, read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    header = values[0]
    assert header[:3] == ("customer_id", "segment", "segment_name")
    body = [dict(zip(header, row, strict=True)) for row in values[1:]]
    assert [(r["customer_id"], r["segment_name"], r["rfm_segment_name"]) for r in body] == [
        ("C1", "冠军客户", "冠军客户"),
        ("C2", "冠军客户", "冠军客户"),
        ("C5", "冠军客户", "冠军客户"),
    ]
    assert [float(r["monetary"]) for r in body] == [100.0, 200.0, 500.0]


def test_writes_are_atomic_and_a_failed_write_keeps_the_previous_file(
    published: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = published / "exports" / "list.xlsx"
    out.parent.mkdir()
    out.write_bytes(b"previous version")
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 2)  # planted failure: 3 rows do not fit
    with pytest.raises(ExportError, match="do not fit one Excel sheet"):
        export_segment(published, registry, by="rfm_segment", segment="champions", fmt="xlsx", out=out)
    assert out.read_bytes() == b"previous version"
    monkeypatch.undo()
    export_segment(published, registry, by="rfm_segment", segment="champions", fmt="xlsx", out=out)
    assert openpyxl.load_workbook(out).active.max_row == 4
    assert sorted(p.name for p in out.parent.iterdir()) == ["list.xlsx"]  # no temp file left behind


def test_cli_export_with_every_option(published: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "segments.yaml"
    config.write_text(
        f"published_dir: {published}\nlanguage: zh\nsources: {{orders: {{glob: 'orders/*'}}}}\n", encoding="utf-8"
    )
    out = tmp_path / "moved.csv"
    argv = ["--config", str(config), "export", "--segment", "Champions", "--moved-in", "--as-of", "2026-11-21"]
    assert main([*argv, "--encoding", "utf-8-sig", "--out", str(out)]) == 0
    assert "exported 2 customers moved into rfm_segment=Champions" in capsys.readouterr().out
    rows = [(r["customer_id"], r["segment_name"]) for r in _csv(out, "utf-8-sig")]
    assert rows == [("C2", "冠军客户"), ("C5", "冠军客户")]
    assert main(["--config", str(config), "export", "--by", "cluster", "--segment", "0", "--format", "xlsx"]) == 0
    assert (published / "exports" / "cluster=0.xlsx").is_file()
    assert main(["--config", str(config), "export", "--by", "region", "--segment", "x"]) == 2
    assert "cannot export by 'region'; exportable: rfm_segment" in capsys.readouterr().err


def test_cells_a_spreadsheet_would_run_as_formulas_are_written_as_text(tmp_path: Path) -> None:
    from publishing.exports import write_table

    values = ['=HYPERLINK("http://x")', "+1+2", "-3", "@SUM(A1)", "\tx", "-12.5", "Shanghai", None, "a=b"]
    table = pa.table({"city": values, "orders": list(range(len(values)))})
    for fmt in ("csv", "xlsx"):
        out = write_table(table, tmp_path / f"t.{fmt}", fmt=fmt)
        if fmt == "csv":
            got = [r["city"] for r in _csv(out, "utf-8-sig")]
        else:
            from openpyxl import load_workbook

            got = [r[0] for r in load_workbook(out).active.iter_rows(min_row=2, values_only=True)]
        expected = ['\'=HYPERLINK("http://x")', "'+1+2", "-3", "'@SUM(A1)", "'\tx", "-12.5", "Shanghai", None, "a=b"]
        if fmt == "csv":
            expected[7] = ""  # CSV has no null
        assert got == expected, fmt
