"""Gather the published tables of one snapshot from the warehouse, in their output-contract shape."""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa

from data_contracts.contracts import Contract, output_contracts
from segments.warehouse import table_exists


def _select(con: duckdb.DuckDBPyConnection, contract: Contract, sql: str, params: dict[str, object]) -> pa.Table:
    """Run ``sql`` and keep exactly the contract's columns, in order."""
    cols = ", ".join(f'"{c}"' for c in contract.column_names)
    order = ", ".join(f'"{k}"' for k in contract.primary_key) or cols
    return con.sql(f"select {cols} from ({sql}) order by {order}", params=params).to_arrow_table()


def snapshot_tables(con: duckdb.DuckDBPyConnection, as_of: date) -> dict[str, pa.Table]:
    """customer_segments, segment_summary, segment_migrations, rfm_cut_points, cluster_profiles for ``as_of``.

    Rows are sorted by the contract key. Cluster profiles are unpivoted to one row per feature so the
    published schema does not change when an analyst picks other clustering features.
    """
    contracts = output_contracts()
    p = {"d": as_of}
    out = {
        name: _select(con, contracts[name], f'select * from "{name}" where snapshot_date = $d', p)
        for name in ("customer_segments", "segment_summary", "rfm_cut_points")
    }
    if table_exists(con, "segment_migrations"):
        out["segment_migrations"] = _select(
            con, contracts["segment_migrations"], "select * from segment_migrations where snapshot_date = $d", p
        )
    else:
        out["segment_migrations"] = _select(
            con,
            contracts["segment_migrations"],
            "select null::date as snapshot_date, null::date as previous_snapshot_date, null as segmentation, "
            "null as from_segment, null as to_segment, 0::bigint as customers where false",
            {},
        )
    feature_cols = [
        r[0][: -len("_mean")] for r in con.execute("describe cluster_profiles").fetchall() if r[0].endswith("_mean")
    ]
    unions = " union all ".join(
        f"select snapshot_date, cluster_id, cluster_name, customers, share, '{f}' as feature, "
        f'cast("{f}_mean" as double) as mean, cast("{f}_median" as double) as median '
        f"from cluster_profiles where snapshot_date = $d"
        for f in feature_cols
    ) or (
        "select null::date as snapshot_date, null::bigint as cluster_id, null as cluster_name, "
        "null::bigint as customers, null::double as share, null as feature, null::double as mean, "
        "null::double as median where false"
    )
    out["cluster_profiles"] = _select(con, contracts["cluster_profiles"], unions, p if feature_cols else {})
    return out


def run_tables(con: duckdb.DuckDBPyConnection) -> dict[str, pa.Table]:
    """data_quality (every ingest attempt of every file) and quarantine, sorted by key."""
    contracts = output_contracts()
    dq = _select(con, contracts["data_quality"], "select * from ingest_log where status <> 'unchanged'", {})
    q = _select(con, contracts["quarantine"], "select * from quarantine", {})
    return {
        "data_quality": dq,
        "quarantine": q.sort_by([("source", "ascending"), ("file", "ascending"), ("line", "ascending")]),
    }
