"""The HTML segment report: ordering, labels and escaping on a tiny hand-made summary."""

from __future__ import annotations

from datetime import date

import polars as pl

from publishing.report import render_report

D = date(2026, 11, 21)


def _summary() -> pl.DataFrame:
    rows = [
        ("overall_grade", "C", 5, 0.5),
        ("overall_grade", "A", 2, 0.2),
        ("overall_grade", "unassigned", 3, 0.3),
        ("rfm_segment", "loyal", 2, 0.2),
        ("rfm_segment", "champions", 8, 0.8),
        ("cluster", "0", 6, 0.6),
        ("cluster", "1", 4, 0.4),
    ]
    return pl.DataFrame(rows, schema=["segmentation", "segment", "customers", "share"], orient="row").with_columns(
        pl.lit(100.0).alias("revenue")
    )


def _moves(prev: date | None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "previous_snapshot_date": [prev, prev],
            "segmentation": ["rfm_segment", "rfm_segment"],
            "from_segment": ["loyal", "champions"],
            "to_segment": ["champions", "champions"],
            "customers": [3, 7],
        }
    )


def test_grades_in_letter_order_other_segmentations_largest_first() -> None:
    page = render_report(D, _summary(), _moves(date(2026, 11, 20)), warnings=[])
    grades = page[page.index("Overall grade") : page.index("Monetary grade")]
    assert grades.index(">A<") < grades.index(">C<") < grades.index(">unassigned<")
    rfm = page[page.index("RFM segments") : page.index("Value classes")]
    assert rfm.index(">champions<") < rfm.index(">loyal<")


def test_clusters_are_labelled_with_their_names_and_text_is_escaped() -> None:
    page = render_report(
        D,
        _summary(),
        _moves(None),
        warnings=["share of <b>x</b> moved"],
        cluster_names={"0": "high spend · frequent", "1": "low & rare"},
    )
    assert ">0 · high spend · frequent<" in page
    assert ">1 · low &amp; rare<" in page
    assert "share of &lt;b&gt;x&lt;/b&gt; moved" in page


def test_migrations_show_only_customers_who_moved() -> None:
    page = render_report(D, _summary(), _moves(date(2026, 11, 20)), warnings=[])
    section = page[page.index("Largest migrations") :]
    assert "Compared with 2026-11-20." in section
    assert "rfm_segment: loyal → champions" in section
    assert "champions → champions" not in section
