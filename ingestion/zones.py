"""Time-zone facts the row rules need: the zone names, whether a zone's offset changes over the data's span,
and the SQL that reads a repeated wall time as its earlier instant (the daylight-saving policy of ``rules.py``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones


@cache
def zone_names() -> tuple[str, ...]:
    """Every region/city zone name of the time-zone database, sorted (bound to the staging statement)."""
    return tuple(sorted(z for z in available_timezones() if "/" in z))


def zone_changes_offset(zone: str, start: date, end: date) -> bool:
    """True when ``zone``'s UTC offset changes between ``start`` and ``end`` (DST or a law change)."""
    return fixed_offset(zone, start, end) is None


@cache
def fixed_offset(zone: str, start: date, end: date) -> timedelta | None:
    """``zone``'s UTC offset when it is the same on every day from ``start`` to ``end``, else None.

    Sampled at local 00:00 and 12:00 of every day, from the day before ``start`` to two days after ``end``
    (the UTC span seen from a zone up to 14 hours away); no offset change in the time-zone database lasts
    less than a day.
    """
    tz = ZoneInfo(zone)
    day, seen = datetime(start.year, start.month, start.day) - timedelta(days=1), set()
    stop = datetime(end.year, end.month, end.day) + timedelta(days=2)
    while day <= stop and len(seen) < 2:
        seen.add(day.replace(tzinfo=tz).utcoffset())
        seen.add((day + timedelta(hours=12)).replace(tzinfo=tz).utcoffset())
        day += timedelta(days=1)
    return seen.pop() if len(seen) == 1 else None


def earlier_instant(zone: str, local: str, utc: str) -> str:
    """SQL: the earlier instant (naive UTC) of wall time ``local`` in ``zone``, given ``utc``, one instant of it.

    Where the offset fell (a fall-back hour of daylight saving, a law change), a wall time exists twice and
    the engines differ: DuckDB reads the later instant, Java the earlier. The earlier is ``local`` minus the
    offset one day before ``utc`` (no two offset changes lie within a day), when that instant is earlier and
    shows ``local`` again; any fall of the offset is met, 30 minutes on Lord Howe as 1 hour in New York.
    """
    prior = f"({utc} - interval 1 day)"
    earlier = f"({local} - (timezone({zone}, timezone('UTC', {prior})) - {prior}))"
    return (
        f"case when {earlier} < {utc} and timezone({zone}, timezone('UTC', {earlier})) = {local} "
        f"then {earlier} else {utc} end"
    )
