"""Dates are Europe/Oslo calendar days; instants are aware datetimes in UTC."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def today() -> datetime.date:
    return now().astimezone(OSLO).date()


def oslo_date(moment: datetime.datetime) -> datetime.date:
    return moment.astimezone(OSLO).date()
