"""The Dagster code location: assets, checks, jobs, schedules, sensors and resources."""

from __future__ import annotations

import os

import dagster as dg

from assets.checks import input_checks, output_checks, output_contract_checks
from assets.ingestion import ingestion_assets
from assets.predictions import prediction_assets
from assets.publishing import publishing_assets
from assets.resources import SegmentsResource
from assets.segmentation import snapshot_assets
from pipelines.schedules import build_landing_sensor, build_nightly_schedule
from segments.config import ConfigError, Settings, load_settings

all_assets = [*ingestion_assets, *snapshot_assets, *prediction_assets, *publishing_assets]
all_checks = [*input_checks, *output_contract_checks, *output_checks]

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("ingestion"),
    description="Load new or changed landing files into the warehouse (no snapshot).",
)
snapshot_job = dg.define_asset_job(
    "snapshot_job",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("ingestion"),
    description="Build and publish one snapshot date from what the warehouse holds.",
)
nightly_job = dg.define_asset_job(
    "nightly_job",
    selection=dg.AssetSelection.all(),
    description="Ingest new files, then build and publish one snapshot date (what the schedule runs).",
)


def _settings(config_path: str) -> Settings | None:
    try:
        return load_settings(config_path or None)
    except ConfigError:
        return None  # the UI still loads; every run fails early with the config error


def build_definitions(config_path: str = "") -> dg.Definitions:
    """Definitions bound to one config file (``$SEGMENTS_CONFIG`` / ./segments.yaml when empty)."""
    settings = _settings(config_path)
    return dg.Definitions(
        assets=all_assets,
        asset_checks=all_checks,
        jobs=[ingest_job, snapshot_job, nightly_job],
        schedules=[build_nightly_schedule(nightly_job, settings)],
        sensors=[build_landing_sensor(nightly_job, settings)],
        resources={"segments": SegmentsResource(config_path=config_path)},
        # One process per run: per-step processes re-import the whole stack, and the warehouse has one
        # writer anyway (bench/executor_bench.py).
        executor=dg.in_process_executor,
    )


defs = build_definitions(os.environ.get("SEGMENTS_CONFIG", ""))
