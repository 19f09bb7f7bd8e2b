"""The ledger's operations and invariants (SPEC §5), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime

import pytest

from backend.services import catalog, ledger
from backend.services.errors import ValidationFailed
from backend.services.ledger import Cause
from backend.tables import EntryKind, LedgerEntry, LedgerOperation, Lot
from tests.support import make_company

TODAY = datetime.date(2026, 11, 26)
ORDER = Cause(type="order", id="1")
WORK = Cause(type="time_entry", id="1")


async def assert_invariants(company_id: int) -> None:
    sums = await ledger.entries_sum_by_lot(company_id)
    lots = await Lot.objects().where(Lot.company == company_id)
    for lot in lots:
        assert lot.remaining_minutes >= 0
        assert sums.get(lot.id, 0) == lot.remaining_minutes


async def lot(
    company_id: int, minutes: int, expires_on: datetime.date, key: str, codes=("inventor",)
):
    return await ledger.credit_lot(
        company_id=company_id,
        minutes=minutes,
        expires_on=expires_on,
        product_codes=codes,
        key=key,
        cause=ORDER,
    )


async def test_credit_is_idempotent():
    company_id, _ = await make_company()
    first = await lot(company_id, 300, TODAY.replace(year=2027), f"c{company_id}")
    again = await lot(company_id, 300, TODAY.replace(year=2027), f"c{company_id}")
    assert first.id == again.id
    assert await ledger.balance(company_id, TODAY) == 300
    await assert_invariants(company_id)


async def test_debit_takes_from_the_lot_that_expires_first_and_reports_the_rest():
    company_id, _ = await make_company()
    late = await lot(company_id, 60, datetime.date(2027, 6, 1), f"late{company_id}")
    early = await lot(company_id, 30, datetime.date(2027, 1, 1), f"early{company_id}")

    result = await ledger.debit(
        company_id=company_id, minutes=45, on_date=TODAY, key=f"d{company_id}", cause=WORK
    )
    assert result == ledger.DebitResult(debited_minutes=45, uncovered_minutes=0)
    assert (await Lot.objects().get(Lot.id == early.id)).remaining_minutes == 0
    assert (await Lot.objects().get(Lot.id == late.id)).remaining_minutes == 45

    short = await ledger.debit(
        company_id=company_id, minutes=60, on_date=TODAY, key=f"d2{company_id}", cause=WORK
    )
    assert short == ledger.DebitResult(debited_minutes=45, uncovered_minutes=15)
    assert await ledger.balance(company_id, TODAY) == 0
    # A replay moves nothing and says the same.
    again = await ledger.debit(
        company_id=company_id, minutes=60, on_date=TODAY, key=f"d2{company_id}", cause=WORK
    )
    assert again == short
    await assert_invariants(company_id)


async def test_an_uncovered_debit_stays_uncovered_when_replayed_after_a_top_up():
    company_id, _ = await make_company()
    first = await ledger.debit(
        company_id=company_id, minutes=15, on_date=TODAY, key=f"e{company_id}", cause=WORK
    )
    await lot(company_id, 60, datetime.date(2027, 1, 1), f"t{company_id}")
    again = await ledger.debit(
        company_id=company_id, minutes=15, on_date=TODAY, key=f"e{company_id}", cause=WORK
    )
    assert first == again == ledger.DebitResult(debited_minutes=0, uncovered_minutes=15)
    assert await ledger.balance(company_id, TODAY) == 60


async def test_debit_skips_lots_for_other_products():
    company_id, _ = await make_company()
    await lot(company_id, 60, datetime.date(2027, 1, 1), f"v{company_id}", codes=("vault",))
    result = await ledger.debit(
        company_id=company_id,
        minutes=15,
        on_date=TODAY,
        key=f"d{company_id}",
        cause=WORK,
        product_code="inventor",
    )
    assert result.uncovered_minutes == 15


async def test_expiry_writes_off_by_an_entry_and_only_once():
    company_id, _ = await make_company()
    old = await lot(company_id, 120, datetime.date(2026, 11, 26), f"old{company_id}")
    await lot(company_id, 60, datetime.date(2027, 11, 26), f"new{company_id}")
    # Reading the balance counts only the unexpired lot and writes nothing.
    assert await ledger.balance(company_id, TODAY) == 60
    entries = await LedgerEntry.objects().where(LedgerEntry.lot == old.id)
    assert [(e.kind, e.minutes) for e in entries] == [("credit", 120)]
    # The sweep writes it off, once.
    assert await ledger.expire_lots(TODAY, company_id) == 120
    assert await ledger.expire_lots(TODAY, company_id) == 0
    assert await ledger.balance(company_id, TODAY) == 60
    entries = await LedgerEntry.objects().where(LedgerEntry.lot == old.id)
    assert [(e.kind, e.minutes) for e in entries] == [("credit", 120), ("expiry", -120)]
    await assert_invariants(company_id)


async def test_reversal_gives_minutes_back_and_rewrites_off_expired_lots():
    company_id, _ = await make_company()
    short_lived = await lot(company_id, 30, datetime.date(2026, 12, 1), f"s{company_id}")
    await ledger.debit(
        company_id=company_id, minutes=30, on_date=TODAY, key=f"w{company_id}", cause=WORK
    )
    # Voided after the lot expired: given back, then written off again by an expiry entry.
    later = datetime.date(2026, 12, 5)
    given = await ledger.reverse(
        original_key=f"w{company_id}", key=f"v{company_id}", cause=WORK, today=later
    )
    assert given == 30
    # A replay answers the same and moves nothing (the entries below show it).
    assert (
        await ledger.reverse(
            original_key=f"w{company_id}", key=f"v{company_id}", cause=WORK, today=later
        )
        == 30
    )
    kinds = [
        e.kind
        for e in await LedgerEntry.objects()
        .where(LedgerEntry.lot == short_lived.id)
        .order_by(LedgerEntry.id)
    ]
    assert kinds == ["credit", "debit", "reversal", "expiry"]
    assert (await Lot.objects().get(Lot.id == short_lived.id)).remaining_minutes == 0
    await assert_invariants(company_id)


async def test_a_reversal_under_another_companys_key_is_refused_not_replayed():
    """Keys are unique across companies: a void whose key another company's operation already
    holds must fail loudly, not answer with that operation and give nothing back."""
    first_id, _ = await make_company()
    second_id, _ = await make_company()
    for company_id in (first_id, second_id):
        await lot(company_id, 60, datetime.date(2027, 11, 26), f"k{company_id}")
        await ledger.debit(
            company_id=company_id, minutes=15, on_date=TODAY, key=f"kw{company_id}", cause=WORK
        )
    shared = f"kv{first_id}-{second_id}"
    await ledger.reverse(original_key=f"kw{first_id}", key=shared, cause=WORK, today=TODAY)

    with pytest.raises(ledger.IdempotencyKeyConflict):
        await ledger.reverse(original_key=f"kw{second_id}", key=shared, cause=WORK, today=TODAY)
    assert await ledger.balance(first_id, TODAY) == 60
    assert await ledger.balance(second_id, TODAY) == 45
    await assert_invariants(second_id)


async def test_write_off_takes_at_most_what_is_left():
    company_id, _ = await make_company()
    bought = await lot(company_id, 300, datetime.date(2027, 11, 26), f"b{company_id}")
    await ledger.debit(
        company_id=company_id, minutes=200, on_date=TODAY, key=f"u{company_id}", cause=WORK
    )
    taken = await ledger.write_off(
        lot_id=bought.id,
        max_minutes=300,
        kind=EntryKind.refund_write_off,
        key=f"r{company_id}",
        cause=ORDER,
    )
    assert taken == 100
    assert await ledger.balance(company_id, TODAY) == 0
    await assert_invariants(company_id)


async def test_fifty_concurrent_debits_never_overdraw():
    company_id, _ = await make_company()
    await lot(company_id, 300, datetime.date(2027, 11, 26), f"big{company_id}")

    results = await asyncio.gather(
        *(
            ledger.debit(
                company_id=company_id,
                minutes=15,
                on_date=TODAY,
                key=f"p{company_id}-{n}",
                cause=WORK,
            )
            for n in range(50)
        )
    )

    assert sum(r.debited_minutes for r in results) == 300
    assert sum(1 for r in results if r.debited_minutes == 15) == 20
    assert sum(1 for r in results if r.uncovered_minutes == 15) == 30
    assert await ledger.balance(company_id, TODAY) == 0
    await assert_invariants(company_id)


async def test_admin_adjustments_credit_a_lot_or_take_minutes_with_a_reason():
    # Added minutes must name catalog products: seeded here, not left to an earlier test.
    await catalog.seed_demo_catalog()
    company_id, _ = await make_company()
    await lot(company_id, 60, datetime.date(2027, 1, 1), f"base{company_id}")
    given = await ledger.adjust(
        company_id=company_id,
        minutes=30,
        reason="Goodwill",
        user_id=None,
        key=f"adj+{company_id}",
        today=TODAY,
        product_codes=("inventor",),
    )
    taken = await ledger.adjust(
        company_id=company_id,
        minutes=-120,
        reason="Feilført",
        user_id=None,
        key=f"adj-{company_id}",
        today=TODAY,
    )
    assert (given, taken) == (30, -90)  # never below zero
    assert await ledger.balance(company_id, TODAY) == 0
    entries = await LedgerEntry.objects().where(
        (LedgerEntry.company == company_id) & (LedgerEntry.kind == "adjustment")
    )
    assert sorted(e.minutes for e in entries) == [-60, -30, 30]
    assert {e.note for e in entries} == {"Goodwill", "Feilført"}
    await assert_invariants(company_id)


@pytest.mark.parametrize(
    ("minutes", "reason", "fields"),
    [
        ("0", "x", {"minutes"}),
        ("abc", "x", {"minutes"}),
        ("12001", "x", {"minutes"}),
        ("30", "  ", {"reason"}),
        ("", "", {"minutes", "reason"}),
    ],
)
def test_adjustment_form_rules(minutes, reason, fields):
    with pytest.raises(ValidationFailed) as refused:
        ledger.parse_adjustment(minutes, reason)
    assert set(refused.value.errors) == fields


async def _stored_and_recomputed_balances(company_id: int) -> tuple[list[int], list[int]]:
    """Each operation's stored balance, and the ledger's running sum up to it, in the
    statement's order (created_at, id)."""
    operations = (
        await LedgerOperation.select(
            LedgerOperation.id, LedgerOperation.created_at, LedgerOperation.balance_after
        )
        .where(LedgerOperation.company == company_id)
        .order_by(LedgerOperation.created_at, LedgerOperation.id)
    )
    moved: dict[int, int] = {}
    for entry in await LedgerEntry.select(LedgerEntry.operation, LedgerEntry.minutes).where(
        LedgerEntry.company == company_id
    ):
        moved[entry["operation"]] = moved.get(entry["operation"], 0) + entry["minutes"]
    total, recomputed = 0, []
    for operation in operations:
        total += moved.get(operation["id"], 0)
        recomputed.append(total)
    return [o["balance_after"] for o in operations], recomputed


async def test_the_stored_balance_is_the_ledgers_after_concurrent_operations():
    """Debits on different lots (different products) take no lock of each other's lot, and a
    credit takes none at all: the balance each operation stores must still be the ledger's
    sum up to it, as the statement shows it."""
    company_id, _ = await make_company()
    await lot(company_id, 300, datetime.date(2027, 11, 26), f"i{company_id}")
    await lot(company_id, 300, datetime.date(2027, 11, 26), f"v{company_id}", codes=("vault",))

    def debit(n: int, product: str):
        return ledger.debit(
            company_id=company_id,
            minutes=15,
            on_date=TODAY,
            key=f"cd{company_id}-{product}-{n}",
            cause=WORK,
            product_code=product,
        )

    results = await asyncio.gather(
        *(debit(n, "inventor") for n in range(25)),
        *(debit(n, "vault") for n in range(25)),
        *(
            lot(company_id, 30, datetime.date(2027, 11, 26), f"cc{company_id}-{n}")
            for n in range(5)
        ),
    )

    stored, recomputed = await _stored_and_recomputed_balances(company_id)
    assert len(stored) == 2 + 50 + 5
    assert stored == recomputed
    debited = sum(r.debited_minutes for r in results if isinstance(r, ledger.DebitResult))
    assert debited >= 300 + 300
    assert stored[-1] == await ledger.balance(company_id, TODAY) == 600 + 150 - debited
    await assert_invariants(company_id)


async def test_the_migration_backfills_the_balance_the_ledger_says():
    """A database from before the stored balance gets each operation's balance from its
    entries (the migration's backfill), expiry and reversal included."""
    from backend.piccolo_migrations.backend_2026_12_01t17_29_55_000000 import BACKFILL

    company_id, _ = await make_company()
    await lot(company_id, 120, datetime.date(2026, 11, 26), f"bo{company_id}")
    await lot(company_id, 60, datetime.date(2027, 11, 26), f"bn{company_id}")
    await ledger.debit(
        company_id=company_id, minutes=45, on_date=TODAY, key=f"bd{company_id}", cause=WORK
    )
    await ledger.expire_lots(TODAY, company_id)
    await ledger.reverse(
        original_key=f"bd{company_id}", key=f"br{company_id}", cause=WORK, today=TODAY
    )
    written, _ = await _stored_and_recomputed_balances(company_id)
    await LedgerOperation.update({LedgerOperation.balance_after: 0}).where(
        LedgerOperation.company == company_id
    )
    await LedgerOperation._meta.db.run_ddl(BACKFILL)
    stored, recomputed = await _stored_and_recomputed_balances(company_id)
    assert stored == recomputed == written
    assert stored[-1] == 60
