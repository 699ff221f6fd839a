"""Data contracts as data: load and validate the YAML files in this folder.

A contract names a table's columns, their logical types, the row rules ingestion enforces and the
descriptions the data dictionary and Dagster metadata show. Both ingestion and the expectation suites
read the same objects, so a rule is stated once.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CONTRACT_DIR = Path(__file__).resolve().parent
INPUT_SOURCES: tuple[str, ...] = ("orders", "browsing", "feedback", "customers")

LogicalType = Literal["string", "integer", "decimal", "double", "timestamp", "date", "boolean", "string_list"]

# Storage type of each logical type. Money is DECIMAL(18,2), never double (PRODUCT.md §6).
SQL_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "decimal": "DECIMAL(18,2)",
    "double": "DOUBLE",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "boolean": "BOOLEAN",
    "string_list": "VARCHAR[]",  # e.g. the tags a customer carries
}

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


class ContractError(ValueError):
    """A contract file is malformed; the message names the file and the key."""


class Column(BaseModel):
    """One column of a contract and the row rules that apply to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: LogicalType
    description: str = ""
    required: bool = False
    default: str | int | float | None = None
    default_from: str | None = None
    min: float | None = None
    max: float | None = None
    accepted_values: tuple[str, ...] | None = None
    accepted_values_from: str | None = None
    not_after_run: bool = False
    local_date: str | None = None
    pii: bool = False
    unique: bool = False
    nullable: bool = True

    @model_validator(mode="after")
    def _check(self) -> Column:
        for ident in (self.name, self.local_date):
            if ident is not None and not _IDENT.match(ident):
                raise ValueError(f"column name {ident!r} must be lower_snake_case")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"column {self.name}: min {self.min} > max {self.max}")
        return self

    @property
    def sql_type(self) -> str:
        """DuckDB storage type."""
        return SQL_TYPES[self.type]


class Contract(BaseModel):
    """A table contract: grain, key and columns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    grain: str
    primary_key: tuple[str, ...] = ()
    require_any: tuple[str, ...] = ()
    columns: tuple[Column, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Contract:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate columns {dupes}")
        unknown = [k for k in (*self.primary_key, *self.require_any) if k not in names]
        if unknown:
            raise ValueError(f"primary_key/require_any name unknown columns {unknown}")
        return self

    @property
    def column_names(self) -> list[str]:
        """Contract column names in order."""
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        """Columns a file must contain (a file without one is rejected whole)."""
        return [c.name for c in self.columns if c.required and c.default is None and c.default_from is None]

    @property
    def pii_columns(self) -> list[str]:
        """Columns that must never be published."""
        return [c.name for c in self.columns if c.pii]

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"contract {self.name} has no column {name!r}")

    def storage_columns(self) -> list[tuple[str, str]]:
        """(name, DuckDB type) of the loaded table: contract columns plus derived local dates."""
        out: list[tuple[str, str]] = []
        for c in self.columns:
            out.append((c.name, c.sql_type))
            if c.local_date:
                out.append((c.local_date, "DATE"))
        return out


def load_contract_file(path: Path) -> Contract:
    """Parse and validate one contract file, naming the file and key on error."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return Contract.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '<top>'}: {err['msg']}" for err in exc.errors())
        raise ContractError(f"{path}: invalid contract: {problems}") from exc


# Window-named columns (``sessions_{short}d`` ...) in output contracts are written with these placeholders
# and rendered with the windows a snapshot was built with (features.customer_features.FeatureParams).
DEFAULT_WINDOWS: dict[str, int] = {"short": 30, "long": 90, "complaint": 90}
Windows = tuple[tuple[str, int], ...]


def window_key(windows: dict[str, int] | None = None) -> Windows:
    """A hashable, complete set of window lengths (defaults filled in)."""
    merged = {**DEFAULT_WINDOWS, **(windows or {})}
    unknown = sorted(set(merged) - set(DEFAULT_WINDOWS))
    if unknown:
        raise ContractError(f"unknown window placeholder(s) {unknown}; known: {sorted(DEFAULT_WINDOWS)}")
    return tuple(sorted(merged.items()))


def render_windows(text: str, windows: Windows) -> str:
    """``text`` with ``{short}``, ``{long}`` and ``{complaint}`` replaced by day counts."""
    for key, days in windows:
        text = text.replace("{" + key + "}", str(days))
    return text


@cache
def _packaged(folder: Path, name: str, kind: str, windows: Windows = ()) -> Contract:
    path = folder / f"{name}.yaml"
    if not path.exists():
        raise ContractError(f"no {kind} named {name!r} in {folder}")
    if not windows:
        return load_contract_file(path)
    try:
        raw: Any = yaml.safe_load(render_windows(path.read_text(encoding="utf-8"), windows))
        return Contract.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as exc:
        raise ContractError(f"{path}: invalid contract: {exc}") from exc


def load_contract(name: str) -> Contract:
    """The packaged input contract called ``name`` (e.g. ``orders``)."""
    return _packaged(CONTRACT_DIR, name, "contract")


OUTPUT_DIR = CONTRACT_DIR / "outputs"
SNAPSHOT_OUTPUTS: tuple[str, ...] = (
    "customer_segments",
    "segment_summary",
    "segment_migrations",
    "rfm_cut_points",
    "cluster_profiles",
    "override_audit",
    "segment_summary_by_group",
)
RUN_OUTPUTS: tuple[str, ...] = ("data_quality", "quarantine")


def load_output_contract(name: str, windows: dict[str, int] | None = None) -> Contract:
    """The output contract of published table ``name``, window-named columns rendered with ``windows``."""
    return _packaged(OUTPUT_DIR, name, "output contract", window_key(windows))


def output_contracts(windows: dict[str, int] | None = None) -> dict[str, Contract]:
    """Every output contract by table name, in publishing order (window columns named from ``windows``)."""
    return {n: load_output_contract(n, windows) for n in (*SNAPSHOT_OUTPUTS, *RUN_OUTPUTS)}
