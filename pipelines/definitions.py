"""The Dagster code location: assets, checks, jobs, schedules, sensors and resources, bound to one config file.

The config file is read once, here: its settings give the snapshot partitions (attached to every
per-customer asset), the schedule and the sensor, and its path goes to the ``segments`` resource. A broken
config fails the code location at load, so the UI shows the error naming the key instead of a
half-working asset graph.
"""

from __future__ import annotations

import os

import dagster as dg

from assets.checks import input_checks, output_checks, output_contract_checks
from assets.ingestion import ingestion_assets
from assets.partitions import snapshot_partitions
from assets.publishing import publishing_assets
from assets.resources import SegmentsResource
from assets.segmentation import snapshot_assets
from pipelines.schedules import build_landing_sensor, build_nightly_schedule
from segments.config import CONFIG_ENV, Settings, load_settings

all_checks = [*input_checks, *output_contract_checks, *output_checks]


def partitioned(assets: list[dg.AssetsDefinition], partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """``assets`` with the snapshot partitions attached (every spec of a multi-asset alike)."""
    return list(dg.map_asset_specs(lambda spec: spec.replace_attributes(partitions_def=partitions), assets))


def build_definitions(config_path: str = "", settings: Settings | None = None) -> dg.Definitions:
    """Definitions bound to one config file (``$SEGMENTS_CONFIG`` / ./segments.yaml when empty)."""
    settings = settings or load_settings(config_path or None)
    partitions = snapshot_partitions(settings)
    assets = [*ingestion_assets, *partitioned([*snapshot_assets, *publishing_assets], partitions)]
    ingest_job = dg.define_asset_job(
        "ingest_job",
        selection=dg.AssetSelection.groups("ingestion"),
        description="Load new or changed landing files into the warehouse (no snapshot).",
    )
    snapshot_job = dg.define_asset_job(
        "snapshot_job",
        selection=dg.AssetSelection.all() - dg.AssetSelection.groups("ingestion"),
        partitions_def=partitions,
        description="Build and publish one snapshot date from what the warehouse holds.",
    )
    nightly_job = dg.define_asset_job(
        "nightly_job",
        selection=dg.AssetSelection.all(),
        partitions_def=partitions,
        description="Ingest new files, then build and publish one snapshot date (what the schedule runs).",
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=all_checks,
        jobs=[ingest_job, snapshot_job, nightly_job],
        schedules=[build_nightly_schedule(nightly_job, settings)],
        sensors=[build_landing_sensor(nightly_job, settings)],
        resources={"segments": SegmentsResource(config_path=str(settings.config_path or config_path or ""))},
        # One process per run: per-step processes re-import the whole stack, and the warehouse has one
        # writer anyway (bench/executor_bench.py).
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What ``dagster dev`` / workspace.yaml load: bound to ``$SEGMENTS_CONFIG`` or ./segments.yaml, built lazily."""
    return build_definitions(os.environ.get(CONFIG_ENV, ""))
