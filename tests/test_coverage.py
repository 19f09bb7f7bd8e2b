"""Coverage of support time (SPEC §2): rounding, the four branches, splits, concurrency,
idempotent logging and voiding — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime

import pytest

from backend.services import agreements, catalog, clock, coverage, ledger
from backend.services.errors import ValidationFailed
from backend.services.validation import FieldError
from backend.tables import (
    HourlyCharge,
    LedgerEntry,
    Lot,
    PriceList,
    Role,
    Ticket,
    TimeEntry,
    User,
)
from tests.support import make_company


@pytest.mark.parametrize(
    ("actual", "billed"), [(1, 15), (15, 15), (16, 30), (44, 45), (46, 60), (600, 600)]
)
def test_billed_minutes_round_up_to_15_at_least_15(actual, billed):
    assert coverage.billed_minutes(actual) == billed


@pytest.mark.parametrize("value", ["0", "-5", "601", "abc", "", "2.5", "15 min"])
def test_actual_minutes_outside_1_to_600_are_refused_in_norwegian(value):
    with pytest.raises(FieldError) as refused:
        coverage.actual_minutes(value)
    assert refused.value.message == "Skriv inn hele minutter fra 1 til 600."


@pytest.mark.parametrize(
    ("minutes", "rate", "amount"), [(15, 135_000, 33_750), (45, 100_001, 75_001)]
)
def test_hourly_amount_is_rounded_half_up_to_whole_ore(minutes, rate, amount):
    assert coverage.hourly_amount_ore(minutes, rate) == amount


class World:
    """A company with a ticket on Inventor, a technician, and the demo catalog."""

    def __init__(self, company_id: int, ticket: Ticket, technician: User) -> None:
        self.company_id, self.ticket, self.technician = company_id, ticket, technician

    async def plan(self, starts_on, ends_on, codes="inventor") -> None:
        await agreements.create_plan(
            company_id=self.company_id,
            product_codes=codes.split(","),
            starts_on=starts_on,
            ends_on=ends_on,
        )

    async def lot(self, minutes, expires_on, codes=("inventor",)) -> Lot:
        return await ledger.credit_lot(
            company_id=self.company_id,
            minutes=minutes,
            expires_on=expires_on,
            product_codes=codes,
            key=f"lot:{self.company_id}:{minutes}:{expires_on}",
            cause=ledger.Cause(type="admin"),
        )

    async def log(self, actual, key, performed_on=None) -> TimeEntry:
        return await coverage.record_time_entry(
            ticket=self.ticket,
            technician=self.technician,
            actual=actual,
            performed_on=performed_on or clock.today(),
            channel="phone",
            note="",
            key=key,
        )


def yesterday() -> datetime.date:
    return clock.today() - datetime.timedelta(days=1)


@pytest.fixture
async def world() -> World:
    await catalog.seed_demo_catalog()
    company_id, email = await make_company()
    user = await User.objects().get(User.email == email)
    ticket = Ticket(
        company=company_id,
        product_code="inventor",
        subject="Skisse låser seg",
        description="…",
        channel="web",
        opened_by=user.id,
        # Opened long ago: support on last Christmas is logged on it.
        created_at=clock.now() - datetime.timedelta(days=800),
    )
    await ticket.save()
    technician = User(
        email=f"tek{company_id}@example.no",
        name="Tekniker",
        role=Role.technician.value,
        password_hash="-",
    )
    await technician.save()
    return World(company_id, ticket, technician)


async def rate() -> int:
    return (await PriceList.objects().first()).hourly_rate_ore


async def test_no_agreement_is_billed_hourly(world):
    entry = await world.log(20, f"a{world.company_id}")
    assert (entry.coverage, entry.billed_minutes, entry.hourly_minutes) == ("hourly", 30, 30)
    assert entry.hourly_amount_ore == coverage.hourly_amount_ore(30, await rate())
    charge = await HourlyCharge.objects().get(HourlyCharge.time_entry == entry.id)
    assert (charge.status, charge.amount_ore) == ("outstanding", entry.hourly_amount_ore)


async def test_a_plan_covering_the_product_debits_nothing(world):
    await world.plan(yesterday(), clock.today() + datetime.timedelta(days=100))
    await world.lot(300, clock.today() + datetime.timedelta(days=300))
    entry = await world.log(50, f"p{world.company_id}")
    assert (entry.coverage, entry.billed_minutes, entry.account_minutes) == ("plan", 60, 0)
    assert await ledger.balance(world.company_id, clock.today()) == 300
    assert not await HourlyCharge.exists().where(HourlyCharge.time_entry == entry.id)


async def test_the_time_account_pays_when_no_plan_covers(world):
    await world.plan(yesterday(), clock.today() + datetime.timedelta(days=100), codes="vault")
    await world.lot(300, clock.today() + datetime.timedelta(days=300))
    entry = await world.log(20, f"t{world.company_id}")
    assert (entry.coverage, entry.account_minutes, entry.hourly_minutes) == ("account", 30, 0)
    assert await ledger.balance(world.company_id, clock.today()) == 270


async def test_a_short_balance_is_split_between_account_and_hourly(world):
    await world.lot(20, clock.today() + datetime.timedelta(days=300))
    entry = await world.log(40, f"s{world.company_id}")
    assert (entry.coverage, entry.account_minutes, entry.hourly_minutes) == ("split", 20, 25)
    assert await ledger.balance(world.company_id, clock.today()) == 0
    charge = await HourlyCharge.objects().get(HourlyCharge.time_entry == entry.id)
    assert charge.minutes == 25


async def test_a_product_no_agreement_covers_is_hourly(world):
    await world.plan(yesterday(), clock.today() + datetime.timedelta(days=100), codes="vault")
    await world.lot(300, clock.today() + datetime.timedelta(days=300), codes=("vault",))
    entry = await world.log(10, f"n{world.company_id}")
    assert entry.coverage == "hourly"
    assert await ledger.balance(world.company_id, clock.today()) == 300


async def test_a_plan_that_ended_yesterday_covers_nothing_today(world):
    await world.plan(yesterday() - datetime.timedelta(days=180), yesterday())
    assert (await world.log(10, f"e{world.company_id}")).coverage == "hourly"
    # Support given on its last day is still covered.
    covered = await world.log(10, f"e2{world.company_id}", performed_on=yesterday())
    assert covered.coverage == "plan"


async def test_a_lot_that_expired_yesterday_pays_nothing(world):
    await world.lot(300, yesterday())
    entry = await world.log(10, f"x{world.company_id}")
    assert entry.coverage == "hourly"
    assert await ledger.balance(world.company_id, clock.today()) == 0
    # The hourly sweep (not the balance read) writes the lot off.
    await ledger.expire_lots(clock.today(), world.company_id)
    kinds = [
        e.kind for e in await LedgerEntry.objects().where(LedgerEntry.company == world.company_id)
    ]
    assert kinds.count("expiry") == 1


async def test_support_on_a_holiday_is_just_logged(world):
    await world.lot(300, datetime.date(2027, 12, 31))
    christmas = datetime.date(clock.today().year - 1, 12, 25)
    lot = await world.lot(120, datetime.date(clock.today().year + 1, 1, 1))
    entry = await world.log(15, f"h{world.company_id}", performed_on=christmas)
    assert entry.performed_on == christmas and entry.coverage == "account"
    assert lot.id


async def test_future_dates_are_refused(world):
    with pytest.raises(ValidationFailed) as refused:
        await world.log(
            15, f"f{world.company_id}", performed_on=clock.today() + datetime.timedelta(1)
        )
    assert "performed_on" in refused.value.errors


async def test_logging_the_same_form_twice_makes_one_entry(world):
    await world.lot(300, clock.today() + datetime.timedelta(days=300))
    first, second = await asyncio.gather(
        world.log(20, f"dup{world.company_id}"), world.log(20, f"dup{world.company_id}")
    )
    assert first.id == second.id
    assert await TimeEntry.count().where(TimeEntry.ticket == world.ticket.id) == 1
    assert await ledger.balance(world.company_id, clock.today()) == 270


async def test_fifty_concurrent_quarter_hours_against_300_minutes(world):
    await world.lot(300, clock.today() + datetime.timedelta(days=300))
    entries = await asyncio.gather(*(world.log(15, f"c{world.company_id}-{n}") for n in range(50)))
    by_coverage = {
        kind: sum(1 for e in entries if e.coverage == kind)
        for kind in ("account", "hourly", "split")
    }
    assert by_coverage == {"account": 20, "hourly": 30, "split": 0}
    assert await ledger.balance(world.company_id, clock.today()) == 0
    assert await HourlyCharge.count().where(HourlyCharge.company == world.company_id) == 30
    lots = await Lot.objects().where(Lot.company == world.company_id)
    sums = await ledger.entries_sum_by_lot(world.company_id)
    assert all(lot.remaining_minutes >= 0 and sums[lot.id] == lot.remaining_minutes for lot in lots)


async def test_void_gives_minutes_back_and_cancels_the_unpaid_charge(world):
    await world.lot(20, clock.today() + datetime.timedelta(days=300))
    entry = await world.log(40, f"v{world.company_id}")
    voided = await coverage.void_time_entry(entry.id, world.technician, "Feil sak")
    assert voided.voided_at is not None and voided.void_reason == "Feil sak"
    assert await ledger.balance(world.company_id, clock.today()) == 20
    charge = await HourlyCharge.objects().get(HourlyCharge.time_entry == entry.id)
    assert charge.status == "cancelled"
    # Voiding again changes nothing.
    await coverage.void_time_entry(entry.id, world.technician, "Igjen")
    assert await ledger.balance(world.company_id, clock.today()) == 20


async def test_void_needs_a_reason(world):
    entry = await world.log(10, f"r{world.company_id}")
    with pytest.raises(ValidationFailed):
        await coverage.void_time_entry(entry.id, world.technician, "  ")
