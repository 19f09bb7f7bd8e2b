"""Support by e-mail (issue 11): mail sent over SMTP to the portal's receiver becomes a ticket or
a reply, or waits in the staff inbox; auto-replies and staff replies go out through the outbox
to the run's SMTP server (tests/smtp_server.py) — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import re
import socket
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib
import pytest

from backend.services import attachments, catalog, inbound_mail, outbox, tickets, users
from backend.services.users import create_staff, hash_password
from backend.tables import (
    Attachment,
    Channel,
    InboundMail,
    InboundOutcome,
    InboxReason,
    OutboxMail,
    Role,
    Ticket,
    TicketMessage,
    User,
)
from tests.support import PASSWORD, login, make_company, new_email, post_form

SUPPORT = "support@portal.example"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def receiver():
    """The portal's SMTP receiver on a free loopback port, on this test's loop."""
    await catalog.seed_demo_catalog()
    port = _free_port()
    server = await inbound_mail.start_receiver("127.0.0.1", port)
    yield port
    server.close()
    await server.wait_closed()


def mail(
    sender: str,
    subject: str = "Inventor krasjer ved lagring",
    text: str | None = "Hei, Inventor krasjer hver gang jeg lagrer en sammenstilling.",
    *,
    html: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Kunde <{sender}>"
    message["To"] = SUPPORT
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="kunde.example")
    for name, value in (headers or {}).items():
        message[name] = value
    if text is not None:
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
    elif html is not None:
        message.set_content(html, subtype="html")
    return message


def wire(message: EmailMessage) -> bytes:
    """The message as SMTP carries it (CRLF line ends)."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


async def send(port: int, message: EmailMessage, envelope_from: str | None = None) -> str:
    """Deliver over SMTP; the receiver's answer to DATA."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30) as client:
        sender = message["From"].addresses[0].addr_spec if envelope_from is None else envelope_from
        _, answer = await client.sendmail(sender, [SUPPORT], wire(message))
    return answer


async def received(message: EmailMessage) -> InboundMail:
    row = await InboundMail.objects().get(InboundMail.message_id == message["Message-ID"])
    assert row is not None
    return row


async def outbox_to(address: str) -> list[OutboxMail]:
    return await OutboxMail.objects().where(OutboxMail.recipient == address).order_by(OutboxMail.id)


async def send_mail_now(settings) -> None:
    """Send what is due now. Never by a later clock: that would take mails another sender (a
    served portal's, in the background) has just claimed, and send them twice."""
    await outbox.send_due(settings)


async def make_member(company_id: int, *, language: str = "nb") -> User:
    member = User(
        email=new_email("medlem"),
        name="Mona Medlem",
        role=Role.member.value,
        company=company_id,
        password_hash=hash_password(PASSWORD),
        language=language,
    )
    await member.save()
    return member


async def sign_in_staff(client) -> User:
    email = new_email("tekniker")
    user = await create_staff(
        email=email, name="Tor Tekniker", role="technician", password=PASSWORD
    )
    assert (await login(client, email)).status_code == 303
    return user


# --- a new ticket ------------------------------------------------------------------------------


async def test_a_customers_mail_opens_a_ticket_and_gets_an_auto_reply(receiver, settings, smtp):
    company_id, email = await make_company("Mail Mekanikk AS")
    message = mail(email)
    answer = await send(receiver, message)
    assert answer.startswith("2.0.0 Received")

    row = await received(message)
    assert row.outcome == InboundOutcome.ticket and row.company == company_id
    assert row.raw == wire(message) and row.envelope_to == SUPPORT  # kept whole
    ticket = await Ticket.objects().get(Ticket.id == row.ticket)
    assert ticket.company == company_id and ticket.channel == Channel.mail
    assert ticket.subject == "Inventor krasjer ved lagring"
    assert "krasjer hver gang jeg lagrer" in ticket.description
    assert ticket.product_code == "inventor"  # the text names it
    number = tickets.ticket_number(ticket.id)

    await send_mail_now(settings)
    [reply] = await smtp.wait_for(email)
    assert reply["Subject"] == f"[{number}] Mottatt: Inventor krasjer ved lagring"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == message["Message-ID"]
    text = reply.get_body(("plain",)).get_content()
    assert number in text and "hverdager 08:00–16:00" in text
    assert f"/portal/tickets/{ticket.id}" in text


async def test_a_mail_that_names_no_product_leaves_it_for_staff(receiver):
    _, email = await make_company()
    message = mail(email, "Lisens", "Hvor finner jeg lisensnøkkelen vår?")
    await send(receiver, message)
    ticket = await Ticket.objects().get(Ticket.id == (await received(message)).ticket)
    assert ticket.product_code == ""


async def test_inventor_cam_is_inventor_cam_not_inventor(receiver):
    _, email = await make_company()
    message = mail(email, "Postprosessor", "Inventor CAM lager feil G-kode.")
    await send(receiver, message)
    ticket = await Ticket.objects().get(Ticket.id == (await received(message)).ticket)
    assert ticket.product_code == "inventor-cam"


async def test_the_same_mail_delivered_twice_is_one_ticket(receiver, settings):
    _, email = await make_company()
    message = mail(email)
    await send(receiver, message)
    await send(receiver, message)
    rows = await InboundMail.objects().where(InboundMail.message_id == message["Message-ID"])
    assert sorted(r.outcome for r in rows) == ["duplicate", "ticket"]
    assert len(await outbox_to(email)) == 1


async def test_an_html_only_mail_is_shown_as_text_without_markup(receiver, client):
    _, email = await make_company()
    html = (
        "<html><head><style>p{color:red}</style><title>x</title></head><body>"
        "<p>Tegningen &amp; modellen</p><script>alert('pwn')</script>"
        "<div>mister <b>målene</b><img src=x onerror=alert(2)></div></body></html>"
    )
    message = mail(email, "Målene forsvinner", None, html=html)
    await send(receiver, message)
    ticket = await Ticket.objects().get(Ticket.id == (await received(message)).ticket)
    assert ticket.description.split() == ["Tegningen", "&", "modellen", "mister", "målene"]
    assert ticket.description.splitlines()[0] == "Tegningen & modellen"  # a paragraph a line

    assert (await login(client, email)).status_code == 303
    page = (await client.get(f"/portal/tickets/{ticket.id}")).text
    assert "Tegningen &amp; modellen" in page and "mister målene" in page
    assert "alert(" not in page and "onerror" not in page


# --- a member's mail ---------------------------------------------------------------------------


async def test_a_members_mail_is_the_companys_ticket_and_the_superuser_gets_a_copy(
    receiver, settings, smtp, client
):
    company_id, superuser_email = await make_company()
    member = await make_member(company_id, language="en")
    message = mail(member.email, "Vault synker ikke", "Autodesk Vault synker ikke filene.")
    await send(receiver, message)
    ticket = await Ticket.objects().get(Ticket.id == (await received(message)).ticket)
    assert ticket.company == company_id and ticket.opened_by == member.id
    number = tickets.ticket_number(ticket.id)

    await send_mail_now(settings)
    [auto_reply] = await smtp.wait_for(member.email)
    assert auto_reply["Subject"] == f"[{number}] Received: Vault synker ikke"  # their language
    [copy] = await smtp.wait_for(superuser_email)
    assert copy["Subject"] == f"[{number}] Ny sak fra Mona Medlem: Vault synker ikke"
    assert "synker ikke filene" in copy.get_body(("plain",)).get_content()

    assert (await login(client, superuser_email)).status_code == 303
    assert "Vault synker ikke" in (await client.get(f"/portal/tickets/{ticket.id}")).text
    assert "Vault synker ikke" in (await client.get("/portal/tickets")).text


# --- replies -----------------------------------------------------------------------------------


async def first_ticket(port: int, email: str) -> tuple[Ticket, EmailMessage]:
    message = mail(email)
    await send(port, message)
    ticket = await Ticket.objects().get(Ticket.id == (await received(message)).ticket)
    return ticket, message


async def test_a_reply_with_the_number_in_the_subject_is_added_to_the_ticket(receiver):
    _, email = await make_company()
    ticket, _ = await first_ticket(receiver, email)
    await Ticket.update({Ticket.status: "waiting_for_customer", Ticket.waiting_since: None}).where(
        Ticket.id == ticket.id
    )
    number = tickets.ticket_number(ticket.id)
    reply = mail(
        email,
        f"SV: [{number}] Mottatt: Inventor krasjer ved lagring",
        "Det skjer bare med store filer.\n\n"
        "Den 1. des. 2026 kl. 10:00 skrev Support <support@portal.example>:\n"
        "> Vi har mottatt e-posten din\n> og opprettet sak.\n",
    )
    await send(receiver, reply)

    row = await received(reply)
    assert row.outcome == InboundOutcome.reply and row.ticket == ticket.id
    [message] = await TicketMessage.objects().where(TicketMessage.ticket == ticket.id)
    assert message.body == "Det skjer bare med store filer."  # the quoted mail cut off
    assert message.author == (await User.objects().get(User.email == email)).id
    again = await Ticket.objects().get(Ticket.id == ticket.id)
    assert again.status == "open" and again.waiting_since is not None  # back with support
    assert await Ticket.count().where(Ticket.opened_by == message.author) == 1
    assert len(await outbox_to(email)) == 1  # a reply gets no auto-reply


async def test_a_reply_to_our_mail_is_added_by_in_reply_to(receiver):
    _, email = await make_company()
    ticket, _ = await first_ticket(receiver, email)
    [auto_reply] = await outbox_to(email)
    reply = mail(
        email,
        "Re: det jeg skrev",
        "Her er loggfilen.",
        headers={"In-Reply-To": auto_reply.message_id, "References": auto_reply.message_id},
    )
    await send(receiver, reply)
    assert (await received(reply)).ticket == ticket.id
    [message] = await TicketMessage.objects().where(TicketMessage.ticket == ticket.id)
    assert message.body == "Her er loggfilen."


async def test_another_companys_ticket_is_never_written_into(receiver):
    _, victim_email = await make_company("Offer AS")
    victim_ticket, victim_mail = await first_ticket(receiver, victim_email)
    [victim_auto_reply] = await outbox_to(victim_email)
    attacker_company, attacker_email = await make_company("Angriper AS")
    number = tickets.ticket_number(victim_ticket.id)
    intrusion = mail(
        attacker_email,
        f"Re: [{number}] Mottatt",
        "Skriv dette inn i saken deres.",
        headers={
            "In-Reply-To": victim_auto_reply.message_id,
            "References": f"{victim_mail['Message-ID']} {victim_auto_reply.message_id}",
        },
    )
    await send(receiver, intrusion)

    assert await TicketMessage.count().where(TicketMessage.ticket == victim_ticket.id) == 0
    row = await received(intrusion)
    own = await Ticket.objects().get(Ticket.id == row.ticket)
    assert row.outcome == InboundOutcome.ticket and own.company == attacker_company

    # An unknown sender naming the ticket does not get in either.
    stranger = mail("fremmed@example.net", f"[{number}] hei", "Hei")
    await send(receiver, stranger)
    assert (await received(stranger)).outcome == InboundOutcome.inbox
    assert await TicketMessage.count().where(TicketMessage.ticket == victim_ticket.id) == 0


# --- staff replies by mail -----------------------------------------------------------------------


async def test_a_staff_reply_arrives_by_mail_threaded_and_numbered(
    receiver, settings, smtp, client
):
    _, email = await make_company()
    ticket, message = await first_ticket(receiver, email)
    number = tickets.ticket_number(ticket.id)
    [auto_reply] = await outbox_to(email)
    await sign_in_staff(client)

    response = await post_form(
        client,
        f"/staff/tickets/{ticket.id}/messages",
        {"body": "Prøv å slå av maskinvare-akselerasjon."},
    )
    assert response.status_code == 303
    note = await post_form(
        client,
        f"/staff/tickets/{ticket.id}/messages",
        {"body": "Kunden er utålmodig", "internal": "1"},
    )
    assert note.status_code == 303

    await send_mail_now(settings)
    mails = await smtp.wait_for(email, 2)
    staff_reply = mails[-1]
    assert staff_reply["Subject"] == f"Re: [{number}] Inventor krasjer ved lagring"
    assert staff_reply["In-Reply-To"] == auto_reply.message_id
    assert message["Message-ID"] in staff_reply["References"]
    text = staff_reply.get_body(("plain",)).get_content()
    assert "maskinvare-akselerasjon" in text and "utålmodig" not in text
    assert staff_reply["Auto-Submitted"] is None  # a person wrote it
    await asyncio.sleep(0.3)
    assert len(smtp.messages_to(email)) == 2  # the note sent nothing

    # The customer answers the staff reply from their mail program: back in the ticket.
    answer = mail(
        email,
        f"Re: [{number}] Inventor krasjer ved lagring",
        "Det hjalp, takk!",
        headers={"In-Reply-To": staff_reply["Message-ID"]},
    )
    await send(receiver, answer)
    assert (await received(answer)).ticket == ticket.id


async def test_a_staff_reply_reaches_the_member_who_wrote_and_the_superuser(
    receiver, settings, smtp, client
):
    company_id, superuser_email = await make_company()
    member = await make_member(company_id, language="en")
    ticket, _ = await first_ticket(receiver, member.email)
    staff = await sign_in_staff(client)
    await tickets.add_message(staff, ticket, "Vi ser på det.")
    by_recipient = {
        row.recipient: row
        for row in await OutboxMail.objects().where(OutboxMail.template == "ticket_reply")
        if row.key.startswith("ticket-reply:")
    }
    assert by_recipient[member.email].language == "en"
    assert by_recipient[superuser_email].language == "nb"
    superuser = await User.objects().get(User.email == superuser_email)
    assert users.language_of(superuser) == "nb"


# --- the staff inbox ---------------------------------------------------------------------------


async def test_an_unknown_sender_waits_in_the_inbox_and_staff_attach_it(receiver, client, smtp):
    company_id, _ = await make_company("Tilknyttet AS")
    message = mail("ny.person@ukjent.example", "Trenger hjelp", "Vault vil ikke starte.")
    await send(receiver, message)
    row = await received(message)
    assert row.outcome == InboundOutcome.inbox and row.reason == InboxReason.unknown_sender
    assert await outbox_to("ny.person@ukjent.example") == []  # no auto-reply to a stranger

    staff = await sign_in_staff(client)
    page = await client.get("/staff/inbox")
    assert page.status_code == 200
    assert "ny.person@ukjent.example" in page.text and "Ukjent avsender" in page.text
    shown = await client.get(f"/staff/inbox/{row.id}")
    assert "Vault vil ikke starte." in shown.text
    raw = await client.get(f"/staff/inbox/{row.id}/raw")
    assert raw.content == wire(message)
    assert raw.headers["content-disposition"].startswith("attachment")

    attached = await post_form(
        client, f"/staff/inbox/{row.id}/attach", {"company": str(company_id)}
    )
    assert attached.status_code == 303
    row = await received(message)
    assert row.outcome == InboundOutcome.attached and row.handled_by == staff.id
    assert row.handled_at is not None
    ticket = await Ticket.objects().get(Ticket.id == row.ticket)
    assert ticket.company == company_id and ticket.channel == Channel.mail
    assert ticket.subject == "Trenger hjelp" and ticket.product_code == "vault"
    assert attached.headers["location"] == f"/staff/tickets/{ticket.id}"
    assert "ny.person@ukjent.example" not in (await client.get("/staff/inbox")).text

    # Twice (another tab, a colleague) is still one ticket.
    again = await post_form(client, f"/staff/inbox/{row.id}/attach", {"company": str(company_id)})
    assert again.status_code == 422 and "allerede behandlet" in again.text
    assert await Ticket.count().where(Ticket.subject == "Trenger hjelp") >= 1
    assert (await received(message)).ticket == ticket.id


async def test_staff_discard_a_mail_and_who_did_is_kept(receiver, client):
    message = mail("reklame@spam.example", "Kjøp billig", "Tilbud!")
    await send(receiver, message)
    row = await received(message)
    staff = await sign_in_staff(client)
    response = await post_form(client, f"/staff/inbox/{row.id}/discard", {})
    assert response.status_code == 303
    row = await received(message)
    assert row.outcome == InboundOutcome.discarded and row.handled_by == staff.id
    assert row.ticket is None


async def test_attaching_needs_a_real_company(receiver, client):
    message = mail("noen@ukjent.example", "Hei", "Hei")
    await send(receiver, message)
    row = await received(message)
    await sign_in_staff(client)
    for company in ("", "abc", "999999999"):
        response = await post_form(client, f"/staff/inbox/{row.id}/attach", {"company": company})
        assert response.status_code == 422, company
        assert "Velg et firma." in response.text
    assert (await received(message)).outcome == InboundOutcome.inbox


async def test_the_inbox_is_staff_only(receiver, client):
    message = mail("noen@ukjent.example", "Hemmelig", "Hemmelig innhold")
    await send(receiver, message)
    row = await received(message)
    _, email = await make_company()
    assert (await login(client, email)).status_code == 303
    for path in ("/staff/inbox", f"/staff/inbox/{row.id}", f"/staff/inbox/{row.id}/raw"):
        response = await client.get(path)
        assert response.status_code == 403, path
        assert "Hemmelig innhold" not in response.text
    for action in ("attach", "discard"):
        response = await post_form(client, f"/staff/inbox/{row.id}/{action}", {"company": "1"})
        assert response.status_code == 403
    assert (await received(message)).outcome == InboundOutcome.inbox


# --- no loops, and limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "envelope_from"),
    [
        ({"Auto-Submitted": "auto-replied"}, None),
        ({"Auto-Submitted": "auto-generated"}, None),
        ({"Precedence": "bulk"}, None),
        ({"Precedence": "auto_reply"}, None),
        ({"X-Auto-Response-Suppress": "All"}, None),
        ({"List-Id": "<kunder.example>"}, None),
        ({}, ""),  # MAIL FROM:<>, a bounce
    ],
)
async def test_automatic_mail_opens_no_ticket_and_gets_no_answer(receiver, headers, envelope_from):
    _, email = await make_company()
    message = mail(email, "Fraværsmelding", "Jeg er borte til mandag.", headers=headers)
    await send(receiver, message, envelope_from)
    row = await received(message)
    assert row.outcome == InboundOutcome.inbox and row.reason == InboxReason.automatic
    assert row.ticket is None
    assert await outbox_to(email) == []


async def test_a_mail_loop_stops_after_one_exchange(receiver, settings, smtp):
    """The customer's auto-responder answers our auto-reply: once marked as automatic, once
    not marked at all (a badly made one); either way we write nothing more."""
    _, email = await make_company()
    await first_ticket(receiver, email)
    await send_mail_now(settings)
    [ours] = await smtp.wait_for(email)
    assert ours["Auto-Submitted"] == "auto-replied"

    for headers in ({"Auto-Submitted": "auto-replied"}, {}):
        autoresponse = mail(
            email,
            f"Fravær: {ours['Subject']}",
            "Jeg er på ferie.",
            headers={"In-Reply-To": ours["Message-ID"], **headers},
        )
        await send(receiver, autoresponse)
    await send_mail_now(settings)
    await asyncio.sleep(0.3)
    assert len(smtp.messages_to(email)) == 1
    assert len(await outbox_to(email)) == 1


async def test_the_twenty_first_new_ticket_in_an_hour_waits_for_staff(receiver):
    _, email = await make_company()
    messages = [mail(email, f"Sak {n}", "Hei") for n in range(21)]
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver, timeout=60) as client:
        for message in messages:
            await client.sendmail(email, [SUPPORT], wire(message))
    rows = [await received(message) for message in messages]
    assert [r.outcome for r in rows] == ["ticket"] * 20 + ["inbox"]
    assert rows[-1].reason == InboxReason.too_many and rows[-1].ticket is None
    assert len(await outbox_to(email)) == 20  # no auto-reply beyond the limit

    # An hour later the sender opens tickets again.
    await InboundMail.update(
        {InboundMail.received_at: InboundMail.received_at - datetime.timedelta(hours=1)}
    ).where(InboundMail.from_address == email)
    later = mail(email, "Sak 22", "Hei")
    await send(receiver, later)
    assert (await received(later)).outcome == InboundOutcome.ticket


# --- what the receiver refuses -----------------------------------------------------------------


async def test_an_oversize_mail_is_refused_and_the_receiver_goes_on(receiver):
    _, email = await make_company()
    huge = mail(email, "Stor fil", "x" * (inbound_mail.MAX_MESSAGE_BYTES + 1024))
    with pytest.raises(aiosmtplib.SMTPException) as refused:
        await send(receiver, huge)
    assert "552" in str(refused.value) or getattr(refused.value, "code", 0) == 552
    assert await InboundMail.count().where(InboundMail.message_id == huge["Message-ID"]) == 0

    fine = mail(email)
    await send(receiver, fine)
    assert (await received(fine)).outcome == InboundOutcome.ticket


async def test_what_is_no_mail_is_refused_with_an_smtp_error(receiver):
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver, timeout=30) as client:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.sendmail("a@b.example", [SUPPORT], b"\r\n\r\njust text, no header\r\n")
        assert refused.value.code == 550
        # Odd headers are read as well as they can be, never a crash.
        odd = (
            b"From: =?utf-8?q?broken <<<>>>\r\nSubject: =?x-unknown?b?////?=\r\n"
            b"Message-ID: <odd@kunde.example>\r\nContent-Type: text/plain; charset=x-nonsense\r\n"
            b"\r\n\xff\xfe text\r\n"
        )
        _, answer = await client.sendmail("a@b.example", [SUPPORT], odd)
        assert answer.startswith("2.0.0")


def test_quoted_text_is_cut_where_the_quote_starts():
    assert (
        inbound_mail.strip_quoted("Takk!\n\nOn Mon, 1 Dec 2026, Support wrote:\n> hei") == "Takk!"
    )
    assert inbound_mail.strip_quoted("Ok\n-----Original Message-----\nFrom: x") == "Ok"
    assert inbound_mail.strip_quoted("Svar\n> sitat\n> mer") == "Svar"
    # Only quoted lines: the whole text is kept, nothing is lost.
    assert inbound_mail.strip_quoted("> bare sitat") == "> bare sitat"


def test_attachments_are_read_into_one_list():
    message = mail("a@b.example")
    message.add_attachment(b"\x89PNG...", maintype="image", subtype="png", filename="skjerm.png")
    message.add_attachment(b"log line\n", maintype="text", subtype="plain", filename="inventor.log")
    parsed = inbound_mail.parse(wire(message), "a@b.example")
    assert [(a.filename, a.content_type, a.data) for a in parsed.attachments] == [
        ("skjerm.png", "image/png", b"\x89PNG..."),
        ("inventor.log", "text/plain", b"log line\n"),
    ]
    assert "krasjer" in parsed.text


def test_a_customers_own_words_with_skrev_are_kept():
    text = "Jeg skrev dette i fjor:\nInventor var treg."
    assert inbound_mail.strip_quoted(text) == text


async def test_staff_choose_the_product_a_mail_did_not_name_before_logging_time(receiver, client):
    _, email = await make_company()
    message = mail(email, "Lisens", "Hvor finner jeg lisensnøkkelen vår?")
    await send(receiver, message)
    ticket = await Ticket.objects().get(Ticket.id == (await received(message)).ticket)
    await sign_in_staff(client)
    page = await client.get(f"/staff/tickets/{ticket.id}")
    assert "Produkt ikke valgt" in page.text

    time = await post_form(
        client,
        f"/staff/tickets/{ticket.id}/time",
        {"minutes": "20", "performed_on": "", "channel": "mail", "note": ""},
    )
    assert time.status_code == 422 and "Velg et produkt for saken først." in time.text

    bad = await post_form(client, f"/staff/tickets/{ticket.id}/product", {"product": "photoshop"})
    assert bad.status_code == 422 and "Velg et produkt fra listen." in bad.text
    chosen = await post_form(client, f"/staff/tickets/{ticket.id}/product", {"product": "vault"})
    assert chosen.status_code == 303
    assert (await Ticket.objects().get(Ticket.id == ticket.id)).product_code == "vault"
    time = await post_form(
        client,
        f"/staff/tickets/{ticket.id}/time",
        {"minutes": "20", "performed_on": "", "channel": "mail", "note": ""},
    )
    assert time.status_code == 303


# --- never lost ---------------------------------------------------------------------------------


async def test_a_mail_the_portal_cannot_take_now_is_answered_451_and_nothing_is_written(
    receiver, monkeypatch
):
    """The sending server keeps a mail it was told 451 about and tries again later."""
    _, email = await make_company()

    async def broken(**_: object) -> Ticket:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(tickets, "create", broken)
    message = mail(email)
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await send(receiver, message)
    assert refused.value.code == 451
    assert await InboundMail.count().where(InboundMail.message_id == message["Message-ID"]) == 0
    assert await outbox_to(email) == []

    monkeypatch.undo()
    await send(receiver, message)  # the retry
    assert (await received(message)).outcome == InboundOutcome.ticket


def test_the_receivers_port_must_be_a_port():
    from backend.config import ConfigError, load_settings

    for value in ("smtp", "0", "70000"):
        with pytest.raises(ConfigError, match="INBOUND_SMTP_PORT"):
            load_settings({"INBOUND_SMTP_PORT": value, "SECRET_KEY": "k" * 40})
    settings = load_settings({"INBOUND_SMTP_PORT": "2525", "SECRET_KEY": "k" * 40})
    assert (settings.inbound_smtp_host, settings.inbound_smtp_port) == ("127.0.0.1", 2525)
    assert load_settings({"SECRET_KEY": "k" * 40}).inbound_smtp_port is None


async def test_portal_receive_mail_takes_mail_until_stopped(tmp_path):
    """The receiver as a service of its own (`portal receive-mail`), as production runs it."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    await catalog.seed_demo_catalog()
    _, email = await make_company()
    port = _free_port()
    portal = Path(sys.executable).with_name("portal")
    env = {**os.environ, "INBOUND_SMTP_PORT": str(port), "PORTAL_VAR_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [str(portal), "receive-mail"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        message = mail(email)
        deadline = time.monotonic() + 30
        while True:
            try:
                await send(port, message)
                break
            except (OSError, aiosmtplib.SMTPConnectError):
                assert process.poll() is None and time.monotonic() < deadline, "did not start"
                await asyncio.sleep(0.2)
        assert (await received(message)).outcome == InboundOutcome.ticket
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_the_app_receives_mail_when_inbound_smtp_port_is_set(settings):
    import dataclasses

    from litestar.testing import AsyncTestClient

    from backend.app import create_app

    await catalog.seed_demo_catalog()
    _, email = await make_company()
    port = _free_port()
    receiving = dataclasses.replace(settings, inbound_smtp_port=port)
    app = create_app(receiving, db_pool=False, background_jobs=True)
    async with AsyncTestClient(app=app):
        message = mail(email)
        await send(port, message)
    assert (await received(message)).outcome == InboundOutcome.ticket
    with pytest.raises(OSError):  # stopped with the app
        await send(port, mail(email))


async def test_staff_reach_a_tickets_mails_with_their_attachments_from_the_ticket(receiver, client):
    _, email = await make_company()
    message = mail(email, "Krasj med vedlegg", "Se loggen.")
    message.add_attachment(
        b"FATAL 0xC0000005\n", maintype="text", subtype="plain", filename="a.log"
    )
    await send(receiver, message)
    row = await received(message)
    assert row.attachment_count == 1
    await sign_in_staff(client)
    page = (await client.get(f"/staff/tickets/{row.ticket}")).text
    assert f'href="/staff/inbox/{row.id}"' in page and "1 vedlegg" in page
    raw = await client.get(f"/staff/inbox/{row.id}/raw")
    assert b'filename="a.log"' in raw.content


# --- at once -------------------------------------------------------------------------------------


async def test_twenty_five_mails_at_once_open_twenty_tickets(receiver):
    """Five connections sending at once: the hour's count is taken one mail at a time."""
    _, email = await make_company()
    messages = [mail(email, f"Samtidig {n}", "Hei") for n in range(25)]

    async def connection(batch: list[EmailMessage]) -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver, timeout=60) as client:
            for message in batch:
                await client.sendmail(email, [SUPPORT], wire(message))

    await asyncio.gather(*(connection(messages[n::5]) for n in range(5)))
    outcomes = [(await received(message)).outcome for message in messages]
    assert outcomes.count("ticket") == 20 and outcomes.count("inbox") == 5
    assert await Ticket.count().where(Ticket.subject.like("Samtidig %")) >= 20
    assert len(await outbox_to(email)) == 20


async def test_two_staff_attaching_one_mail_at_once_make_one_ticket(receiver):
    from backend.services.errors import ValidationFailed

    company_id, _ = await make_company()
    message = mail("to.samtidig@ukjent.example", "Én sak", "Hei")
    await send(receiver, message)
    row = await received(message)
    first = await create_staff(email=new_email("a"), name="A", role="technician", password=PASSWORD)
    second = await create_staff(
        email=new_email("b"), name="B", role="technician", password=PASSWORD
    )
    results = await asyncio.gather(
        inbound_mail.attach(first, row.id, {"company": str(company_id)}),
        inbound_mail.attach(second, row.id, {"company": str(company_id)}),
        return_exceptions=True,
    )
    made = [r for r in results if isinstance(r, Ticket)]
    refused = [r for r in results if isinstance(r, ValidationFailed)]
    assert len(made) == 1 and len(refused) == 1, results
    assert await Ticket.count().where(Ticket.subject == "Én sak") == 1


async def test_auto_submitted_no_is_a_person_writing(receiver):
    _, email = await make_company()
    message = mail(email, headers={"Auto-Submitted": "no"})
    await send(receiver, message)
    assert (await received(message)).outcome == InboundOutcome.ticket


async def test_a_deactivated_users_mail_waits_for_staff(receiver):
    _, email = await make_company()
    await User.update({User.active: False}).where(User.email == email)
    message = mail(email)
    await send(receiver, message)
    row = await received(message)
    assert row.outcome == InboundOutcome.inbox and row.reason == InboxReason.unknown_sender
    assert await outbox_to(email) == []


# --- attachments -------------------------------------------------------------------------------

DOWNLOAD = re.compile(r'<a href="(/portal/tickets/\d+/attachments/\d+)" download>([^<]*)</a>')


def with_files(message: EmailMessage, *files: tuple[str, bytes]) -> EmailMessage:
    for name, data in files:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message


async def downloads_seen_by(client, email: str, ticket_id: int) -> dict[str, bytes]:
    """What the ticket's page offers `email` to download: {file name: the bytes it serves}."""
    assert (await login(client, email)).status_code == 303
    page = (await client.get(f"/portal/tickets/{ticket_id}")).text
    return {name: (await client.get(url)).content for url, name in DOWNLOAD.findall(page)}


async def test_a_mails_files_are_the_tickets_and_only_its_company_gets_them(
    receiver, client, other_client
):
    _, email = await make_company("Vedlegg på mail AS")
    log, part = b"FATAL 0xC0000005 in Inventor\n" * 50, bytes(range(256)) * 40
    message = with_files(mail(email), ("inventor.log", log), ("brakett.ipt", part))
    await send(receiver, message)
    row = await received(message)
    assert row.outcome == InboundOutcome.ticket

    assert await downloads_seen_by(client, email, row.ticket) == {
        "inventor.log": log,
        "brakett.ipt": part,
    }
    _, stranger = await make_company("Nabofirma AS")
    assert (await login(other_client, stranger)).status_code == 303
    assert (await other_client.get(f"/portal/tickets/{row.ticket}")).status_code == 404
    [attachment] = await Attachment.objects().where(
        (Attachment.ticket == row.ticket) & (Attachment.filename == "inventor.log")
    )
    url = f"/portal/tickets/{row.ticket}/attachments/{attachment.id}"
    assert (await other_client.get(url)).status_code == 404


async def test_a_reply_by_mail_carries_its_files_on_its_message(receiver, client):
    _, email = await make_company()
    ticket, _ = await first_ticket(receiver, email)
    number = tickets.ticket_number(ticket.id)
    reply = with_files(mail(email, f"SV: [{number}] loggen", "Her er loggen."), ("ny.log", b"x\n"))
    await send(receiver, reply)

    [message] = await TicketMessage.objects().where(TicketMessage.ticket == ticket.id)
    [attachment] = await Attachment.objects().where(Attachment.ticket == ticket.id)
    assert attachment.message == message.id and attachment.filename == "ny.log"
    assert await downloads_seen_by(client, email, ticket.id) == {"ny.log": b"x\n"}


async def test_a_file_over_the_limit_is_left_out_and_named_and_the_mail_kept(receiver, client):
    _, email = await make_company()
    too_large = b"\0" * (attachments.MAX_FILE_BYTES + 1)
    message = with_files(mail(email), ("stor.zip", too_large), ("liten.log", b"ok\n"))
    await send(receiver, message)
    row = await received(message)
    ticket = await Ticket.objects().get(Ticket.id == row.ticket)

    assert await downloads_seen_by(client, email, ticket.id) == {"liten.log": b"ok\n"}
    assert "stor.zip" in ticket.description  # the thread says what did not come along
    assert row.attachment_count == 2 and b'filename="stor.zip"' in row.raw  # nothing lost


async def test_staff_attaching_a_strangers_mail_bring_its_files(receiver, client, other_client):
    company_id, email = await make_company("Tilknyttet med vedlegg AS")
    message = with_files(mail("ny@ukjent.example", "Vedlegg", "Se fil."), ("skjerm.log", b"1\n"))
    await send(receiver, message)
    row = await received(message)
    assert not await Attachment.exists().where(Attachment.filename == "skjerm.log")

    await sign_in_staff(other_client)
    attached = await post_form(
        other_client, f"/staff/inbox/{row.id}/attach", {"company": str(company_id)}
    )
    assert attached.status_code == 303
    ticket_id = (await received(message)).ticket
    assert await downloads_seen_by(client, email, ticket_id) == {"skjerm.log": b"1\n"}


# --- what an attacker sends ----------------------------------------------------------------------


def raw_mail(from_lines: list[str], extra: str = "", body: str = "Hei") -> bytes:
    head = "".join(f"From: {line}\r\n" for line in from_lines)
    return (
        f"{head}To: {SUPPORT}\r\nSubject: Hjelp\r\nMessage-ID: {make_msgid()}\r\n{extra}\r\n{body}"
    ).encode()


async def deliver(port: int, raw: bytes, envelope_from: str = "angriper@evil.example") -> str:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30) as client:
        _, answer = await client.sendmail(envelope_from, [SUPPORT], raw)
    return answer


async def latest_mail() -> InboundMail:
    return await InboundMail.objects().order_by(InboundMail.id, ascending=False).first()


@pytest.mark.parametrize(
    "from_lines",
    [
        ["{victim})<eve@evil.example>"],  # read as the victim here, as evil.example by DMARC
        ["{victim} <eve@evil.example>"],
        ["<{victim}>, eve@evil.example"],  # two mailboxes
        ["{victim}", "eve@evil.example"],  # two From headers
    ],
)
async def test_a_from_header_that_reads_two_ways_never_speaks_for_a_customer(receiver, from_lines):
    _, victim = await make_company()
    raw = raw_mail([line.format(victim=victim) for line in from_lines])
    await deliver(receiver, raw)
    row = await latest_mail()
    assert row.outcome == InboundOutcome.inbox and row.reason == InboxReason.unreadable
    assert row.sender is None and row.ticket is None
    assert await outbox_to(victim) == []


@pytest.fixture
def vouching_server(settings):
    """The portal behind a mail server named mx.forhandler.example (INBOUND_AUTHSERV_ID)."""
    outbox.configure(dataclasses.replace(settings, inbound_authserv_id="mx.forhandler.example"))
    yield "mx.forhandler.example"
    outbox.configure(settings)


@pytest.mark.parametrize(
    ("results", "opens_a_ticket"),
    [
        ("mx.forhandler.example; spf=pass; dkim=pass; dmarc=pass header.from=kunde.example", True),
        ("mx.forhandler.example; dmarc=fail header.from=kunde.example", False),
        ("mx.evil.example; dmarc=pass", False),  # another server's word counts for nothing
        ("", False),
    ],
)
async def test_behind_a_named_mail_server_only_a_dmarc_pass_speaks_for_a_customer(
    receiver, vouching_server, results, opens_a_ticket
):
    _, email = await make_company()
    extra = f"Authentication-Results: {results}\r\n" if results else ""
    await deliver(receiver, raw_mail([email], extra), envelope_from=email)
    [row] = await InboundMail.objects().where(InboundMail.from_address == email)
    if opens_a_ticket:
        assert row.outcome == InboundOutcome.ticket and row.ticket is not None
    else:
        assert row.outcome == InboundOutcome.inbox and row.reason == InboxReason.unverified
        assert row.ticket is None and await outbox_to(email) == []


async def test_a_member_answers_by_mail_only_the_tickets_they_opened(receiver):
    company_id, superuser_email = await make_company()
    member = await make_member(company_id)
    theirs, _ = await first_ticket(receiver, member.email)
    superusers, _ = await first_ticket(receiver, superuser_email)
    await Ticket.update({Ticket.status: "resolved"}).where(Ticket.id == superusers.id)

    for ticket in (theirs, superusers):
        number = tickets.ticket_number(ticket.id)
        await send(receiver, mail(member.email, f"SV: [{number}] Hei", "Et svar fra medlemmet."))

    assert await TicketMessage.count().where(TicketMessage.ticket == theirs.id) == 1
    assert await TicketMessage.count().where(TicketMessage.ticket == superusers.id) == 0
    assert (await Ticket.objects().get(Ticket.id == superusers.id)).status == "resolved"
    [refused] = await InboundMail.objects().where(
        (InboundMail.from_address == member.email) & (InboundMail.ticket == superusers.id)
    )
    assert refused.outcome == InboundOutcome.inbox and refused.reason == InboxReason.not_allowed


async def test_a_mail_of_thousands_of_parts_is_refused_unread(receiver):
    _, email = await make_company()
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\n{n}\r\n" for n in range(5000))
    raw = raw_mail(
        [email], 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n', parts
    )
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await deliver(receiver, raw, envelope_from=email)
    assert refused.value.code == 550
    assert not await InboundMail.exists().where(InboundMail.from_address == email)


async def test_parts_nested_as_deep_as_the_count_allows_are_never_left_to_retry(receiver):
    _, email = await make_company()
    depth = 2 * inbound_mail.MAX_PARTS
    head = 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b0"\r\n'
    body = "".join(
        f'--b{n}\r\nContent-Type: multipart/mixed; boundary="b{n + 1}"\r\n\r\n'
        for n in range(depth)
    )
    try:
        answer = await deliver(receiver, raw_mail([email], head, body), envelope_from=email)
    except aiosmtplib.SMTPDataError as refused:
        assert refused.code == 550  # refused for good, not 451: a mail server would retry
    else:
        assert answer.startswith("2")


async def test_a_file_name_with_a_nul_is_shown_without_it(receiver, client):
    _, email = await make_company()
    files = "".join(
        f"--b\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Disposition: attachment; filename*=utf-8''f%00{n}.log\r\n\r\nx\r\n"
        for n in range(attachments.MAX_FILES + 1)
    )
    raw = raw_mail(
        [email],
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n',
        f"--b\r\nContent-Type: text/plain\r\n\r\nLogger vedlagt.\r\n{files}--b--\r\n",
    )
    await deliver(receiver, raw, envelope_from=email)
    row = await latest_mail()
    assert row.outcome == InboundOutcome.ticket  # not a 451 the mail server retries for days
    ticket = await Ticket.objects().get(Ticket.id == row.ticket)
    assert "\x00" not in ticket.description and "f10.log" in ticket.description  # left out
    shown = await downloads_seen_by(client, email, ticket.id)
    assert len(shown) == attachments.MAX_FILES and all("\x00" not in name for name in shown)


def test_a_line_far_too_long_to_introduce_a_quote_is_not_searched():
    assert not inbound_mail._introduces_quote("1. des. skrev " * 100_000 + ":")
    assert inbound_mail._introduces_quote("Den 1. des. 2026 kl. 10:00 skrev Support <s@x.no>:")


@pytest.mark.parametrize(
    "from_line",
    [
        "Ola N. Nordmann <ola@kunde.example>",
        '"Nordmann, Ola" <ola@kunde.example>',
        "ola@kunde.example",
    ],
)
def test_an_ordinary_from_header_is_read(from_line):
    assert inbound_mail.parse(raw_mail([from_line])).from_address == "ola@kunde.example"
