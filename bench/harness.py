"""Benchmark harness: the whole pipeline per stage (wall, CPU, peak RSS) against the floors of PRODUCT.md §6.

    make bench SCALE=S|M|L [BENCH_ARGS="--nightly"]
    python bench/harness.py --scale M --nightly          # or --customers 300 for a tiny run
    make bench SCALE=M BENCH_ARGS="--engine spark"       # DuckDB and Spark local[2] side by side

Scales: L = 1,000,000 customers (~10M order lines, ~55M browsing events, ~1M feedback rows, from
``segments/sample_data.py``), M = L/10, S = L/100. Landing data is generated once per scale under
``<out>/data/`` (``bench/out/`` is git-ignored) and reused. Each run starts from an empty warehouse in
``<out>/work/<label>/`` (landing files hard-linked), then, each in a fresh child process:

1. the load floor, ``--reps`` times (one bare DuckDB query: the per-customer aggregates from the landing files);
2. the first full run (``pipelines.runner.run_pipeline``, in-process Dagster), measured per stage;
3. the nightly floor, ``--reps`` times (the same aggregates over the warehouse tables);
4. with ``--nightly``: one new day of orders, browsing and feedback files, the incremental run, and the
   nightly floor again over the grown warehouse;
5. with ``--engine spark``: the first run again with ``engine: spark`` (Spark ``local[2]``, the Dagster
   resource's defaults) from its own empty warehouse, its published tables compared with the DuckDB run's,
   and both runs' stages printed side by side (wall and CPU; CPU includes the Spark JVM, a child process).

Results go to ``<out>/bench-<label>-<timestamp>.json`` and are printed as a table with the ratios against
the targets (nightly ≤ 1.5× nightly floor, first run ≤ 3× load floor, peak < 6 GB). The machine here is
shared: compare ratios taken in one run, not seconds across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO)]  # this checkout's packages, whatever the current directory

import probe  # noqa: E402  (after the path set-up above)
from engine_compare import compare_published, engine_table  # noqa: E402

SCALES = {"S": 10_000, "M": 100_000, "L": 1_000_000}
END_DATE = date(2026, 11, 21)
TARGETS = {"first_run_vs_load_floor": 3.0, "nightly_vs_nightly_floor": 1.5, "peak_rss_gb": 6.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of the harness (``--child`` is how it starts its own measured processes)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SCALES), default="S")
    ap.add_argument("--customers", type=int, help="customers to generate instead of the scale's (tiny runs, tests)")
    ap.add_argument("--days", type=int, default=400, help="days of history to generate (default 400)")
    ap.add_argument("--nightly", action="store_true", help="also add one day of files and time the nightly run")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each floor query (median reported)")
    ap.add_argument("--memory-limit", help="DuckDB memory_limit (default: segments.yaml's)")
    ap.add_argument("--out", type=Path, default=BENCH / "out", help="data, work and result folder")
    ap.add_argument("--profile", action="store_true", help="run the pipeline under cProfile (times inflated)")
    ap.add_argument(
        "--bytecode",
        choices=["env", "compiled"],
        default="env",
        help="env: Python as the environment runs it (default); compiled: every measured process reads a private "
        "bytecode cache of site-packages (<out>/pycache, compiled once), as an install with compiled bytecode would",
    )
    ap.add_argument(
        "--engine",
        choices=["duckdb", "spark"],
        default="duckdb",
        help="spark: also time the first run with engine: spark and print both engines side by side",
    )
    ap.add_argument("--keep-work", action="store_true", help="keep the warehouse and published files")
    ap.add_argument("--child", choices=["generate", "run", "floor"], help=argparse.SUPPRESS)
    ap.add_argument("--arg", action="append", default=[], help=argparse.SUPPRESS)
    return ap.parse_args(argv)


# ------------------------------------------------------------------------------------------- children
def child_main(args: argparse.Namespace) -> None:
    """Entry point of a measured child process; writes its result as JSON to the path in ``--arg result=``."""
    opts = dict(a.split("=", 1) for a in args.arg)
    if args.child == "generate":
        from segments.sample_data import generate

        t0 = time.perf_counter()
        counts = generate(
            Path(opts["landing"]),
            customers=int(opts["customers"]),
            days=int(opts["days"]),
            end_date=date.fromisoformat(opts["end_date"]),
        )
        result: dict[str, Any] = {"counts": counts, "generate_s": round(time.perf_counter() - t0, 2)}
    elif args.child == "run":
        from pipeline_run import measured_run

        profile = Path(opts["profile"]) if opts.get("profile") else None
        result = measured_run(Path(opts["config"]), date.fromisoformat(opts["as_of"]), profile_path=profile)
    else:
        from floors import measure_floor

        result = measure_floor(
            opts["kind"],
            as_of=date.fromisoformat(opts["as_of"]),
            landing=Path(opts["landing"]),
            warehouse=Path(opts["warehouse"]),
            memory_limit=opts["memory_limit"],
            reps=int(opts["reps"]),
        )
    Path(opts["result"]).write_text(json.dumps(result, default=str), encoding="utf-8")


def child_env(pycache: Path | None) -> dict[str, str]:
    """Environment of a child: this checkout first on the path; with a bytecode cache, reading and writing it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    env["DAGSTER_DISABLE_TELEMETRY"] = "1"
    if pycache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def ensure_pycache(out: Path) -> Path:
    """A compiled bytecode cache of site-packages under ``out``, built once (what ``--compile-bytecode`` gives)."""
    import sysconfig

    prefix = out / "pycache"
    marker = prefix / "compiled.json"
    if not marker.exists():
        site = sysconfig.get_paths()["purelib"]
        print(f"compiling the bytecode of {site} into {prefix} (once) ...", flush=True)
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "compileall", "-q", "-j", "0", site]
        subprocess.run(cmd, env=child_env(prefix), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        marker.write_text(json.dumps({"site": site, "seconds": round(time.perf_counter() - t0, 1)}), encoding="utf-8")
    return prefix


def run_child(child: str, log: Path, pycache: Path | None = None, **opts: Any) -> dict[str, Any]:
    """Start ``child`` in a fresh Python process and return its JSON result; fail loudly with its log tail.

    ``pycache``: the private bytecode cache of ``--bytecode compiled`` (None: Python as the environment runs it).
    """
    result = log.with_suffix(".json")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", child, "--arg", f"result={result}"]
    cmd += [a for k, v in opts.items() for a in ("--arg", f"{k}={v}")]
    env = child_env(pycache)
    if "config" in opts:
        env["SEGMENTS_CONFIG"] = str(opts["config"])
    with log.open("w") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode != 0 or not result.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"benchmark step {child} failed (exit {done.returncode}); log {log}:\n{tail}")
    return json.loads(result.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------- preparing
def ensure_data(out: Path, label: str, customers: int, days: int) -> dict[str, Any]:
    """Landing files for this scale, generated (in a child process) only when missing."""
    root = out / "data" / label
    marker = root / "generated.json"
    if marker.exists():
        return {**json.loads(marker.read_text(encoding="utf-8")), "landing": str(root / "landing"), "reused": True}
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    print(f"generating {customers:,} customers, {days} days of landing files into {root} ...", flush=True)
    info = run_child(
        "generate",
        root / "generate.log",
        landing=root / "landing",
        customers=customers,
        days=days,
        end_date=END_DATE.isoformat(),
    )
    info["bytes"] = sum(p.stat().st_size for p in (root / "landing").rglob("*") if p.is_file())
    marker.write_text(json.dumps(info), encoding="utf-8")
    return {**info, "landing": str(root / "landing"), "reused": False}


def link_tree(src: Path, dst: Path) -> None:
    """Hard-link every file of ``src`` under ``dst`` (copy across file systems): a private landing dir."""
    for path in sorted(src.rglob("*")):
        if path.is_file():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)


def write_config(work: Path, memory_limit: str | None, engine: str = "duckdb") -> tuple[Path, str]:
    """The shipped segments.yaml with the paths pointed into ``work`` and ``engine`` set; returns its path and
    memory_limit."""
    import yaml

    cfg = yaml.safe_load((REPO / "segments.yaml").read_text(encoding="utf-8"))
    cfg |= {
        "landing_dir": str(work / "landing"),
        "warehouse": str(work / "warehouse.duckdb"),
        "published_dir": str(work / "published"),
        "engine": engine,
    }
    if memory_limit:
        cfg["memory_limit"] = memory_limit
    path = work / "segments.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, str(cfg.get("memory_limit", "4GB"))


# ------------------------------------------------------------------------------------------ reporting
def ratio(num: float, den: float) -> float | None:
    """``num / den`` rounded, or None when the floor took no measurable time."""
    return round(num / den, 2) if den > 0 else None


def judge(results: dict[str, Any]) -> dict[str, Any]:
    """Ratios run/floor and peak against the PRODUCT.md targets."""
    out: dict[str, Any] = {}
    first, load = results["runs"]["first"]["total"], results["floors"]["load"]
    out["first_run_vs_load_floor"] = {
        "wall": ratio(first["wall_s"], load["wall_median_s"]),
        "cpu": ratio(first["cpu_s"], load["cpu_median_s"]),
    }
    nightly = results["runs"].get("nightly")
    if nightly:
        floor = results["floors"]["nightly_after_day"]
        out["nightly_vs_nightly_floor"] = {
            "wall": ratio(nightly["total"]["wall_s"], floor["wall_median_s"]),
            "cpu": ratio(nightly["total"]["cpu_s"], floor["cpu_median_s"]),
        }
    peak = max(r["total"]["peak_rss_mb"] for k, r in results["runs"].items() if k != "first_spark") / 1024
    out["peak_rss_gb"] = round(peak, 2)
    out["targets"] = {
        name: {
            "target": f"<= {limit}x" if name != "peak_rss_gb" else f"< {limit} GB",
            "value": out[name]["wall"] if isinstance(out.get(name), dict) else out.get(name),
        }
        for name, limit in TARGETS.items()
        if name in out
    }
    for name, t in out["targets"].items():
        value, limit = t["value"], TARGETS[name]
        t["met"] = value is not None and (value < limit if name == "peak_rss_gb" else value <= limit)
    return out


def _row(name: str, m: dict[str, Any]) -> str:
    par = m["cpu_s"] / m["wall_s"] if m["wall_s"] > 0 else 0.0
    return f"  {name:<36} {m['wall_s']:>9.2f} {m['cpu_s']:>9.2f} {par:>8.2f} {m['peak_rss_mb']:>9,}"


def format_table(results: dict[str, Any]) -> str:
    """The human summary: facts, a stage table per run, the floors and the ratios."""
    m, v, b, g, data = results["machine"], results["versions"], results["bytecode"], results["git"], results["data"]
    counts = data["counts"]
    compiled = ", ".join(f"{k} {p['compiled']}/{p['modules']}" for k, p in b["packages"].items())
    lines = [
        f"segments benchmark {results['label']}: {counts['customers']:,} customers, {counts['orders_lines']:,} "
        f"order lines, {counts['browsing_events']:,} browsing events, {counts['feedback_rows']:,} feedback rows",
        f"commit {g['commit'][:10]}{' (uncommitted changes)' if g['dirty'] else ''} on {g['branch']}; "
        f"{m['cpus_usable']} cores, {m['memory_gb']} GB, load {m['load_average']} -> {results['load_average_end']}",
        "versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"bytecode: measured with {b['mode']!r}; environment: dont_write_bytecode={b['dont_write_bytecode']}, "
        f"installed packages compiled: {b['all_compiled']} ({compiled})",
    ]
    header = f"  {'stage':<36} {'wall s':>9} {'cpu s':>9} {'cpu/wall':>8} {'peak MB':>9}"
    for name, run in results["runs"].items():
        lines += ["", f"{name} run (snapshot {run['as_of']}){' [profiled]' if run['profiled'] else ''}", header]
        lines += [_row(s["stage"], s) for s in run["stages"]]
        lines.append(_row("total", run["total"]))
        for st in run.get("profile", {}).get("top_statements", [])[:8]:
            lines.append(f"    {st['seconds']:>8.2f}s {st['calls']:>4}x  {st['sql'][:100]}")
        if not run["summary"].get("success"):
            lines.append(f"  RUN FAILED: {run['summary'].get('failures')}")
    lines += ["", f"floors (median of {results['reps']}; one bare DuckDB query)", header]
    for name, f in results["floors"].items():
        median = {**f, "wall_s": f["wall_median_s"], "cpu_s": f["cpu_median_s"]}
        lines.append(_row(f"{name} floor ({f['as_of']})", median))
    lines.append("")
    for name, t in results["judgement"]["targets"].items():
        extra = results["judgement"].get(name)
        cpu = f", cpu {extra['cpu']}x" if isinstance(extra, dict) else ""
        unit = " GB" if name == "peak_rss_gb" else "x wall"
        lines.append(f"{name}: {t['value']}{unit}{cpu} (target {t['target']}) {'met' if t['met'] else 'MISSED'}")
    if "first_spark" in results["runs"]:
        lines += ["", *engine_table(results["runs"]["first"], results["runs"]["first_spark"])]
        lines.append(f"published tables equal on both engines: {results['engine_comparison']}")
    lines.append(f"results: {results['path']}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Generate (if needed), measure floors and runs, write the JSON, print the table; returns the results."""
    args = parse_args(argv)
    if args.child:
        child_main(args)
        return {}
    t0 = time.perf_counter()
    customers = args.customers or SCALES[args.scale]
    label = args.scale if not args.customers else f"c{customers}"
    label += f"-d{args.days}" if args.days != 400 else ""
    results: dict[str, Any] = {
        "label": label,
        "scale": None if args.customers else args.scale,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": probe.machine(),
        "versions": probe.versions(),
        "bytecode": probe.bytecode(),
        "git": probe.git_commit(REPO),
        "reps": args.reps,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    pycache = ensure_pycache(args.out.resolve()) if args.bytecode == "compiled" else None
    results["bytecode"]["mode"] = args.bytecode
    results["data"] = ensure_data(args.out.resolve(), label, customers, args.days)
    work = args.out.resolve() / "work" / label
    shutil.rmtree(work, ignore_errors=True)
    link_tree(Path(results["data"]["landing"]), work / "landing")
    config, memory_limit = write_config(work, args.memory_limit)
    results["memory_limit"] = memory_limit
    floor_opts = {
        "landing": work / "landing",
        "warehouse": work / "warehouse.duckdb",
        "memory_limit": memory_limit,
        "reps": args.reps,
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    def run(name: str, as_of: date) -> dict[str, Any]:
        print(f"{name} run for {as_of} ...", flush=True)
        prof = {"profile": args.out.resolve() / f"profile-{label}-{name}-{stamp}.prof"} if args.profile else {}
        return run_child("run", work / f"run-{name}.log", pycache, config=config, as_of=as_of.isoformat(), **prof)

    def floor(kind: str, as_of: date, tag: str) -> dict[str, Any]:
        print(f"{kind} floor for {as_of} x{args.reps} ...", flush=True)
        return run_child("floor", work / f"floor-{tag}.log", pycache, kind=kind, as_of=as_of.isoformat(), **floor_opts)

    results["floors"] = {"load": floor("load", END_DATE, "load")}
    results["runs"] = {"first": run("first", END_DATE)}
    results["floors"]["nightly"] = floor("nightly", END_DATE, "nightly")
    if args.nightly:
        from nextday import write_next_day

        day, rows = write_next_day(work / "landing", work / "landing")
        assert day == END_DATE + timedelta(days=1), day
        results["nightly_day"] = {"date": day.isoformat(), "rows": rows}
        results["runs"]["nightly"] = run("nightly", day)
        results["floors"]["nightly_after_day"] = floor("nightly", day, "nightly-after")
    if args.engine == "spark":
        spark_work = work.parent / f"{label}-spark"
        shutil.rmtree(spark_work, ignore_errors=True)
        link_tree(Path(results["data"]["landing"]), spark_work / "landing")
        spark_config, _ = write_config(spark_work, args.memory_limit, engine="spark")
        print(f"first run for {END_DATE} with engine: spark ...", flush=True)
        log = spark_work / "run-first-spark.log"
        results["runs"]["first_spark"] = run_child("run", log, pycache, config=spark_config, as_of=END_DATE.isoformat())
        results["engine_comparison"] = compare_published(work / "published", spark_work / "published")
        if not args.keep_work:
            shutil.rmtree(spark_work, ignore_errors=True)
    results["judgement"] = judge(results)
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results["bench_wall_s"] = round(time.perf_counter() - t0, 1)
    path = args.out.resolve() / f"bench-{label}-{stamp}.json"
    results["path"] = str(path)
    path.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    print(format_table(results))
    return results


if __name__ == "__main__":
    main()
