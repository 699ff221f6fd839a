"""Benchmark: one snapshot (features -> segmentation -> summary -> publish) at scale, vs a bare DuckDB floor.

Synthetic warehouse tables are generated directly in DuckDB (same schema ingestion produces) at
``--customers`` N: 10·N order lines, 50·N browsing events, N feedback rows (reference scale "L" is
N = 1,000,000). Each stage runs in this process; the report gives seconds per stage, the floor (one
bare DuckDB query computing comparable per-customer aggregates from the same tables) and peak RSS.

    .venv/bin/python bench/snapshot_bench.py --customers 1000000 [--memory-limit 4GB] [--keep]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from datetime import date
from pathlib import Path

import duckdb

from data_contracts.contracts import output_contracts
from features.customer_features import build_customer_features
from features.segment_reports import segment_summary
from ingestion.loader import ensure_schema
from models.pipeline import segment_customers
from models.registry import builtin_registry
from models.settings import load_segmentation_settings
from publishing.outputs import snapshot_tables
from publishing.parquet import build_catalog, publish
from segments.warehouse import read_snapshot, replace_snapshot

AS_OF = date(2026, 11, 21)

GEN = {
    "customers": """
        insert into customers
        select 'C' || lpad(cast(i as varchar), 8, '0'), timestamp '2024-01-01' + to_days(cast(i % 900 as int)),
               date '2024-01-01' + cast(i % 900 as int), 'r' || cast(i % 7 as varchar), 'c' || cast(i % 50 as varchar),
               'organic', 1960 + cast(i % 45 as int), 'F', null, null, null, 'gen', i + 2, 'bench'
        from range($n) t(i)""",
    "orders": """
        insert into orders
        select 'O' || cast(i // 3 as varchar), i % 3 + 1,
               'C' || lpad(cast(hash(i // 3) % $n as varchar), 8, '0'),
               timestamp '2025-10-17' + to_seconds(cast(hash(i // 3) % 34560000 as bigint)),
               cast(timestamp '2025-10-17' + to_seconds(cast(hash(i // 3) % 34560000 as bigint)) as date),
               cast(1 + (hash(i) % 50000) / 100.0 as decimal(18, 2)), 1 + hash(i) % 3,
               cast(1 + (hash(i) % 20000) / 100.0 as decimal(18, 2)),
               case when hash(i // 3) % 50 = 0 then 'cancelled' when hash(i) % 40 = 0 then 'refunded'
                    else 'completed' end,
               case when hash(i // 3) % 3 = 0 then 'offline' else 'online' end, 'S1',
               'cat' || cast(hash(i) % 12 as varchar), 'P' || cast(hash(i) % 5000 as varchar), 'CNY',
               'gen', i + 2, 'bench'
        from range($n * 10) t(i)""",
    "browsing": """
        insert into browsing
        select case when hash(i // 8) % 7 = 0 then null
                    else 'C' || lpad(cast(hash(i // 8) % $n as varchar), 8, '0') end,
               'S' || cast(i // 8 as varchar),
               timestamp '2025-10-17' + to_seconds(cast(hash(i // 8) % 34560000 as bigint) + i % 8 * 30),
               cast(timestamp '2025-10-17' + to_seconds(cast(hash(i // 8) % 34560000 as bigint) + i % 8 * 30)
                    as date),
               (['page_view', 'product_view', 'search', 'add_to_cart', 'checkout'])[1 + cast(hash(i) % 5 as int)],
               'cat' || cast(hash(i) % 12 as varchar), cast(hash(i) % 120 as bigint), 'mobile',
               'gen', i + 2, 'bench'
        from range($n * 50) t(i)""",
    "feedback": """
        insert into feedback
        select 'F' || cast(i as varchar), 'C' || lpad(cast(hash(i) % $n as varchar), 8, '0'),
               timestamp '2025-10-17' + to_seconds(cast(hash(i) % 34560000 as bigint)),
               cast(timestamp '2025-10-17' + to_seconds(cast(hash(i) % 34560000 as bigint)) as date),
               (['survey', 'review', 'complaint', 'support'])[1 + cast(hash(i) % 4 as int)],
               1 + hash(i) % 5, hash(i * 7) % 11, null, 'gen', i + 2, 'bench'
        from range($n) t(i)""",
}

FLOOR = """
with o as (
    select customer_id, count(distinct order_id) as frequency,
           sum(case when status = 'completed' then amount when status = 'refunded' then -amount end) as monetary,
           max(order_date) as last_order
    from orders where order_date <= $d and status <> 'cancelled' group by customer_id
),
b as (
    select customer_id, count(distinct session_id) as sessions, count(*) as events
    from browsing where event_date <= $d and customer_id is not null group by customer_id
),
f as (select customer_id, count(*) as n, avg(rating) as r from feedback where submitted_date <= $d group by 1)
select count(*) from o full join b using (customer_id) full join f using (customer_id)
"""


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    """Generate, then time each stage of one snapshot."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/segments-bench-snapshot"))
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--keep", action="store_true", help="reuse an existing generated warehouse")
    args = ap.parse_args()
    wh = args.work / "warehouse.duckdb"
    if not (args.keep and wh.exists()):
        shutil.rmtree(args.work, ignore_errors=True)
        args.work.mkdir(parents=True)
        con = duckdb.connect(str(wh))
        ensure_schema(con)
        t0 = time.perf_counter()
        for sql in GEN.values():
            con.execute(sql, {"n": args.customers})
        con.execute("checkpoint")
        con.close()
        print(f"generated warehouse for {args.customers:,} customers in {time.perf_counter() - t0:.1f}s")
    con = duckdb.connect(str(wh))
    con.execute(f"set memory_limit = '{args.memory_limit}'")
    counts = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in GEN}
    print("rows: " + ", ".join(f"{t}={n:,}" for t, n in counts.items()))
    stages: dict[str, float] = {}

    def stage(name: str, fn):
        t = time.perf_counter()
        out = fn()
        stages[name] = time.perf_counter() - t
        print(f"  {name:<22} {stages[name]:>8.1f}s   peak RSS so far {_peak_mb():>6} MB", flush=True)
        return out

    stage("floor (bare aggregate)", lambda: con.execute(FLOOR, {"d": AS_OF}).fetchall())
    stage("customer_features", lambda: build_customer_features(con, AS_OF))
    feats = stage("read features", lambda: read_snapshot(con, "customer_features", AS_OF).sort("customer_id"))
    result = stage("segment_customers", lambda: segment_customers(feats, load_segmentation_settings({})))
    stage(
        "write segments",
        lambda: [
            replace_snapshot(con, t, f, AS_OF)
            for t, f in (
                ("customer_segments", result.customers),
                ("rfm_cut_points", result.cut_points),
                ("cluster_profiles", result.cluster_profiles),
            )
        ],
    )
    summ = stage("segment_summary", lambda: segment_summary(con, AS_OF, builtin_registry(load_segmentation_settings())))
    assert summ.height > 0, "segment_summary is empty"
    stage("write summary", lambda: replace_snapshot(con, "segment_summary", summ, AS_OF))
    tables = stage("collect outputs", lambda: snapshot_tables(con, AS_OF))
    assert tables["customer_segments"].num_rows == result.customers.height
    stage(
        "publish parquet",
        lambda: publish(args.work / "published", tables, snapshot_date=AS_OF, contracts=output_contracts()),
    )
    stage("build catalog", lambda: build_catalog(args.work / "published", output_contracts()))
    con.close()
    total = sum(v for k, v in stages.items() if not k.startswith("floor"))
    print(
        f"snapshot total {total:.1f}s = {total / stages['floor (bare aggregate)']:.1f}x the floor; "
        f"peak RSS {_peak_mb()} MB; customers {result.customers.height:,}"
    )


if __name__ == "__main__":
    main()
