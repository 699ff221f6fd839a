"""The daily snapshot-date partitions shared by every per-customer asset, built from the config once."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from segments.config import Settings
from segments.warehouse import first_business_date


def partition_start(settings: Settings, today: date | None = None) -> date:
    """``snapshot_start`` from the config, else the first business date in the warehouse, else yesterday.

    Starting at the data keeps the UI free of hundreds of empty "missing" partitions; before the first
    load (or while another process holds the warehouse) there is one partition, yesterday's.
    """
    if settings.snapshot_start is not None:
        return settings.snapshot_start
    first = first_business_date(settings.warehouse)
    if first is not None:
        return first
    today = today or datetime.now(ZoneInfo(settings.time_zone)).date()
    return today - timedelta(days=1)


def snapshot_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """Daily partitions in the business time zone, from ``partition_start`` to yesterday."""
    return dg.DailyPartitionsDefinition(start_date=partition_start(settings).isoformat(), timezone=settings.time_zone)
