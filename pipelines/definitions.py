"""The Dagster code location: assets, checks, jobs, schedules, sensors and resources."""

from __future__ import annotations

import dagster as dg

from assets.ingestion import ingestion_assets
from pipelines.resources import SegmentsResource

all_assets = [*ingestion_assets]

ingest_job = dg.define_asset_job(
    "ingest_job", selection=dg.AssetSelection.groups("ingestion"), description="Load new landing files."
)

defs = dg.Definitions(
    assets=all_assets,
    jobs=[ingest_job],
    resources={"segments": SegmentsResource(config_path=dg.EnvVar("SEGMENTS_CONFIG").get_value() or "")},
)
