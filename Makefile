# Quick start: `make run` (set up, sample data, one full pipeline run) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Dagster keeps run history and the UI's state here (ignored by git), never in ~/.
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export DAGSTER_DISABLE_TELEMETRY := 1
SEGMENTS_CONFIG ?= $(CURDIR)/segments.yaml
export SEGMENTS_CONFIG

.PHONY: install run test test-crash lint ui sql bench clean sample-data

$(STAMP): pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install -q --compile-bytecode -p $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q -p $(BIN)/python --no-deps -e .
	touch $@

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: pipelines/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp pipelines/dagster.yaml $@

# Generates sample data only when the landing dir is empty, then runs every asset once.
run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/segments sample-data --if-empty
	$(BIN)/segments run

sample-data: $(STAMP)
	$(BIN)/segments sample-data

# --dist loadscope: a module's tests share one worker, so a module fixture (a pipeline run, a Spark session's
# reference runs) runs once; worksteal split modules over both workers and paid for such fixtures twice
# (one full run each on this 2-core machine, 2026-12-02: 856 vs 748 CPU-s, 584 vs 531 s wall).
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadscope

# kill -9 of a real `segments run` at every phase (several minutes; CI runs it after `make test`).
test-crash: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist worksteal -m crash

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# A read-only SQL shell on the BI catalog (views over data/published), with the duckdb Python module.
sql: $(STAMP)
	$(BIN)/segments sql

ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

# Whole pipeline per stage vs the floors (docs/performance.md): SCALE=S (default, < 2 min), M or L;
# BENCH_ARGS="--nightly" also times one incremental day; BENCH_ARGS="--engine spark" also times the first run with
# engine: spark and prints both engines per stage (docs/scale-out.md). Data and results go to bench/out/ (git-ignored).
SCALE ?= S
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python bench/harness.py --scale $(SCALE) $(BENCH_ARGS)

clean:
	rm -rf data .dagster_home
