"""The mail outbox (issue 11): written with its cause, sent once by whichever sender claims it,
retried when the server fails; without SMTP_URL written as files and shown at /dev/mail.

Every sender of the run delivers to one real SMTP server on loopback (tests/smtp_server.py),
the portals the tests serve included: a mail sent twice by anyone shows there twice."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.config import ConfigError, load_settings
from backend.db import write_transaction
from backend.services import clock, fulfilment, orders, outbox, users
from backend.services.money import format_nok
from backend.tables import MailStatus, Order, OutboxMail, Role, User
from tests.support import PRODUCTION_ENV, make_company, make_order, new_email
from tests.test_webhooks import completed, pending_topup, post, sign

ROOT = Path(__file__).resolve().parent.parent
# A time no served portal's sender reaches during the run: a mail made due only then is left to
# the test's own sender, which is told it is that time.
LATER = datetime.timedelta(days=3650)


async def superuser_of(company_id: int) -> User:
    return await User.objects().get((User.company == company_id) & (User.role == Role.superuser))


async def receipt_mail_of(order_id: int) -> list[OutboxMail]:
    return await OutboxMail.objects().where(OutboxMail.key == f"receipt:{order_id}")


async def paid_receipt(company_id: int) -> orders.Receipt:
    order = await make_order(company_id)
    return await orders.receipt(
        await superuser_of(company_id), order.id, outbox.letterhead().seller
    )


async def queue_for_this_test(to: str, receipt: orders.Receipt, key: str) -> datetime.datetime:
    """A receipt mail to `to` that only this test's sender sends; returns when it is due."""
    due = clock.now() + LATER
    async with write_transaction(OutboxMail._meta.db):
        assert await outbox.queue(to, "receipt", {"receipt": receipt}, key)
        await OutboxMail.update({OutboxMail.next_attempt_at: due}).where(OutboxMail.key == key)
    return due


def session_of(order, **changes) -> dict:
    """The Checkout Session as the order page's own look at it would see it."""
    import json

    return {**json.loads(completed(order, "evt_unused"))["data"]["object"], **changes}


# --- the receipt -------------------------------------------------------------------------------


async def test_a_paid_order_mails_its_receipt_to_the_superuser_once(client, settings, smtp):
    """The webhook three times at once, and the order page's look at the session racing it:
    one payment, one receipt."""
    order = await pending_topup("5")
    superuser = await superuser_of(order.company)
    payload = completed(order, f"evt_mail_{order.id}")
    signature = sign(payload, settings.stripe_webhook_secret)
    await asyncio.gather(
        *(post(client, payload, signature) for _ in range(3)),
        fulfilment.apply_session(session_of(order), None),
    )
    await outbox.send_due(settings)

    [message] = await smtp.wait_for(superuser.email)
    [row] = await receipt_mail_of(order.id)
    assert row.status == MailStatus.sent and row.attempts == 1
    assert message["Subject"] == f"Kvittering for bestilling nr. {order.id}"
    assert message["From"].addresses[0].display_name == settings.seller.name
    assert message["To"] == superuser.email
    assert message["Message-ID"] == row.message_id and message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    order = await orders.get_order(superuser, order.id)
    for part in (text, html):
        assert settings.seller.name in part and settings.base_url in part
        assert "Tidskonto 5 t: Autodesk Inventor" in part  # the receipt's own description
        assert format_nok(order.amount_ore) in part and format_nok(order.total_ore) in part
        assert "5 t 0 min, gyldig til og med" in part  # the lot the payment made
    assert f"{settings.base_url}/portal/orders/{order.id}/receipt" in text
    assert "<h1>Kvittering</h1>" in html
    await asyncio.sleep(0.5)  # nobody sends it again
    assert len(smtp.messages_to(superuser.email)) == 1


async def test_a_superuser_who_chose_english_gets_the_receipt_in_english(client, settings, smtp):
    order = await pending_topup("5")
    superuser = await superuser_of(order.company)
    await users.set_language(superuser, "en")
    await fulfilment.apply_session(session_of(order), f"evt_en_{order.id}")
    await outbox.send_due(settings)

    [message] = await smtp.wait_for(superuser.email)
    assert message["Subject"] == f"Receipt for order no. {order.id}"
    assert "Amount excl. VAT" in message.get_body(("plain",)).get_content()


async def test_the_receipt_speaks_the_readers_language():
    company_id, _ = await make_company("Språk & Co AS")
    receipt = await paid_receipt(company_id)
    head = outbox.letterhead()
    context = {"receipt": receipt, "seller": head.seller, "portal_url": head.portal_url}
    subject, text, html = outbox.render("receipt", context, "en")
    assert subject == f"Receipt for order no. {receipt.order.id}"
    assert "Amount excl. VAT" in text and "Amount excl. VAT" in html
    # Escaped in the HTML part only.
    assert "Språk & Co AS" in text and "Språk &amp; Co AS" in html
    norwegian, _, _ = outbox.render("receipt", context, "nb")
    assert norwegian == f"Kvittering for bestilling nr. {receipt.order.id}"


@pytest.mark.parametrize(
    "outcome",
    ["checkout.session.expired", "checkout.session.async_payment_failed", "wrong amount"],
)
async def test_no_mail_for_an_order_not_paid(client, settings, smtp, outcome):
    order = await pending_topup()
    superuser = await superuser_of(order.company)
    if outcome == "wrong amount":
        await fulfilment.apply_session(session_of(order, amount_total=100), f"evt_{order.id}")
    else:
        await fulfilment.apply_session(session_of(order, payment_status="unpaid"), None, outcome)
    assert (await orders.get_order(superuser, order.id)).status != "paid"
    assert await receipt_mail_of(order.id) == []
    await outbox.send_due(settings)
    assert smtp.messages_to(superuser.email) == []


async def test_an_order_cancelled_and_then_paid_is_refunded_without_a_receipt(client):
    order = await pending_topup()
    await Order.update({Order.status: "cancelled"}).where(Order.id == order.id)  # "Avbryt"
    after = await fulfilment.apply_session(session_of(order), None)
    assert after  # the payment goes back (after the transaction)
    assert await receipt_mail_of(order.id) == []


# --- the outbox --------------------------------------------------------------------------------


async def test_a_mail_is_written_only_if_its_cause_commits():
    company_id, email = await make_company()
    receipt = await paid_receipt(company_id)
    key = f"test-rollback:{receipt.order.id}"
    with pytest.raises(RuntimeError):
        async with write_transaction(OutboxMail._meta.db):
            assert await outbox.queue(email, "receipt", {"receipt": receipt}, key)
            raise RuntimeError("the cause fails after writing its mail")
    assert not await OutboxMail.exists().where(OutboxMail.key == key)


async def test_the_same_key_writes_one_mail():
    company_id, email = await make_company()
    receipt = await paid_receipt(company_id)
    key = f"test-twice:{receipt.order.id}"
    first = await outbox.queue(email, "receipt", {"receipt": receipt}, key)
    again = await outbox.queue(new_email(), "receipt", {"receipt": receipt}, key)
    assert (first, again) == (True, False)
    assert [m.recipient for m in await OutboxMail.objects().where(OutboxMail.key == key)] == [email]


async def test_a_server_that_fails_twice_gets_the_mail_once_after(settings, smtp):
    company_id, email = await make_company()
    receipt = await paid_receipt(company_id)
    key = f"test-fails:{receipt.order.id}"
    smtp.fail_next(email, 2)
    due = await queue_for_this_test(email, receipt, key)

    await outbox.send_due(settings, now=due)
    failed = await OutboxMail.objects().get(OutboxMail.key == key)
    assert (failed.status, failed.attempts) == (MailStatus.pending, 1)
    assert "451" in failed.last_error and smtp.messages_to(email) == []
    assert failed.next_attempt_at == due + datetime.timedelta(minutes=1)
    # When its next attempt comes: refused once more, and the wait is twice as long.
    await outbox.send_due(settings, now=failed.next_attempt_at)
    again = await OutboxMail.objects().get(OutboxMail.key == key)
    assert (again.status, again.attempts) == (MailStatus.pending, 2)
    assert again.next_attempt_at == failed.next_attempt_at + datetime.timedelta(minutes=2)
    assert smtp.messages_to(email) == []
    await outbox.send_due(settings, now=again.next_attempt_at)

    [message] = smtp.messages_to(email)
    assert message["Subject"] == f"Kvittering for bestilling nr. {receipt.order.id}"
    assert smtp.refused[email] == 2
    sent = await OutboxMail.objects().get(OutboxMail.key == key)
    assert (sent.status, sent.attempts) == (MailStatus.sent, 3) and sent.sent_at is not None
    await outbox.send_due(settings, now=due + LATER)  # never again
    assert len(smtp.messages_to(email)) == 1


def test_each_wait_is_twice_the_last_up_to_two_hours():
    waits = [outbox.retry_after(attempt) for attempt in range(1, 10)]
    assert waits[:4] == [datetime.timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert waits[-1] == datetime.timedelta(hours=2) == max(waits)


async def test_several_senders_at_once_send_each_mail_once(settings, smtp):
    """As several app instances do (PostgreSQL: FOR UPDATE SKIP LOCKED)."""
    company_id, _ = await make_company()
    receipt = await paid_receipt(company_id)
    recipients = [new_email("mottaker") for _ in range(12)]
    due = clock.now() + LATER
    async with write_transaction(OutboxMail._meta.db):
        for number, to in enumerate(recipients):
            await outbox.queue(to, "receipt", {"receipt": receipt}, f"test-many:{to}:{number}")
        await OutboxMail.update({OutboxMail.next_attempt_at: due}).where(
            OutboxMail.recipient.is_in(recipients)
        )
    await asyncio.gather(*(outbox.send_due(settings, now=due) for _ in range(4)))
    assert [len(smtp.messages_to(to)) for to in recipients] == [1] * len(recipients)
    rows = await OutboxMail.objects().where(OutboxMail.recipient.is_in(recipients))
    assert {(row.status, row.attempts) for row in rows} == {(MailStatus.sent, 1)}


async def test_the_app_sends_in_the_background(settings, smtp):
    company_id, email = await make_company()
    receipt = await paid_receipt(company_id)
    app = create_app(settings, db_pool=False, background_jobs=True)
    async with AsyncTestClient(app=app):
        await outbox.queue(email, "receipt", {"receipt": receipt}, f"test-bg:{receipt.order.id}")
        [message] = await smtp.wait_for(email)
    assert message["Subject"] == f"Kvittering for bestilling nr. {receipt.order.id}"


async def test_portal_send_mail_sends_what_is_due(smtp):
    company_id, email = await make_company()
    receipt = await paid_receipt(company_id)
    await outbox.queue(email, "receipt", {"receipt": receipt}, f"test-cli:{receipt.order.id}")
    result = subprocess.run(
        [str(Path(sys.executable).with_name("portal")), "send-mail"],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Sent ")
    assert len(await smtp.wait_for(email)) == 1


# --- settings ----------------------------------------------------------------------------------


def test_production_needs_an_smtp_server_and_a_sender(tmp_path):
    environ = {k: v for k, v in PRODUCTION_ENV.items() if k not in {"SMTP_URL", "MAIL_FROM"}}
    with pytest.raises(ConfigError, match=r"SMTP_URL, MAIL_FROM \(not set"):
        load_settings({**environ, "PORTAL_VAR_DIR": str(tmp_path)})


@pytest.mark.parametrize(
    "changes, complaint",
    [
        ({"SMTP_URL": "http://mail.example"}, "SMTP_URL must look like"),
        ({"SMTP_URL": "smtp://mail.example:port"}, "port"),
        ({"MAIL_FROM": "support"}, "MAIL_FROM must be an address"),
    ],
)
def test_mail_settings_that_cannot_work_are_refused(changes, complaint):
    with pytest.raises(ConfigError, match=complaint):
        load_settings({**PRODUCTION_ENV, **changes})


@pytest.mark.parametrize(
    "url, expected",
    [
        (
            "smtp://portal%40firma.no:hemmelig%2F1@mail.example:587",
            ("mail.example", 587, "portal@firma.no", "hemmelig/1", False, True),
        ),
        ("smtps://mail.example", ("mail.example", 465, None, None, True, False)),
        ("smtp://127.0.0.1:2525", ("127.0.0.1", 2525, None, None, False, False)),
    ],
)
def test_smtp_url_says_how_to_connect(url, expected):
    options = outbox.smtp_options(url)
    names = ("hostname", "port", "username", "password", "use_tls", "start_tls")
    assert tuple(options[name] for name in names) == expected


def test_the_sender_is_named_as_the_seller_unless_mail_from_names_one(settings):
    assert str(outbox.sender(settings)) == f"{settings.seller.name} <support@localhost>"
    named = dataclasses.replace(settings, mail_from="Kundestøtte <hjelp@firma.no>")
    assert str(outbox.sender(named)) == "Kundestøtte <hjelp@firma.no>"


# --- development: files and /dev/mail ---------------------------------------------------------


@pytest.fixture
def development(settings, tmp_path):
    """`make run`: no SMTP_URL, mails as files in a directory of this test's own."""
    return dataclasses.replace(settings, smtp_url=None, mail_dir=tmp_path / "mail")


async def test_without_smtp_mails_are_files_listed_at_dev_mail(development, smtp):
    company_id, email = await make_company()
    receipt = await paid_receipt(company_id)
    due = await queue_for_this_test(email, receipt, f"test-eml:{receipt.order.id}")
    await outbox.send_due(development, now=due)
    assert smtp.messages_to(email) == []
    # (Mail other tests left due is written here too.)
    [path] = [p for p in development.mail_dir.glob("*.eml") if email in p.read_text()]
    subject = f"Kvittering for bestilling nr. {receipt.order.id}"
    assert subject in path.read_text()

    app = create_app(development, db_pool=False, background_jobs=False)
    async with AsyncTestClient(app=app) as client:
        listing = await client.get("/dev/mail")
        assert listing.status_code == 200
        assert subject in listing.text and email in listing.text
        assert f'href="/dev/mail/{path.name}"' in listing.text
        shown = await client.get(f"/dev/mail/{path.name}")
        assert shown.status_code == 200
        assert subject in shown.text and "Beløp eks. mva" in shown.text
        html = await client.get(f"/dev/mail/{path.name}/html")
        assert html.status_code == 200 and "<h1>Kvittering</h1>" in html.text


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "..%2F..%2Fsecret_key",
        "%2e%2e%2f%2e%2e%2fportal.sqlite",
        "..%5C..%5Csecret_key",
        "nothing.eml",
        ".hidden.eml.part",
        "x%00.eml",
        "%F0%9F%93%A7.eml",
        "a" * 5000 + ".eml",
    ],
)
async def test_dev_mail_names_no_file_outside_its_directory(development, name):
    development.mail_dir.mkdir(parents=True)
    (development.mail_dir / ".hidden.eml.part").write_text("Subject: half\n\n")
    (development.mail_dir.parent / "secret_key").write_text("not for the browser")
    app = create_app(development, db_pool=False, background_jobs=False)
    async with AsyncTestClient(app=app) as client:
        for path in (f"/dev/mail/{name}", f"/dev/mail/{name}/html"):
            response = await client.get(path)
            assert response.status_code == 404, (path, response.status_code)
            assert "not for the browser" not in response.text


async def test_dev_mail_is_not_served_in_production(tmp_path):
    settings = load_settings({**os.environ, **PRODUCTION_ENV, "PORTAL_VAR_DIR": str(tmp_path)})
    app = create_app(settings, db_pool=False, background_jobs=False)
    async with AsyncTestClient(app=app, base_url="https://portal.example") as client:
        for path in ("/dev/mail", "/dev/mail/x.eml", "/dev/mail/x.eml/html"):
            assert (await client.get(path)).status_code == 404
