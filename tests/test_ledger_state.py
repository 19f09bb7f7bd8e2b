"""The ledger's invariants (SPEC §5) under random sequences of operations: a hypothesis state
machine that credits, debits, writes off, reverses, lets time pass and replays earlier calls,
checking the database against a plain in-memory model after every step.

The ledger is async and this test is not: each example runs on an event loop of its own (on
SQLite the ledger's write lock is per loop) and on a fresh company of its own.
"""

from __future__ import annotations

import asyncio
import datetime
import random
from dataclasses import dataclass
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from piccolo.engine.postgres import PostgresEngine
from piccolo.query.functions.aggregate import Max

from backend.services import ledger
from backend.services.ledger import Cause, DebitResult
from backend.tables import EntryKind, LedgerEntry, Lot
from tests.support import make_company

START = datetime.date(2026, 11, 26)
CODES = ("inventor", "vault")
ORDER = Cause(type="order", id="1")
WORK = Cause(type="time_entry", id="1")
ADMIN = Cause(type="admin", note="Refusjon")

credit_minutes = st.one_of(st.sampled_from(range(15, 601, 60)), st.integers(1, 1200))
lot_codes = st.sampled_from([("inventor",), ("vault",), ("inventor", "vault")])


@dataclass
class ModelLot:
    id: int
    remaining: int
    expires_on: datetime.date
    codes: tuple[str, ...]


@dataclass
class DebitMade:
    key: str
    taken: dict[int, int]  # lot id -> minutes the model says the debit took from it
    reversed: bool = False


@dataclass
class Call:
    """An earlier call, kept to be replayed with its exact key and arguments."""

    operation: str
    kwargs: dict[str, Any]
    result: Any


class LedgerMachine(RuleBasedStateMachine):
    lots = Bundle("lots")
    debits = Bundle("debits")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.company_id: int = 0
        self.today = START
        self.model: dict[int, ModelLot] = {}
        self.made: dict[str, DebitMade] = {}
        self.calls: list[Call] = []
        self.counter = 0
        # On PostgreSQL every query would open a connection of its own: a pool for this
        # example's loop, closed with it, makes the run several times faster.
        engine = Lot._meta.db
        self.pooled = isinstance(engine, PostgresEngine) and engine.pool is None
        if self.pooled:
            self.run(engine.start_connection_pool(min_size=1, max_size=2))

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        try:
            if self.pooled:
                self.run(Lot._meta.db.close_connection_pool())
            self.run(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def key(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.company_id}-{self.counter}"

    # -- the model ---------------------------------------------------------------------------

    def model_balance(self) -> int:
        return sum(m.remaining for m in self.model.values() if m.expires_on > self.today)

    def model_debit(self, minutes: int, product_code: str | None) -> dict[int, int]:
        taken: dict[int, int] = {}
        needed = minutes
        for m in sorted(self.model.values(), key=lambda m: (m.expires_on, m.id)):
            if needed == 0:
                break
            if m.remaining <= 0 or m.expires_on <= self.today:
                continue
            if product_code is not None and product_code not in m.codes:
                continue
            take = min(needed, m.remaining)
            m.remaining -= take
            taken[m.id] = take
            needed -= take
        return taken

    # -- the database ------------------------------------------------------------------------

    async def snapshot(self) -> tuple[dict[int, int], int]:
        lots = await Lot.select(Lot.id, Lot.remaining_minutes).where(Lot.company == self.company_id)
        count = await LedgerEntry.count().where(LedgerEntry.company == self.company_id)
        return {row["id"]: row["remaining_minutes"] for row in lots}, count

    async def last_entry_id(self) -> int:
        rows = await LedgerEntry.select(Max(LedgerEntry.id).as_alias("last"))
        return int(rows[0]["last"] or 0) if rows else 0

    # -- rules -------------------------------------------------------------------------------

    @initialize()
    def new_company(self) -> None:
        # make_company draws an org number from `random`, which hypothesis seeds the same way
        # in every example: draw it from fresh entropy, then give hypothesis its state back.
        # Its superuser's argon2 hash (a quarter of a second) is of no use to the ledger.
        state = random.getstate()
        random.seed()
        try:
            with mock.patch("backend.services.users.hash_password", lambda _: "-"):
                self.company_id, _ = self.run(make_company())
        finally:
            random.setstate(state)

    @rule(target=lots, minutes=credit_minutes, days=st.integers(1, 400), codes=lot_codes)
    def credit(self, minutes: int, days: int, codes: tuple[str, ...]) -> int:
        kwargs = dict(
            company_id=self.company_id,
            minutes=minutes,
            expires_on=self.today + datetime.timedelta(days=days),
            product_codes=codes,
            key=self.key("credit"),
            cause=ORDER,
        )
        lot = self.run(ledger.credit_lot(**kwargs))
        assert lot.id not in self.model, "credit: a new key must make a new lot"
        assert lot.remaining_minutes == minutes, "credit: a new lot holds all its minutes"
        self.model[lot.id] = ModelLot(lot.id, minutes, kwargs["expires_on"], codes)
        self.calls.append(Call("credit", kwargs, lot.id))
        return lot.id

    @rule(
        target=debits,
        minutes=st.integers(1, 500),
        product_code=st.one_of(st.none(), st.sampled_from(CODES)),
    )
    def debit(self, minutes: int, product_code: str | None) -> str:
        kwargs = dict(
            company_id=self.company_id,
            minutes=minutes,
            on_date=self.today,
            key=self.key("debit"),
            cause=WORK,
            product_code=product_code,
        )
        result = self.run(ledger.debit(**kwargs))
        taken = self.model_debit(minutes, product_code)
        expected = DebitResult(sum(taken.values()), minutes - sum(taken.values()))
        assert result == expected, f"debit (FIFO model): got {result}, model says {expected}"
        self.made[kwargs["key"]] = DebitMade(kwargs["key"], taken)
        self.calls.append(Call("debit", kwargs, result))
        return kwargs["key"]

    @rule(days=st.integers(1, 200))
    def advance_time(self, days: int) -> None:
        self.today += datetime.timedelta(days=days)
        due = {
            m.id: m.remaining
            for m in self.model.values()
            if m.expires_on <= self.today and m.remaining > 0
        }
        before = self.run(self.last_entry_id())
        total = self.run(ledger.expire_lots(self.today, self.company_id))
        assert total == sum(due.values()), (
            f"expiry: wrote off {total} minutes, the model's expired lots held {due}"
        )
        entries = self.run(
            LedgerEntry.objects().where(
                (LedgerEntry.company == self.company_id) & (LedgerEntry.id > before)
            )
        )
        written = {e.lot: e.minutes for e in entries if e.kind == EntryKind.expiry.value}
        assert len(entries) == len(written) == len(due), (
            f"expiry: expected one expiry entry per expired lot {due}, "
            f"got {[(e.lot, e.kind, e.minutes) for e in entries]}"
        )
        assert written == {lot_id: -left for lot_id, left in due.items()}, (
            f"expiry: entries must write off what was left: {written} vs {due}"
        )
        for lot_id in due:
            self.model[lot_id].remaining = 0

    @rule(lot_id=lots, max_minutes=st.one_of(st.none(), st.integers(0, 1300)))
    def refund_write_off(self, lot_id: int, max_minutes: int | None) -> None:
        kwargs = dict(
            lot_id=lot_id,
            max_minutes=max_minutes,
            kind=EntryKind.refund_write_off,
            key=self.key("refund"),
            cause=ADMIN,
        )
        taken = self.run(ledger.write_off(**kwargs))
        m = self.model[lot_id]
        expected = max(0, min(m.remaining if max_minutes is None else max_minutes, m.remaining))
        assert taken == expected, f"write-off: took {taken}, the model says {expected}"
        m.remaining -= expected
        self.calls.append(Call("write_off", kwargs, taken))

    @rule(debit_key=debits)
    def reverse(self, debit_key: str) -> None:
        made = self.made[debit_key]
        kwargs = dict(
            original_key=debit_key, key=f"reverse-{debit_key}", cause=WORK, today=self.today
        )
        given = self.run(ledger.reverse(**kwargs))
        expected = sum(made.taken.values())
        if made.reversed:
            # The same reversal key again: a replay; it answers as before and moves nothing
            # (the invariants and the model, unchanged, check that).
            assert given == expected, f"reverse replay: answered {given}, first {expected}"
            return
        assert given == expected, f"reverse: gave back {given}, the debit took {made.taken}"
        for lot_id, minutes in made.taken.items():
            m = self.model[lot_id]
            if m.expires_on > self.today:  # else given back and written off again at once
                m.remaining += minutes
        made.reversed = True
        self.calls.append(Call("reverse", kwargs, given))

    @precondition(lambda self: self.calls)
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        call = data.draw(st.sampled_from(self.calls), label="call")
        before = self.run(self.snapshot())
        operation = {
            "credit": ledger.credit_lot,
            "debit": ledger.debit,
            "write_off": ledger.write_off,
            "reverse": ledger.reverse,
        }[call.operation]
        result = self.run(operation(**call.kwargs))
        if call.operation == "credit":
            result = result.id
        after = self.run(self.snapshot())
        assert after == before, (
            f"replay of {call.operation} {call.kwargs['key']!r} moved minutes "
            f"(lots {before[0]} -> {after[0]}, entries {before[1]} -> {after[1]})"
        )
        assert result == call.result, (
            f"replay of {call.operation} {call.kwargs['key']!r}: "
            f"returned {result!r}, first call returned {call.result!r}"
        )

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def spec_5_invariants(self) -> None:
        if not self.company_id:
            return
        lots = self.run(Lot.objects().where(Lot.company == self.company_id))
        sums = self.run(ledger.entries_sum_by_lot(self.company_id))
        for lot in lots:
            assert lot.remaining_minutes >= 0, (
                f"no lot below zero: lot {lot.id} has {lot.remaining_minutes}"
            )
            assert sums.get(lot.id, 0) == lot.remaining_minutes, (
                f"remaining == sum of entries: lot {lot.id} has {lot.remaining_minutes}, "
                f"its entries sum to {sums.get(lot.id, 0)}"
            )
            if lot.expires_on <= self.today:
                assert lot.remaining_minutes == 0, (
                    f"expired lots are written off: lot {lot.id} (expired {lot.expires_on}) "
                    f"still has {lot.remaining_minutes} on {self.today}"
                )
        database = {lot.id: lot.remaining_minutes for lot in lots}
        model = {m.id: m.remaining for m in self.model.values()}
        assert database == model, f"lots match the model: database {database}, model {model}"
        unexpired = sum(lot.remaining_minutes for lot in lots if lot.expires_on > self.today)
        balance = self.run(ledger.balance(self.company_id, self.today))
        assert balance == unexpired, (
            f"balance == sum of unexpired lots: balance {balance}, lots {unexpired}"
        )
        assert balance == self.model_balance(), (
            f"balance == model: balance {balance}, model {self.model_balance()}"
        )


LedgerMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # The explain phase re-runs a failing case many times under a tracer: minutes, not seconds.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
TestLedger = LedgerMachine.TestCase
