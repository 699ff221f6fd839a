"""The daily snapshot-date partitions shared by every per-customer asset."""

import dagster as dg

from segments.config import ConfigError, load_settings


def _snapshot_partitions() -> dg.DailyPartitionsDefinition:
    """Daily partitions from ``snapshot_start`` in the business time zone (config read at load time)."""
    try:
        settings = load_settings()
        start, tz = settings.snapshot_start.isoformat(), settings.time_zone
    except ConfigError:
        start, tz = "2025-01-01", "UTC"
    return dg.DailyPartitionsDefinition(start_date=start, timezone=tz)


snapshot_partitions = _snapshot_partitions()
