"""Gather the published tables of one snapshot from the warehouse, in their output-contract shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import duckdb
import pyarrow as pa

from data_contracts.contracts import SNAPSHOT_OUTPUTS, Contract, output_contracts
from segments.warehouse import table_exists


def contract_select(contract: Contract, sql: str) -> str:
    """``sql`` narrowed to exactly the contract's columns, in order, sorted by the contract key."""
    cols = ", ".join(f'"{c}"' for c in contract.column_names)
    order = ", ".join(f'"{k}"' for k in contract.primary_key) or cols
    return f"select {cols} from ({sql}) order by {order}"


def _select(con: duckdb.DuckDBPyConnection, contract: Contract, sql: str, params: dict[str, object]) -> pa.Table:
    """Run ``sql`` and keep exactly the contract's columns, in order."""
    return con.sql(contract_select(contract, sql), params=params).to_arrow_table()


def _empty(contract: Contract) -> str:
    """A zero-row select with the contract's columns and storage types."""
    cols = ", ".join(f'cast(null as {c.sql_type}) as "{c.name}"' for c in contract.columns)
    return f"select {cols} where false"


def snapshot_tables(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    names: Sequence[str] = SNAPSHOT_OUTPUTS,
    windows: dict[str, int] | None = None,
    contracts: Mapping[str, Contract] | None = None,
) -> dict[str, pa.Table]:
    """The published snapshot tables ``names`` (default: all of them) for ``as_of``.

    Rows are sorted by the contract key. Cluster profiles are unpivoted to one row per feature so the
    published schema does not change when an analyst picks other clustering features. A table never
    built yet (no migrations before the second snapshot) comes back empty with its contract's schema.
    Window-named columns follow ``windows`` (those the snapshot's features were built with).
    ``contracts`` overrides the packaged ones (pass the config's, whose customer_segments has the
    classification and tag columns).
    """
    contracts = contracts or output_contracts(windows)
    out: dict[str, pa.Table] = {}
    for name in names:
        contract = contracts[name]
        if not table_exists(con, name):
            out[name] = _select(con, contract, _empty(contract), {})
        elif name == "cluster_profiles":
            features = [
                r[0][: -len("_mean")]
                for r in con.execute("describe cluster_profiles").fetchall()
                if r[0].endswith("_mean")
            ]
            unions = " union all ".join(
                "select snapshot_date, cluster_id, cluster_name, customers, share as share_of_clustered, "
                f"'{f}' as feature, "
                f'cast("{f}_mean" as double) as mean, cast("{f}_median" as double) as median '
                f"from cluster_profiles where snapshot_date = $d"
                for f in features
            )
            out[name] = (
                _select(con, contract, unions, {"d": as_of})
                if features
                else _select(con, contract, _empty(contract), {})
            )
        else:
            out[name] = _select(con, contract, f'select * from "{name}" where snapshot_date = $d', {"d": as_of})
    return out


def run_tables(con: duckdb.DuckDBPyConnection) -> dict[str, pa.Table]:
    """data_quality (every ingest attempt of every file) and quarantine, sorted by key."""
    contracts = output_contracts()
    dq = _select(con, contracts["data_quality"], "select * from ingest_log where status <> 'unchanged'", {})
    q = _select(con, contracts["quarantine"], "select * from quarantine", {})
    return {"data_quality": dq, "quarantine": q}  # quarantine has no key: ordered by source, file, line, ...
