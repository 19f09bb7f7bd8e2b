"""Support hours (SPEC §3): weekdays 08:00–16:00 Europe/Oslo, closed on Norwegian public
holidays and on extra closed days (by default 24 and 31 December)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import cache

import holidays

from backend.i18n import gettext
from backend.services.clock import OSLO

OPENS = datetime.time(8, 0)
CLOSES = datetime.time(16, 0)
EXTRA_CLOSED_DAYS = ((12, 24), (12, 31))  # (month, day)


@dataclass(frozen=True)
class Availability:
    open_now: bool
    # The next moment support opens (aware, Europe/Oslo); None while open.
    next_opening: datetime.datetime | None


def is_support_day(
    day: datetime.date, extra_closed: tuple[tuple[int, int], ...] = EXTRA_CLOSED_DAYS
) -> bool:
    if day.weekday() >= 5 or (day.month, day.day) in extra_closed:
        return False
    return day not in _public_holidays(day.year)


@cache
def _public_holidays(year: int) -> frozenset[datetime.date]:
    # A set of dates: asking a HolidayBase itself converts the key on every lookup.
    return frozenset(holidays.country_holidays("NO", years=year))


def availability_at(
    moment: datetime.datetime, extra_closed: tuple[tuple[int, int], ...] = EXTRA_CLOSED_DAYS
) -> Availability:
    local = moment.astimezone(OSLO)
    if is_support_day(local.date(), extra_closed) and OPENS <= local.time() < CLOSES:
        return Availability(open_now=True, next_opening=None)
    day = local.date()
    if local.time() >= OPENS or not is_support_day(day, extra_closed):
        day += datetime.timedelta(days=1)
    while not is_support_day(day, extra_closed):
        day += datetime.timedelta(days=1)
    return Availability(
        open_now=False, next_opening=datetime.datetime.combine(day, OPENS, tzinfo=OSLO)
    )


_HOURS = {"opens": OPENS.strftime("%H:%M"), "closes": CLOSES.strftime("%H:%M")}


def support_hours() -> str:
    """The support hours in words, as every page states them ("hverdager 08:00–16:00")."""
    return gettext("hverdager %(opens)s–%(closes)s") % _HOURS


def availability_now(
    extra_closed: tuple[tuple[int, int], ...] = EXTRA_CLOSED_DAYS,
) -> Availability:
    return availability_at(datetime.datetime.now(datetime.UTC), extra_closed)
