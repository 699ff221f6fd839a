"""Great Expectations suites built from the contracts (the suite builder; running them is ``gx_runner``).

``build_suite`` turns a contract into a GX 1.x ``ExpectationSuite``: one expectation per property, each
named by ``meta["check"]`` and marked blocking (GX severity ``critical``) or warn (``warning``). Accepted
values, ranges and keys come from the contract through ``Contract``/``Column``, the same reading that
ingestion compiles into SQL row rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from data_contracts.contracts import Column, Contract, ContractError

if TYPE_CHECKING:
    import great_expectations as gx

from data_contracts.outcomes import LINEAGE_COLUMNS, Severity

# --------------------------------------------------------------------------------------------------
# Suite construction
# --------------------------------------------------------------------------------------------------


def build_suite(
    contract: Contract,
    *,
    accepted: Mapping[str, Sequence[str]] | None = None,
    max_ts: datetime | None = None,
    table_name: str | None = None,
    lineage_columns: Sequence[str] = LINEAGE_COLUMNS,
) -> gx.ExpectationSuite:
    """The GX suite a loaded table of ``contract`` must pass.

    Severity: every contract rule is blocking, because ingestion quarantines rows that break one and a
    breach in the loaded table means the gate was bypassed; an empty table only warns.

    * schema: the column set is exactly the storage columns plus ``lineage_columns``; each storage type;
    * not null: required, key and non-nullable columns, columns with a default (ingestion fills them),
      and the local date derived from such a timestamp;
    * ``min``/``max`` -> between; ``accepted_values`` (or ``accepted[accepted_values_from]``) -> in set;
    * ``not_after_run`` timestamps -> at most ``max_ts`` (skipped when ``max_ts`` is None; an aware
      ``max_ts`` is converted to naive UTC, the storage convention);
    * primary key (compound or not) and ``unique`` columns -> unique; ``require_any`` -> at least one set.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column as GxColumn

    from data_contracts.gx_runner import _context

    _context()
    name = table_name or contract.name
    suite = gx.ExpectationSuite(name=f"{name}.contract")
    accepted = accepted or {}
    limit = _naive_utc(max_ts) if max_ts is not None else None

    def add(expectation_cls: Any, check: str, severity: Severity = "blocking", **kwargs: Any) -> None:
        suite.add_expectation(
            expectation_cls(
                **kwargs,
                meta={"check": check, "contract": contract.name},
                severity="critical" if severity == "blocking" else "warning",
            )
        )

    storage = contract.storage_columns()
    add(
        gxe.ExpectTableColumnsToMatchSet,
        "columns",
        column_set=[c for c, _ in storage] + list(lineage_columns),
        exact_match=True,
    )
    add(gxe.ExpectTableRowCountToBeBetween, "has_rows", "warn", min_value=1)
    for col_name, sql_type in storage:
        add(gxe.ExpectColumnValuesToBeOfType, f"{col_name}.type", column=col_name, type_=sql_type)

    for col in contract.columns:
        if _never_null(contract, col):
            add(gxe.ExpectColumnValuesToNotBeNull, f"{col.name}.not_null", column=col.name)
            if col.local_date:
                add(gxe.ExpectColumnValuesToNotBeNull, f"{col.local_date}.not_null", column=col.local_date)
        if col.min is not None or col.max is not None:
            add(
                gxe.ExpectColumnValuesToBeBetween,
                f"{col.name}.between",
                column=col.name,
                min_value=_bound(col, col.min),
                max_value=_bound(col, col.max),
            )
        values = _accepted_values(contract, col, accepted)
        if values is not None:
            add(gxe.ExpectColumnValuesToBeInSet, f"{col.name}.in_set", column=col.name, value_set=values)
        if col.not_after_run and limit is not None:
            add(gxe.ExpectColumnValuesToBeBetween, f"{col.name}.not_after_run", column=col.name, max_value=limit)
        if col.unique and (col.name,) != contract.primary_key:
            add(gxe.ExpectColumnValuesToBeUnique, f"{col.name}.unique", column=col.name)

    if len(contract.primary_key) == 1:
        add(gxe.ExpectColumnValuesToBeUnique, "primary_key.unique", column=contract.primary_key[0])
    elif contract.primary_key:
        add(
            gxe.ExpectCompoundColumnsToBeUnique,
            "primary_key.unique",
            column_list=list(contract.primary_key),
        )

    if contract.require_any:
        *others, last = contract.require_any
        condition = None
        for other in others:
            term = GxColumn(other).is_null()
            condition = term if condition is None else condition & term
        add(
            gxe.ExpectColumnValuesToNotBeNull,
            "require_any",
            column=last,
            **({"row_condition": condition} if condition is not None else {}),
        )
    return suite


def _never_null(contract: Contract, col: Column) -> bool:
    return (
        col.required
        or not col.nullable
        or col.name in contract.primary_key
        or col.default is not None
        or col.default_from is not None
    )


def _bound(col: Column, value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if col.type == "integer" and float(value).is_integer() else value


def _accepted_values(contract: Contract, col: Column, accepted: Mapping[str, Sequence[str]]) -> list[str] | None:
    if col.accepted_values is not None:
        return list(col.accepted_values)
    if col.accepted_values_from is None:
        return None
    if col.accepted_values_from not in accepted:
        raise ContractError(
            f"contract {contract.name}, column {col.name}: accepted values come from the setting "
            f"{col.accepted_values_from!r}; pass accepted={{{col.accepted_values_from!r}: [...]}} "
            f"(the list under {col.accepted_values_from!r} in segments.yaml)"
        )
    return list(accepted[col.accepted_values_from])


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment
