"""Support per company and day (the statement's chart, SPEC §7), kept as time entries are
logged and voided: the time entries not voided, by the day support was given, as the plan's
billed minutes, the minutes taken from the account and those billed by the hour (a split
entry counts in both)."""

from __future__ import annotations

from backend.db import fetch
from backend.tables import Coverage, SupportDay, TimeEntry

# Atomic on both engines, concurrent writers included: the row of the day is made or added to.
_ADD = (
    "INSERT INTO support_day (company, day, plan_minutes, account_minutes, hourly_minutes)"
    " VALUES ({}, {}, {}, {}, {}) ON CONFLICT (company, day) DO UPDATE SET"
    " plan_minutes = support_day.plan_minutes + excluded.plan_minutes,"
    " account_minutes = support_day.account_minutes + excluded.account_minutes,"
    " hourly_minutes = support_day.hourly_minutes + excluded.hourly_minutes"
)


def figures(entry: TimeEntry) -> tuple[int, int, int]:
    """What a time entry adds to its day: (plan, account, hourly) minutes."""
    plan = entry.billed_minutes if entry.coverage == Coverage.plan.value else 0
    return plan, entry.account_minutes, entry.hourly_minutes


async def count(entry: TimeEntry, sign: int = 1) -> None:
    """Add a logged entry to its day (`sign` -1: take a voided one away), in the caller's
    transaction."""
    plan, account, hourly = figures(entry)
    await fetch(
        SupportDay,
        _ADD,
        entry.company,
        entry.performed_on,
        sign * plan,
        sign * account,
        sign * hourly,
    )
