"""Hours, days, weeks and months of a time zone as unix-second boundaries (DST, half-hour zones, fractions)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from shared.history.periods import Period, next_start, parse_time, period_name, period_start, period_starts

PARIS, KOLKATA = ZoneInfo("Europe/Paris"), ZoneInfo("Asia/Kolkata")


def at(zone: ZoneInfo, *parts: int) -> int:
    return int(datetime(*parts, tzinfo=zone).timestamp())


@pytest.mark.parametrize("fraction", [0.0, 0.131254, 0.5, 0.999999])
def test_an_hour_starts_on_the_hour_whatever_the_fraction_of_a_second(fraction: float) -> None:
    ts = at(PARIS, 2026, 12, 1, 9, 8, 33) + fraction
    assert period_start(ts, Period.HOUR, PARIS) == at(PARIS, 2026, 12, 1, 9)
    assert period_start(ts, Period.HOUR, KOLKATA) == at(KOLKATA, 2026, 12, 1, 13)  # 13:38:33 there


def test_days_weeks_and_months_follow_the_local_clock_across_dst() -> None:
    ts = at(PARIS, 2026, 3, 29, 15)  # the day the clocks go forward: 23 hours
    day = period_start(ts, Period.DAY, PARIS)
    assert day == at(PARIS, 2026, 3, 29) and next_start(day, Period.DAY, PARIS) - day == 23 * 3600
    assert period_start(ts, Period.WEEK, PARIS) == at(PARIS, 2026, 3, 23)  # Monday
    assert period_start(ts, Period.MONTH, PARIS) == at(PARIS, 2026, 3, 1)
    assert next_start(at(PARIS, 2026, 12, 1), Period.MONTH, PARIS) == at(PARIS, 2027, 1, 1)
    assert [period_name(s, Period.WEEK, PARIS) for s in
            period_starts(at(PARIS, 2026, 12, 30), at(PARIS, 2027, 1, 6), Period.WEEK, PARIS)] == \
        ["2026-W53", "2027-W01"]


def test_parse_time() -> None:
    assert parse_time("1764547200", PARIS) == 1764547200.0
    assert parse_time("2026-12-01", PARIS) == at(PARIS, 2026, 12, 1)
    assert parse_time("2026-12-01T09:00+00:00", PARIS) == at(ZoneInfo("UTC"), 2026, 12, 1, 9)
    with pytest.raises(ValueError, match="neither unix seconds nor"):
        parse_time("yesterday", PARIS)
