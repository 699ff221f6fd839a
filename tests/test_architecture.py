"""Architecture rules checked by tools: layers point one way (import-linter), and no module grows past
500 lines in the library and Dagster packages, apart from the named exceptions still being split."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
MAX_LINES = 500
# The library and Dagster packages; any other top-level package listed for setuptools is checked too.
CHECKED_PACKAGES = (
    "segments",
    "ingestion",
    "publishing",
    "pipelines",
    "assets",
    "features",
    "models",
    "data_contracts",
)
# Modules over MAX_LINES today, with the reason. Remove an entry once its module is split: the test
# fails on an entry whose module is back under the limit, so this list always names what is too big.
OVER_LIMIT: dict[str, str] = {}


def _setuptools_packages() -> list[str]:
    """The ``[tool.setuptools] packages`` list of pyproject.toml."""
    return list(tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])


def _top_level_packages() -> list[str]:
    return sorted(set(CHECKED_PACKAGES) | {name.split(".")[0] for name in _setuptools_packages()})


def _modules() -> dict[str, int]:
    """Line count of every ``.py`` file under the checked packages, keyed by its path from the repo root."""
    counts = {}
    for package in _top_level_packages():
        for path in sorted((ROOT / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                counts[path.relative_to(ROOT).as_posix()] = len(path.read_text(encoding="utf-8").splitlines())
    return counts


def test_import_layer_contracts_hold() -> None:
    """``lint-imports`` (contracts in pyproject.toml) passes: library packages never import the Dagster layers."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    assert lint_imports.exists(), f"{lint_imports} not found: install the dev extra (pip install -e '.[dev]')"
    # --no-cache: the default cache folder would be written into the repo tree.
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo", str(PYPROJECT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"lint-imports failed (exit {result.returncode}):\n{report}"
    assert "0 broken" in report, report


def test_checked_packages_exist() -> None:
    missing = [p for p in _top_level_packages() if not (ROOT / p / "__init__.py").is_file()]
    assert not missing, f"packages without an __init__.py under {ROOT}: {missing}"
    assert len(_modules()) > len(_top_level_packages())


def test_no_module_over_the_line_limit_except_the_named_ones() -> None:
    too_long = {path: n for path, n in _modules().items() if n > MAX_LINES and path not in OVER_LIMIT}
    assert not too_long, (
        f"modules over {MAX_LINES} lines: {too_long}; split them along their sections "
        "(or, while a split is under way, name them in OVER_LIMIT in tests/test_architecture.py with the reason)"
    )


def test_every_named_exception_is_still_over_the_limit() -> None:
    counts = _modules()
    stale = {path: counts.get(path) for path in OVER_LIMIT if counts.get(path, 0) <= MAX_LINES}
    assert not stale, (
        f"OVER_LIMIT in tests/test_architecture.py names modules that are missing or now at most {MAX_LINES} "
        f"lines (path: lines): {stale}; remove those entries"
    )


def test_every_subpackage_is_listed_for_setuptools() -> None:
    """An explicit ``packages`` list is not searched recursively: a subpackage left out is missing from the wheel."""
    listed = set(_setuptools_packages())
    found = {
        init.parent.relative_to(ROOT).as_posix().replace("/", ".")
        for package in _top_level_packages()
        for init in (ROOT / package).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
