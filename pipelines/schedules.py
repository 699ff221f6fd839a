"""The nightly schedule and the landing-dir sensor."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from ingestion.loader import discover_files
from segments.config import Settings


def previous_business_day(moment: datetime, time_zone: str) -> str:
    """Partition key of the day before ``moment`` in the business time zone (the snapshot a night builds)."""
    local = moment.astimezone(ZoneInfo(time_zone)) if moment.tzinfo else moment
    return (local.date() - timedelta(days=1)).isoformat()


def build_nightly_schedule(job: dg.UnresolvedAssetJobDefinition, settings: Settings) -> dg.ScheduleDefinition:
    """Runs the partitioned ``job`` every night for the last complete business day; on by default.

    Built from the job's daily partitions (business time zone), so the UI shows the partition each tick
    builds and a missed night can be backfilled from the partition view.
    """
    return dg.build_schedule_from_partitioned_job(
        job,
        name="nightly_segments",
        hour_of_day=settings.schedule.hour,
        minute_of_hour=settings.schedule.minute,
        default_status=dg.DefaultScheduleStatus.RUNNING
        if settings.schedule.enabled
        else dg.DefaultScheduleStatus.STOPPED,
        description="Ingest new landing files and build/publish yesterday's snapshot.",
        tags={"trigger": "nightly"},
    )


def landing_fingerprint(settings: Settings) -> dict[str, list[float]]:
    """path -> [size, mtime] of every landing file the config's globs match."""
    out: dict[str, list[float]] = {}
    for source in settings.sources:
        for path in discover_files(settings, source):
            st = path.stat()
            out[path.relative_to(settings.landing_dir).as_posix()] = [st.st_size, st.st_mtime]
    return out


def build_landing_sensor(job: dg.UnresolvedAssetJobDefinition, settings: Settings) -> dg.SensorDefinition:
    """Off by default: when landing files appear or change, run ``job`` for the previous business day."""

    @dg.sensor(
        name="landing_files_sensor",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Triggers a run when new or changed files arrive in the landing dir (cursor: file sizes/mtimes).",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        if settings.landing_url is not None:
            return dg.SkipReason(
                f"landing_url {settings.landing_url} is listed by Spark, not watched here: the nightly schedule "
                "ingests it (or materialize the ingestion assets)"
            )
        seen = json.loads(context.cursor) if context.cursor else {}
        now = landing_fingerprint(settings)
        changed = sorted(p for p, fp in now.items() if seen.get(p) != fp)
        if not changed:
            return dg.SkipReason("no new or changed landing files")
        key = previous_business_day(datetime.now(ZoneInfo("UTC")), settings.time_zone)
        digest = hashlib.sha256(json.dumps({p: now[p] for p in changed}, sort_keys=True).encode()).hexdigest()[:12]
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"landing-{key}-{digest}",
                    partition_key=key,
                    tags={"trigger": "landing_files", "files": str(len(changed))},
                )
            ],
            cursor=json.dumps(now, sort_keys=True),
        )

    return _sensor
