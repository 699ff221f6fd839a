"""Test-only entry point: the real ``segments`` CLI, killed with SIGKILL at the phase in ``SEGMENTS_CRASH_AT``.

``python tests/crash_run.py --config C run`` behaves exactly like ``python -m pipelines.cli --config C
run`` (same process, same code) except that one library function, chosen by the phase, ends the
process with SIGKILL — the same as ``kill -9`` from outside, but at a point that is hit every time
instead of whenever a timer fires. Nothing in the product reads the variable.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_on_call(owner: Any, name: str, *, nth: int = 1, after: bool = False) -> None:
    """Replace ``owner.name`` so that its ``nth`` call SIGKILLs the process (before it runs, or just after)."""
    real: Callable[..., Any] = getattr(owner, name)
    calls = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == nth and not after:
            _die()
        out = real(*args, **kwargs)
        if calls[0] == nth and after:
            _die()
        return out

    setattr(owner, name, wrapper)


def install(phase: str) -> None:
    """Arm the kill for ``phase`` (see ``PHASES``)."""
    from data_contracts import table_checks
    from ingestion.loader import Ingestor
    from models import stages
    from publishing import atomic, catalog

    phases: dict[str, Callable[[], None]] = {
        # one new file committed, the next one inside its transaction
        "ingest": lambda: kill_on_call(Ingestor, "_insert", nth=2, after=True),
        "checks": lambda: kill_on_call(table_checks, "input_findings"),
        "segmentation": lambda: kill_on_call(stages, "segment_customers"),
        # publishing: history temp files, the set folder's files, history renames, set folder rename,
        # the symlink switch, pruning the old sets, the catalog rebuild
        "publish_history": lambda: kill_on_call(atomic, "_write_parquet", nth=3),
        "publish_set": lambda: kill_on_call(atomic, "_write_parquet", nth=8),
        "publish_renames": lambda: kill_on_call(atomic, "_replace", nth=2),
        "publish_place": lambda: kill_on_call(atomic, "_place_set"),
        "publish_switch": lambda: kill_on_call(atomic, "_switch_current"),
        "publish_prune": lambda: kill_on_call(atomic, "_prune_sets"),
        "catalog": lambda: kill_on_call(catalog, "catalog_statements"),
    }
    if phase not in phases:
        raise SystemExit(f"SEGMENTS_CRASH_AT={phase!r}: expected one of {sorted(phases)}")
    phases[phase]()


if __name__ == "__main__":
    if os.environ.get("SEGMENTS_CRASH_AT"):
        install(os.environ["SEGMENTS_CRASH_AT"])
    from pipelines.cli import main

    sys.exit(main())
