"""What a company is warned of (SPEC §7): little time left on the account, a lot or the plan
ending within 30 days, hourly support not paid yet. The dashboard shows them; the daily mail
(issue 11) will send the same ones."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from backend.services import ledger
from backend.services.overview import AccountSummary

LOW_BALANCE_MINUTES = 60  # below this, the account is running low
ENDING_WITHIN_DAYS = 30


@dataclass(frozen=True)
class Warning:
    kind: str  # "low_balance" | "lot_ending" | "plan_ending" | "charges"
    minutes: int = 0  # low_balance: what is left; lot_ending: what the lot still holds
    last_day: datetime.date | None = None  # lot_ending, plan_ending: the last usable day
    amount_ore: int = 0  # charges: outstanding, ex. MVA


def ends_soon(last_day: datetime.date, today: datetime.date) -> bool:
    return today <= last_day < today + datetime.timedelta(days=ENDING_WITHIN_DAYS)


def account_warnings(
    summary: AccountSummary, today: datetime.date, low_balance: int = LOW_BALANCE_MINUTES
) -> list[Warning]:
    found = []
    if summary.lots and summary.remaining_minutes < low_balance:
        found.append(Warning("low_balance", minutes=summary.remaining_minutes))
    for lot in summary.lots:
        last_day = ledger.last_usable_day(lot.expires_on)
        if ends_soon(last_day, today):
            found.append(Warning("lot_ending", minutes=lot.remaining_minutes, last_day=last_day))
    if summary.active_plan and ends_soon(summary.plan_ends_on, today):
        found.append(Warning("plan_ending", last_day=summary.plan_ends_on))
    if summary.outstanding_ore:
        found.append(Warning("charges", amount_ore=summary.outstanding_ore))
    return found
