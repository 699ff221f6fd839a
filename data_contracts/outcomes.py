"""What a validation found: one ``ExpectationOutcome`` per expectation, gathered in a ``ValidationReport``.

Shared by the suite builder, the GX runner and the output quality checks, so every check reports the
same shape (check name, severity, counts, a handful of examples).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

Severity = Literal["blocking", "warn"]

LINEAGE_COLUMNS: tuple[str, ...] = ("_file", "_line")
DEFAULT_CHUNK_ROWS = 500_000
DEFAULT_UNIQUE_BUCKET_ROWS = 2_000_000
MAX_EXAMPLES = 5

# All GX work goes through one context and one batch definition (same batch id): serialise it.
_GX_LOCK = threading.RLock()
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# pandas only compares datetime64[ns] vectorised in GX; ns covers 1677-09-22 .. 2262-04-11.
_TS_FLOOR = "TIMESTAMP '1677-09-22 00:00:00'"
_TS_CEIL = "TIMESTAMP '2262-04-11 00:00:00'"

_SCHEMA_TYPES = frozenset(
    {
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_column_to_exist",
        "expect_table_column_count_to_equal",
        "expect_table_column_count_to_be_between",
    }
)
_UNIQUE_TYPES = frozenset({"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"})
_ROW_COUNT_TYPES = frozenset({"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"})
_TYPE_TYPES = frozenset({"expect_column_values_to_be_of_type"})
# Map expectations whose verdict depends on neighbouring rows: a chunk boundary would change it.
_ORDER_DEPENDENT = frozenset({"expect_column_values_to_be_increasing", "expect_column_values_to_be_decreasing"})


# --------------------------------------------------------------------------------------------------
# Outcomes and reports
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectationOutcome:
    """The verdict of one check: counts, a handful of offending values and whether it blocks."""

    expectation_type: str
    columns: tuple[str, ...]
    success: bool
    severity: Severity
    unexpected_count: int | None = None
    element_count: int | None = None
    unexpected_percent: float | None = None
    examples: tuple[Any, ...] = ()
    check: str = ""
    observed: Any = None
    error: str | None = None

    @property
    def column(self) -> str | None:
        """The single column checked, or None for table-level and multi-column checks."""
        return self.columns[0] if len(self.columns) == 1 else None

    @property
    def blocking(self) -> bool:
        """True when a failure of this check must stop the table flowing downstream."""
        return self.severity == "blocking"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "check": self.check,
            "expectation_type": self.expectation_type,
            "columns": list(self.columns),
            "success": self.success,
            "severity": self.severity,
            "unexpected_count": self.unexpected_count,
            "element_count": self.element_count,
            "unexpected_percent": self.unexpected_percent,
            "examples": [jsonable(v) for v in self.examples],
            "observed": jsonable(self.observed),
            "error": self.error,
        }


@dataclass(frozen=True)
class ValidationReport:
    """All outcomes of one validation; ``success`` counts blocking checks only."""

    table: str
    success: bool
    results: list[ExpectationOutcome]
    row_count: int | None = None
    chunks: int = 0
    seconds: float = 0.0
    suite_name: str = ""

    @classmethod
    def from_outcomes(cls, table: str, results: Sequence[ExpectationOutcome], **extra: Any) -> ValidationReport:
        """A report whose success is the conjunction of its blocking outcomes."""
        ok = all(r.success for r in results if r.blocking)
        return cls(table=table, success=ok, results=list(results), **extra)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        """Failed blocking outcomes."""
        return [r for r in self.results if r.blocking and not r.success]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        """Failed warn outcomes."""
        return [r for r in self.results if not r.blocking and not r.success]

    def outcome(self, check: str) -> ExpectationOutcome:
        """The outcome whose check name is ``check``."""
        for r in self.results:
            if r.check == check:
                return r
        raise KeyError(f"no check {check!r} in report for {self.table}; have {[r.check for r in self.results]}")

    def to_metadata(self) -> dict[str, Any]:
        """JSON-able summary for Dagster check metadata: counts, failed checks in full, passed by name."""
        return {
            "table": self.table,
            "suite": self.suite_name,
            "success": self.success,
            "row_count": self.row_count,
            "checks": len(self.results),
            "blocking_failures": len(self.failures),
            "warnings": len(self.warnings),
            "failed": [r.to_dict() for r in self.results if not r.success],
            "passed": [r.check for r in self.results if r.success],
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
        }


def jsonable(value: Any) -> Any:
    """A JSON-serialisable stand-in for a value coming out of pandas, numpy, DuckDB or GX."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return jsonable(item())
        except (TypeError, ValueError):
            pass
    isoformat = getattr(value, "isoformat", None)  # pandas Timestamp, NaT
    if callable(isoformat):
        text = isoformat()
        return None if text == "NaT" else text
    return str(value)


def severity_of(expectation: Expectation) -> Severity:
    """'blocking' for GX severity critical, 'warn' for warning or info."""
    return "blocking" if str(getattr(expectation.severity, "value", expectation.severity)) == "critical" else "warn"


def check_name(expectation: Expectation, index: int | None = None) -> str:
    """The expectation's ``meta['check']``, or a name derived from its type and columns."""
    meta = expectation.meta or {}
    if meta.get("check"):
        return str(meta["check"])
    cols = "+".join(_expectation_columns(expectation)) or "table"
    suffix = "" if index is None else f"#{index}"
    return f"{cols}.{expectation.expectation_type.removeprefix('expect_')}{suffix}"


def _expectation_columns(exp: Expectation) -> tuple[str, ...]:
    cols: list[str] = []
    for key in ("column", "column_A", "column_B"):
        value = getattr(exp, key, None)
        if isinstance(value, str):
            cols.append(value)
    cols.extend(getattr(exp, "column_list", None) or [])
    return tuple(cols)
