"""Warning mails (SPEC §7, issue 11): the daily task mails the company's superuser when the time
account runs low (once per fall below the company's threshold), and when a lot or the plan ends
within 30 days (once each); the superuser sets the threshold on the company page.

Every mail goes to the run's real SMTP server (tests/smtp_server.py). The task walks every
company of the run's database: each test looks only at its own company's superuser."""

from __future__ import annotations

import asyncio
import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.services import agreements, catalog, clock, ledger, outbox, users, warnings
from backend.tables import Agreement, Company, MailStatus, OutboxMail, Role, User
from tests.support import PASSWORD, login, make_company, new_email, post_form

ROOT = Path(__file__).resolve().parent.parent


async def superuser(company_id: int) -> User:
    return await User.objects().get((User.company == company_id) & (User.role == Role.superuser))


async def credit(company_id: int, minutes: int, days: int = 200) -> None:
    """A lot of `minutes`, usable before today + `days`."""
    await ledger.credit_lot(
        company_id=company_id,
        minutes=minutes,
        expires_on=clock.today() + datetime.timedelta(days=days),
        product_codes=["inventor"],
        key=f"test-credit:{company_id}:{new_email()}",
        cause=ledger.Cause(type="order"),
    )


async def use(company_id: int, minutes: int) -> None:
    await ledger.debit(
        company_id=company_id,
        minutes=minutes,
        on_date=clock.today(),
        key=f"test-debit:{company_id}:{new_email()}",
        cause=ledger.Cause(type="admin"),
    )


async def plan(company_id: int, ends_on: datetime.date) -> Agreement:
    starts_on = agreements.add_months(ends_on + datetime.timedelta(days=1), -6)
    return await agreements.create_plan(
        company_id=company_id, product_codes=["inventor"], starts_on=starts_on, ends_on=ends_on
    )


async def warn_and_send(settings) -> int:
    """The daily task, then the outbox's sender, with this test's settings (as the app and the
    `portal` command configure them; not whatever an earlier test's app left)."""
    outbox.configure(settings)
    queued = await warnings.send_warnings()
    await outbox.send_due(settings)
    return queued


async def mails_to(smtp, address: str) -> list:
    """What reached `address`, once no mail to it is still on its way: a served portal's sender
    (another test's) may be the one sending it, a moment after this test's sender ran."""
    for _ in range(300):
        if not await OutboxMail.exists().where(
            (OutboxMail.recipient == address) & (OutboxMail.status == MailStatus.pending.value)
        ):
            break
        await asyncio.sleep(0.05)
    return smtp.messages_to(address)


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(("html",)).get_content()


@pytest.fixture
def days_later(monkeypatch):
    """Time travel: the clock `days` ahead (services/clock.py), for the rest of the test."""
    real_now = clock.now

    def travel(days: int) -> None:
        moment = real_now() + datetime.timedelta(days=days)
        monkeypatch.setattr(clock, "now", lambda: moment)

    return travel


# --- low balance -------------------------------------------------------------------------------


async def test_low_balance_mails_once_per_fall_below_the_threshold(settings, smtp):
    company_id, email = await make_company("Lavsaldo AS")
    await credit(company_id, 300)
    await warn_and_send(settings)
    assert await mails_to(smtp, email) == []  # 5 hours left: nothing to say

    await use(company_id, 260)
    await warn_and_send(settings)
    [first] = await mails_to(smtp, email)
    assert first["Subject"] == "Lite tid igjen på tidskontoen til Lavsaldo AS"
    assert first["To"] == email
    for part in (text_of(first), html_of(first)):
        assert "0 t 40 min igjen" in part and "60 minutter" in part
        assert f"{settings.base_url}/portal/topup" in part
        assert settings.seller.name in part
    # The next days, still low: nothing more, however often the task runs.
    await use(company_id, 15)
    await warn_and_send(settings)
    await warn_and_send(settings)
    assert len(await mails_to(smtp, email)) == 1

    # A top-up brings it back above the threshold; the next fall mails once more.
    await credit(company_id, 120)
    await warn_and_send(settings)
    assert len(await mails_to(smtp, email)) == 1
    await use(company_id, 130)
    await warn_and_send(settings)
    await warn_and_send(settings)
    first, second = await mails_to(smtp, email)
    assert "0 t 15 min igjen" in text_of(second)


async def test_a_top_up_and_a_new_fall_between_two_runs_mails_again(settings, smtp):
    company_id, email = await make_company()
    await credit(company_id, 30)
    await warn_and_send(settings)
    assert len(await mails_to(smtp, email)) == 1
    # Up to 2 t 30 min and down to 0 t 20 min, all before the next morning's run.
    await credit(company_id, 120)
    await use(company_id, 130)
    await warn_and_send(settings)
    assert len(await mails_to(smtp, email)) == 2
    assert "0 t 20 min igjen" in text_of((await mails_to(smtp, email))[1])


async def test_an_account_used_up_at_once_is_warned_of(settings, smtp, client):
    """From 1 t 30 min straight to nothing (the rest billed by the hour): the account is still
    in its year, and empty is below any threshold."""
    company_id, email = await make_company("Tom Konto AS")
    await credit(company_id, 90)
    await warn_and_send(settings)
    await use(company_id, 120)
    await warn_and_send(settings)
    [message] = await mails_to(smtp, email)
    assert "0 t 0 min igjen" in text_of(message)
    assert (await login(client, email)).status_code == 303
    assert low_balance_shown((await client.get("/portal")).text)


async def test_minutes_used_while_low_are_no_new_fall(settings, smtp):
    """Only a balance back at or above the threshold arms the next mail: a top-up that leaves
    it below does not."""
    company_id, email = await make_company()
    await credit(company_id, 50)
    await warn_and_send(settings)
    await credit(company_id, 5)  # 55: still below 60
    await use(company_id, 15)
    await warn_and_send(settings)
    assert len(await mails_to(smtp, email)) == 1


async def test_threshold_zero_never_mails(settings, smtp):
    company_id, email = await make_company()
    await Company.update({Company.low_balance_minutes: 0}).where(Company.id == company_id)
    await credit(company_id, 30)
    await use(company_id, 15)
    await warn_and_send(settings)
    assert await mails_to(smtp, email) == []
    assert not await OutboxMail.exists().where(OutboxMail.recipient == email)


async def test_two_runs_at_once_mail_one_fall_once(settings, smtp):
    """Several app instances run the daily task at once."""
    company_id, email = await make_company()
    await credit(company_id, 45)
    await asyncio.gather(*(warnings.send_warnings() for _ in range(4)))
    await outbox.send_due(settings)
    assert len(await mails_to(smtp, email)) == 1
    assert await OutboxMail.count().where(OutboxMail.recipient == email) == 1


async def test_a_run_that_read_before_another_mailed_does_not_mail_the_same_fall(settings, smtp):
    """Run A reads the company, minutes are used, run B reads, mails and commits; then A goes
    on with what it read: the fall is mailed once, though A's key (its last operation) differs
    from B's."""
    company_id, email = await make_company()
    await credit(company_id, 45)
    [stale] = (await warnings._read_batch(company_id - 1, clock.today()))[:1]
    assert stale.summary.company.id == company_id
    await use(company_id, 15)
    assert await warnings.send_warnings() >= 1
    mails = warnings._due_mails(stale, clock.today())
    assert [template for _, template, _ in mails] == ["low_balance"]
    assert await warnings._queue(stale, mails) == 0
    await outbox.send_due(settings)
    assert len(await mails_to(smtp, email)) == 1


# --- a lot or the plan ending ------------------------------------------------------------------


async def test_a_lot_ending_within_30_days_mails_once(settings, smtp, days_later):
    soon_id, soon = await make_company("Snart AS")
    later_id, later = await make_company("Senere AS")
    await credit(soon_id, 600, days=30)  # usable 29 more days after today
    await credit(later_id, 600, days=31)
    await warn_and_send(settings)
    [message] = await mails_to(smtp, soon)
    last_day = clock.today() + datetime.timedelta(days=29)
    assert message["Subject"] == f"Tid på tidskontoen til Snart AS utløper {last_day:%d.%m.%Y}"
    for part in (text_of(message), html_of(message)):
        assert (
            f"10 t 0 min på tidskontoen til Snart AS kan brukes til og med {last_day:%d.%m.%Y}"
            in part
        )
        assert f"{settings.base_url}/portal/topup" in part
    assert await mails_to(smtp, later) == []  # 30 days left: not yet

    days_later(1)
    await warn_and_send(settings)
    assert len(await mails_to(smtp, later)) == 1
    days_later(10)
    await warn_and_send(settings)
    assert len(await mails_to(smtp, soon)) == 1 and len(await mails_to(smtp, later)) == 1


async def test_each_lot_ending_mails_once(settings, smtp):
    company_id, email = await make_company()
    await credit(company_id, 300, days=10)
    await credit(company_id, 300, days=20)
    await warn_and_send(settings)
    await warn_and_send(settings)
    assert len(await mails_to(smtp, email)) == 2


async def test_the_plan_ending_within_30_days_mails_once(settings, smtp, days_later):
    soon_id, soon = await make_company("Plan Snart AS")
    later_id, later = await make_company("Plan Senere AS")
    ends_on = clock.today() + datetime.timedelta(days=29)
    await plan(soon_id, ends_on)
    await plan(later_id, clock.today() + datetime.timedelta(days=30))
    await warn_and_send(settings)
    [message] = await mails_to(smtp, soon)
    assert message["Subject"] == f"Fri support for Plan Snart AS slutter {ends_on:%d.%m.%Y}"
    for part in (text_of(message), html_of(message)):
        assert f"Fri support for Plan Snart AS gjelder til og med {ends_on:%d.%m.%Y}." in part
        assert f"{settings.base_url}/portal/plan" in part
    assert await mails_to(smtp, later) == []

    days_later(1)
    await warn_and_send(settings)
    await warn_and_send(settings)
    assert len(await mails_to(smtp, soon)) == 1 and len(await mails_to(smtp, later)) == 1


async def test_a_plan_renewed_is_not_ending_and_the_renewal_is_mailed_in_its_turn(
    settings, smtp, days_later
):
    company_id, email = await make_company()
    ends_on = clock.today() + datetime.timedelta(days=20)
    await plan(company_id, ends_on)
    renewal_ends = agreements.add_months(ends_on, 6)
    await plan(company_id, renewal_ends)
    await warn_and_send(settings)
    assert await mails_to(smtp, email) == []
    days_later((renewal_ends - clock.today()).days - 5)
    await warn_and_send(settings)
    [message] = await mails_to(smtp, email)
    assert f"til og med {renewal_ends:%d.%m.%Y}" in text_of(message)


async def test_a_company_without_agreements_gets_nothing(settings, smtp):
    _, email = await make_company()
    await warn_and_send(settings)
    assert not await OutboxMail.exists().where(OutboxMail.recipient == email)


# --- who, and in which language ----------------------------------------------------------------


async def test_only_the_superuser_is_mailed_not_the_members(settings, smtp):
    company_id, email = await make_company()
    member = new_email("medlem")
    await User(
        email=member,
        name="Medlem",
        role=Role.member.value,
        company=company_id,
        password_hash=users.hash_password(PASSWORD),
    ).save()
    await credit(company_id, 30, days=15)
    await plan(company_id, clock.today() + datetime.timedelta(days=15))
    await warn_and_send(settings)
    subjects = sorted(m["Subject"] for m in await mails_to(smtp, email))
    assert [s.split()[0] for s in subjects] == ["Fri", "Lite", "Tid"]
    assert await mails_to(smtp, member) == []


async def test_a_superuser_who_chose_english_is_warned_in_english(settings, smtp):
    company_id, email = await make_company("English Ltd")
    await users.set_language(await superuser(company_id), "en")
    await credit(company_id, 30, days=15)
    ends_on = clock.today() + datetime.timedelta(days=15)
    await plan(company_id, ends_on)
    await warn_and_send(settings)
    by_subject = {m["Subject"]: m for m in await mails_to(smtp, email)}
    last_day = clock.today() + datetime.timedelta(days=14)
    assert set(by_subject) == {
        "Little time left on English Ltd's time account",
        f"Time on English Ltd's time account expires {last_day:%d.%m.%Y}",
        f"Unlimited support (Fri support) for English Ltd ends {ends_on:%d.%m.%Y}",
    }
    low = by_subject["Little time left on English Ltd's time account"]
    for part in (text_of(low), html_of(low)):
        assert "has 0 h 30 min left, below the warning threshold of 60 minutes" in part


# --- how it runs -------------------------------------------------------------------------------


async def test_portal_send_warnings_queues_what_is_due(settings, smtp):
    company_id, email = await make_company()
    await credit(company_id, 30)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("portal")), "send-warnings"],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Queued ") and result.stdout.endswith(" warning mails\n")
    assert int(result.stdout.split()[1]) >= 1
    await outbox.send_due(settings)
    [message] = await mails_to(smtp, email)
    assert message["Subject"].startswith("Lite tid igjen")
    # Run again: nothing more for this company.
    again = subprocess.run(
        [str(Path(sys.executable).with_name("portal")), "send-warnings"],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    await outbox.send_due(settings)
    assert len(await mails_to(smtp, email)) == 1


async def test_the_app_sends_the_warnings_in_the_background(settings, smtp, monkeypatch):
    """An instance started after 07:00 sends the day's warnings at once."""
    morning = datetime.datetime.combine(clock.today(), datetime.time(8, 0), tzinfo=clock.OSLO)
    monkeypatch.setattr(clock, "now", lambda: morning.astimezone(datetime.UTC))
    company_id, email = await make_company()
    await credit(company_id, 30)
    app = create_app(settings, db_pool=False, background_jobs=True)
    async with AsyncTestClient(app=app):
        [message] = await smtp.wait_for(email)
    assert message["Subject"].startswith("Lite tid igjen")


@pytest.mark.parametrize(
    "now, expected",
    [
        ("2026-12-01T06:59:00+01:00", "2026-12-01T07:00:00+01:00"),
        ("2026-12-01T07:00:00+01:00", "2026-12-02T07:00:00+01:00"),
        ("2026-12-01T23:30:00+00:00", "2026-12-02T07:00:00+01:00"),
        # Summer time starts in the night: still 07:00 in Oslo, now UTC+2.
        ("2027-03-27T12:00:00+01:00", "2027-03-28T07:00:00+02:00"),
    ],
)
def test_the_daily_run_is_at_seven_in_oslo(now, expected):
    moment = datetime.datetime.fromisoformat(now)
    assert warnings.next_run(moment) == datetime.datetime.fromisoformat(expected)


# --- the threshold -----------------------------------------------------------------------------


async def signed_in_superuser(client, name: str = "Terskel AS") -> tuple[int, str]:
    company_id, email = await make_company(name)
    assert (await login(client, email)).status_code == 303
    return company_id, email


def low_balance_shown(page: str) -> bool:
    start = page.index('<section id="warnings"')
    return "Lite tid igjen på tidskontoen" in page[start : page.index("</section>", start)]


async def test_the_superuser_sets_the_threshold_and_the_dashboard_follows(client):
    await catalog.seed_demo_catalog()
    company_id, _ = await signed_in_superuser(client)
    await credit(company_id, 100)
    page = (await client.get("/portal/company")).text
    assert 'name="low_balance_minutes"' in page and 'value="60"' in page
    assert not low_balance_shown((await client.get("/portal")).text)

    response = await post_form(client, "/portal/company/warnings", {"low_balance_minutes": "120"})
    assert response.status_code == 200 and "Endringene er lagret." in response.text
    assert (await Company.objects().get(Company.id == company_id)).low_balance_minutes == 120
    assert 'value="120"' in (await client.get("/portal/company")).text
    assert low_balance_shown((await client.get("/portal")).text)

    await post_form(client, "/portal/company/warnings", {"low_balance_minutes": "0"})
    assert not low_balance_shown((await client.get("/portal")).text)
    assert 'value="0"' in (await client.get("/portal/company")).text


@pytest.mark.parametrize("value", ["-1", "12001", "abc", "1.5", "", "60 min", "１２０", "9" * 40])
async def test_a_threshold_that_is_not_a_whole_number_of_minutes_is_refused(client, value):
    company_id, _ = await signed_in_superuser(client)
    response = await post_form(client, "/portal/company/warnings", {"low_balance_minutes": value})
    assert response.status_code == 422
    assert "Skriv inn et helt antall minutter fra 0 til 12000" in response.text
    assert (await Company.objects().get(Company.id == company_id)).low_balance_minutes == 60


async def test_the_threshold_form_keeps_what_was_typed_with_htmx(client):
    await signed_in_superuser(client)
    response = await post_form(
        client,
        "/portal/company/warnings",
        {"low_balance_minutes": "-5"},
        headers={"HX-Request": "true", "HX-Target": "low-balance-form"},
    )
    assert response.status_code == 422
    assert 'id="low-balance-form"' in response.text and "<html" not in response.text
    assert 'value="-5"' in response.text and 'aria-invalid="true"' in response.text


async def test_a_member_may_not_set_the_threshold(client, other_client):
    from tests.test_tickets import signed_in_member

    company_id, _ = await signed_in_superuser(client)
    await signed_in_member(other_client, company_id)
    page = (await other_client.get("/portal/company")).text
    assert 'name="low_balance_minutes"' not in page
    assert "mindre enn 60 minutter" in page
    response = await post_form(
        other_client, "/portal/company/warnings", {"low_balance_minutes": "0"}
    )
    assert response.status_code == 403
    assert (await Company.objects().get(Company.id == company_id)).low_balance_minutes == 60
