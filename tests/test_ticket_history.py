"""The customer's ticket history, /portal/tickets (issue 10): search by number, subject and the
text the customer can see, filters, the latest activity first, keyset pages ("Vis flere"),
and each ticket's billed time and cost — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import importlib
import re

import pytest

from backend.services import activity, agreements, catalog, clock, coverage, ledger, tickets
from backend.services.money import format_nok
from backend.services.users import create_staff
from backend.tables import (
    ChargeStatus,
    HourlyCharge,
    Product,
    Ticket,
    TicketStatus,
    TimeEntry,
    User,
)
from tests.support import PASSWORD, login, make_company, new_email

TICKET_LINK = re.compile(r'<td><a href="/portal/tickets/(\d+)">')
NEXT_LINK = re.compile(r'<a href="(/portal/tickets\?[^"]*after=[^"]+)"')
HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
async def demo_catalog():
    await catalog.seed_demo_catalog()


async def signed_in_superuser(client) -> User:
    _, email = await make_company()
    assert (await login(client, email)).status_code == 303
    return await User.objects().get(User.email == email)


async def technician() -> User:
    return await create_staff(
        email=new_email("tekniker"), name="Tina Tekniker", role="technician", password=PASSWORD
    )


async def open_ticket(user: User, subject: str = "Skisse låser seg", product: str = "inventor"):
    return await tickets.open_ticket(
        user, {"product": product, "subject": subject, "description": "Den henger ved lagring."}
    )


def listed(html: str) -> list[int]:
    return [int(i) for i in TICKET_LINK.findall(html)]


def next_url(html: str) -> str | None:
    match = NEXT_LINK.search(html)
    return match.group(1).replace("&amp;", "&") if match else None


async def every_page(client, url: str = "/portal/tickets") -> list[list[int]]:
    """The ids of each page, following "Vis flere" as a plain link to the end."""
    pages = []
    while url:
        html = (await client.get(url)).text
        pages.append(listed(html))
        url = next_url(html)
    return pages


@pytest.fixture
async def history(client) -> list[Ticket]:
    """25 tickets of the signed-in company, opened in order: every fifth on Vault, odd ones
    about a drawing."""
    superuser = await signed_in_superuser(client)
    return [
        await open_ticket(
            superuser,
            subject=f"Problem {i:02d} med {'tegning' if i % 2 else 'modell'}",
            product="vault" if i % 5 == 0 else "inventor",
        )
        for i in range(1, 26)
    ]


# Order and pages


async def test_the_newest_activity_comes_first_and_vis_flere_is_the_next_page(client, history):
    newest_first = [t.id for t in reversed(history)]
    first = (await client.get("/portal/tickets")).text
    assert listed(first) == newest_first[:20]
    assert "25 saker" in first and "Vis flere" in first
    assert "Side 1" not in first and "page=" not in first

    second = (await client.get(next_url(first))).text
    assert listed(second) == newest_first[20:]
    assert "Vis flere" not in second
    # Without JavaScript a following page is a whole page, with the way back to the start.
    assert (
        'id="ticket-filter"' in second and 'href="/portal/tickets">Til de nyeste sakene' in second
    )


async def test_what_the_customer_sees_happen_moves_a_ticket_up_an_internal_note_does_not(
    client, history
):
    staff = await technician()
    oldest, second, third, fourth, fifth = history[:5]

    async def top() -> int:
        return listed((await client.get("/portal/tickets")).text)[0]

    await tickets.add_message(staff, oldest, "Intern: sjekk lisensen", internal=True)
    assert await top() == history[-1].id
    await tickets.add_message(staff, oldest, "Vi ser på saken.")
    assert await top() == oldest.id
    await tickets.set_status(staff, second, TicketStatus.in_progress.value)
    assert await top() == second.id
    # Setting the status it has already is nothing new.
    await tickets.set_status(staff, oldest, TicketStatus.open.value)
    assert await top() == second.id
    entry = await coverage.record_time_entry(
        ticket=third,
        technician=staff,
        actual=20,
        performed_on=clock.today(),
        channel="phone",
        note="",
        key=f"history-order:{third.id}",
    )
    assert await top() == third.id
    superuser = await User.objects().get(User.id == fourth.opened_by)
    await tickets.add_message(superuser, fourth, "Det skjer fortsatt.")
    assert await top() == fourth.id
    await coverage.void_time_entry(entry.id, staff, "Feil sak")
    assert await top() == third.id
    await tickets.resolve_by_customer(superuser, fifth)
    listing = (await client.get("/portal/tickets")).text
    expected = [fifth.id, third.id, fourth.id, second.id, oldest.id, history[-1].id]
    assert listed(listing)[:6] == expected


async def test_pages_neither_repeat_nor_skip_a_ticket_when_tickets_get_activity_between_them(
    client,
):
    """The promise: no ticket is seen twice, and none that existed unchanged is skipped. A
    ticket with activity meanwhile moves to the top (above the pages being read), so it may
    not show again in the pages that follow; it is first the next time the list opens."""
    superuser = await signed_in_superuser(client)
    staff = await technician()
    made = [await open_ticket(superuser, subject=f"Sak {n}") for n in range(50)]

    first = (await client.get("/portal/tickets")).text
    seen = listed(first)
    assert len(seen) == 20
    # Between the pages: activity on a ticket already shown, on one not shown yet, and a
    # new ticket.
    shown, not_yet = made[-3], made[5]
    assert shown.id in seen and not_yet.id not in seen
    await tickets.add_message(staff, shown, "Svar fra support.")
    await tickets.set_status(staff, not_yet, TicketStatus.in_progress.value)
    new = await open_ticket(superuser, subject="Ny sak")

    rest = await every_page(client, next_url(first))
    later = [ticket_id for page in rest for ticket_id in page]
    everything = seen + later
    assert len(everything) == len(set(everything)), "a ticket was shown twice"
    unchanged = {t.id for t in made} - {shown.id, not_yet.id}
    assert unchanged <= set(everything), "an unchanged ticket was skipped"
    assert new.id not in later and shown.id not in later
    # Opened again from the start, the changed ones are on top.
    assert listed((await client.get("/portal/tickets")).text)[:3] == [
        new.id,
        not_yet.id,
        shown.id,
    ]


async def test_tickets_with_the_same_last_activity_are_paged_by_number(client):
    """The cursor is (last activity, id): tickets with the very same moment of activity are
    neither repeated nor skipped across a page's edge."""
    superuser = await signed_in_superuser(client)
    made = [await open_ticket(superuser, subject=f"Samtidig {n}") for n in range(30)]
    moment = clock.now() - datetime.timedelta(hours=1)
    await Ticket.update({Ticket.last_activity_at: moment}).where(
        Ticket.id.is_in([t.id for t in made])
    )
    pages = await every_page(client)
    assert [len(page) for page in pages] == [20, 10]
    assert [i for page in pages for i in page] == sorted((t.id for t in made), reverse=True)


# Search and filters


async def test_search_by_number_subject_and_the_text_the_customer_can_see(client, history):
    wanted = history[6]
    number = tickets.ticket_number(wanted.id)
    for q in (number, number.lower(), f" {number} ", str(wanted.id), f"SUP{wanted.id}"):
        assert listed((await client.get("/portal/tickets", params={"q": q})).text) == [wanted.id]

    drawings = (await client.get("/portal/tickets", params={"q": "TEGNING"})).text
    assert len(listed(drawings)) == 13 and "13 saker" in drawings

    staff = await technician()
    superuser = await User.objects().get(User.id == wanted.opened_by)
    await tickets.add_message(staff, history[2], "Prøv å slå av maskinvareakselerasjon.")
    await tickets.add_message(superuser, history[3], "Feilkoden er E-4711 hver gang.")
    by_reply = await client.get("/portal/tickets", params={"q": "maskinvareakselerasjon"})
    assert listed(by_reply.text) == [history[2].id]
    assert listed((await client.get("/portal/tickets?q=e-4711")).text) == [history[3].id]
    # The description is the customer's own first message.
    assert len(listed((await client.get("/portal/tickets?q=henger ved lagring")).text)) == 20

    none = (await client.get("/portal/tickets", params={"q": "finnes ikke"})).text
    assert listed(none) == [] and "Ingen saker passer til søket." in none


async def test_internal_notes_are_never_searched(client, history):
    staff = await technician()
    await tickets.add_message(
        staff, history[0], "Kunden skylder oss penger, prioriter ned", internal=True
    )
    for q in ("skylder oss penger", "prioriter ned"):
        found = (await client.get("/portal/tickets", params={"q": q})).text
        assert listed(found) == [] and "Ingen saker passer til søket." in found
    # The queue's search is unchanged: number and subject only.
    queue = await tickets.queue(q="skylder oss penger")
    assert queue.tickets == []


async def test_another_companys_tickets_are_not_found_by_any_search(client, other_client):
    theirs = await signed_in_superuser(other_client)
    secret = await open_ticket(theirs, subject="Hemmelig prosjekt")
    await tickets.add_message(theirs, secret, "Tegningene til prototypen")
    await signed_in_superuser(client)
    for q in (tickets.ticket_number(secret.id), "Hemmelig", "prototypen"):
        assert listed((await client.get("/portal/tickets", params={"q": q})).text) == []


async def test_a_search_found_in_replies_pages_and_counts_with_the_filters(client, other_client):
    """Text found in the replies, with a product, a status and "Vis flere": the page and its
    count find the same tickets, and replies on another company's tickets find none."""
    theirs = await signed_in_superuser(other_client)
    await tickets.add_message(theirs, await open_ticket(theirs), "Flensbolten har løsnet.")
    superuser = await signed_in_superuser(client)
    found = []
    for n in range(50):
        ticket = await open_ticket(
            superuser, subject=f"Sak {n}", product=("vault", "inventor")[n % 2]
        )
        if n % 13:  # a few without the word
            await tickets.add_message(superuser, ticket, f"Flensbolten nummer {n} har løsnet.")
            found += [ticket] if ticket.product_code == "inventor" else []
    chosen = {"q": "flensbolten", "product": "inventor", "status": "open"}
    first = (await client.get("/portal/tickets", params=chosen)).text
    assert f"{len(found)} saker" in first and len(found) > tickets.HISTORY_PAGE_SIZE
    pages = await every_page(
        client, "/portal/tickets?" + "&".join(f"{k}={v}" for k, v in chosen.items())
    )
    assert [i for page in pages for i in page] == [t.id for t in reversed(found)]


async def test_filters_by_status_and_product_and_keeps_them_in_vis_flere(client, history):
    staff = await technician()
    for ticket in history[:3]:
        await tickets.set_status(staff, ticket, TicketStatus.resolved.value)
    resolved = (await client.get("/portal/tickets?status=resolved")).text
    assert listed(resolved) == [t.id for t in reversed(history[:3])]
    assert '<option value="resolved" selected>' in resolved

    vault = (await client.get("/portal/tickets?product=vault")).text
    assert listed(vault) == [t.id for t in reversed(history) if t.product_code == "vault"]
    assert "<td>Autodesk Vault</td>" in vault

    both = await client.get("/portal/tickets", params={"product": "inventor", "q": "modell"})
    assert len(listed(both.text)) == 10

    still_open = (await client.get("/portal/tickets?status=open")).text
    assert "22 saker" in still_open
    link = next_url(still_open)
    assert link is not None and link.startswith("/portal/tickets?status=open&after=")
    pages = await every_page(client, "/portal/tickets?status=open")
    assert sorted(i for page in pages for i in page) == sorted(t.id for t in history[3:])

    unknown = (await client.get("/portal/tickets?status=lost&product=photoshop")).text
    assert listed(unknown) == []


async def test_the_list_names_each_tickets_product_even_once_it_is_retired(client, history):
    vault_row = "<td>Autodesk Vault</td>"
    assert vault_row in (await client.get("/portal/tickets?product=vault")).text
    await Product.update({Product.active: False}).where(Product.code == "vault")
    try:
        html = (await client.get("/portal/tickets")).text
        assert vault_row in html  # the rows still name it,
        assert '<option value="vault"' not in html  # though it is no longer on sale
    finally:
        await Product.update({Product.active: True}).where(Product.code == "vault")


# htmx and without JavaScript


async def test_the_filter_form_swaps_only_the_rows_region(client, history):
    page = (await client.get("/portal/tickets")).text
    assert 'method="get" action="/portal/tickets"' in page
    assert 'hx-get="/portal/tickets" hx-target="#ticket-rows"' in page
    assert 'hx-push-url="true"' in page

    rows = await client.get(
        "/portal/tickets?product=vault", headers={**HX, "HX-Target": "ticket-rows"}
    )
    assert rows.status_code == 200
    assert rows.text.lstrip().startswith('<div id="ticket-rows">')
    assert 'id="ticket-filter"' not in rows.text and "<title>" not in rows.text
    assert len(listed(rows.text)) == 5

    boosted = await client.get(
        "/portal/tickets", headers={**HX, "HX-Boosted": "true", "HX-Target": "main"}
    )
    assert "<html" not in boosted.text and 'id="ticket-filter"' in boosted.text


async def test_vis_flere_appends_the_next_rows_and_replaces_itself(client, history):
    first = (await client.get("/portal/tickets?q=problem")).text
    link = next_url(first)
    assert f'hx-get="{link.replace("&", "&amp;")}" hx-target="#ticket-list"' in first
    assert 'hx-swap="beforeend"' in first and '<tbody id="ticket-list">' in first

    appended = await client.get(link, headers={**HX, "HX-Target": "ticket-list"})
    assert appended.status_code == 200
    assert "<table" not in appended.text and "<html" not in appended.text
    assert appended.text.lstrip().startswith("<tr>")
    assert listed(appended.text) == [t.id for t in reversed(history)][20:]
    assert '<div id="ticket-next" hx-swap-oob="true">' in appended.text
    assert "Vis flere" not in appended.text


@pytest.mark.parametrize(
    "after",
    [
        "x",
        "%%%",
        "MTIz",  # "123"
        "LTEuMg",  # "-1.2"
        "OTk5OTk5OTk5OTk5OTk5OTk5OTkuMQ",  # a moment no calendar holds
        "MTcwMDAwMDAwMDAwMDAwMC45OTk5OTk5OTk5OTk",  # an id beyond any
        "²",
    ],
)
async def test_a_cursor_that_is_not_ours_gives_the_newest_and_says_so(client, history, after):
    page = await client.get("/portal/tickets", params={"after": after})
    assert page.status_code == 200
    assert listed(page.text) == [t.id for t in reversed(history)][:20]
    assert "Lenken pekte ikke på et sted i listen." in page.text
    appended = await client.get(
        "/portal/tickets", params={"after": after}, headers={**HX, "HX-Target": "ticket-list"}
    )
    assert appended.status_code == 200
    assert listed(appended.text) == []  # nothing appended twice
    assert "Lenken pekte ikke på et sted i listen." in appended.text


async def test_another_companys_cursor_shows_only_ones_own_tickets(client, other_client):
    theirs = await signed_in_superuser(other_client)
    for n in range(25):
        await open_ticket(theirs, subject=f"Deres sak {n}")
    their_next = next_url((await other_client.get("/portal/tickets")).text)
    mine = await open_ticket(await signed_in_superuser(client), subject="Min sak")
    # Their cursor is a place in the order, not a key to their tickets.
    html = (await client.get(their_next)).text
    assert "Deres sak" not in html and listed(html) in ([], [mine.id])


# Time and cost


async def test_each_row_shows_its_billed_time_how_it_was_paid_and_what_it_cost(client):
    superuser = await signed_in_superuser(client)
    company_id = superuser.company
    await agreements.create_plan(
        company_id=company_id,
        product_codes=["vault"],
        starts_on=clock.today() - datetime.timedelta(days=1),
        ends_on=clock.today() + datetime.timedelta(days=100),
    )
    await ledger.credit_lot(
        company_id=company_id,
        minutes=45,
        expires_on=clock.today() + datetime.timedelta(days=300),
        product_codes=("inventor",),
        key=f"history-lot:{company_id}",
        cause=ledger.Cause(type="admin"),
    )
    staff = await technician()
    on_plan = await open_ticket(superuser, "På planen", product="vault")
    on_account = await open_ticket(superuser, "Fra kontoen", product="inventor")
    hourly = await open_ticket(superuser, "Etter timesats", product="fusion")
    untouched = await open_ticket(superuser, "Uten tid", product="fusion")

    async def log(ticket, minutes, key):
        return await coverage.record_time_entry(
            ticket=ticket,
            technician=staff,
            actual=minutes,
            performed_on=clock.today(),
            channel="phone",
            note="",
            key=f"history-{key}:{company_id}",
        )

    await log(on_plan, 50, "plan")  # 60 min, the plan
    await log(on_account, 20, "account")  # 30 min from the account
    await log(on_account, 40, "split")  # 45 min: 15 from the account, 30 by the hour
    await log(hourly, 10, "hourly")  # 15 min by the hour
    paid = await log(hourly, 50, "paid")  # 60 min by the hour, paid
    wrong = await log(hourly, 100, "wrong")  # voided: counts for nothing
    await coverage.void_time_entry(wrong.id, staff, "Ført på feil sak")
    await HourlyCharge.update({HourlyCharge.status: ChargeStatus.paid.value}).where(
        HourlyCharge.time_entry == paid.id
    )

    page = await tickets.history(company_id, tickets.HistoryFilter())
    rows = {row.id: row for row in page.rows}
    # Each figure is the sum of the ticket's time entries and charges, read here on its own.
    for ticket in (on_plan, on_account, hourly, untouched):
        entries = await TimeEntry.objects().where(
            (TimeEntry.ticket == ticket.id) & TimeEntry.voided_at.is_null()
        )
        charges = await HourlyCharge.objects().where(
            HourlyCharge.time_entry.is_in([e.id for e in entries] or [0])
        )
        row = rows[ticket.id]
        assert row.billed_minutes == sum(e.billed_minutes for e in entries)
        assert row.account_minutes == sum(e.account_minutes for e in entries)
        assert row.hourly_minutes == sum(e.hourly_minutes for e in entries)
        assert row.cost_ore == sum(c.amount_ore for c in charges)
        assert row.outstanding_ore == sum(
            c.amount_ore for c in charges if c.status == ChargeStatus.outstanding.value
        )
    assert rows[on_plan.id].paid_by == [("plan", 60)] and rows[on_plan.id].cost_ore == 0
    assert rows[on_account.id].paid_by == [("account", 45), ("hourly", 30)]
    assert rows[hourly.id].billed_minutes == 75 and rows[hourly.id].paid_by == [("hourly", 75)]
    assert rows[untouched.id].billed_minutes == 0 and rows[untouched.id].paid_by == []

    html = (await client.get("/portal/tickets")).text

    def cells(ticket: Ticket) -> list[str]:
        row = html[html.index(f'<a href="/portal/tickets/{ticket.id}">') :]
        row = row[: row.index("</tr>")]
        return [
            re.sub(r"[ \n]+", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]

    assert cells(on_plan)[5:] == ["1 t 0 min<br><small>Fri support</small>", format_nok(0)]
    account_row = rows[on_account.id]
    assert cells(on_account)[5:] == [
        "1 t 15 min<br><small>Tidskonto 45 min · Timepris 30 min</small>",
        f"{format_nok(account_row.cost_ore)}<br><small>"
        f"{format_nok(account_row.cost_ore)} ikke betalt</small>",
    ]
    hourly_row = rows[hourly.id]
    assert hourly_row.outstanding_ore < hourly_row.cost_ore
    assert cells(hourly)[5:] == [
        "1 t 15 min<br><small>Timepris</small>",
        f"{format_nok(hourly_row.cost_ore)}<br><small>"
        f"{format_nok(hourly_row.outstanding_ore)} ikke betalt</small>",
    ]
    assert cells(untouched)[5:] == ["–", "–"]


async def test_the_history_is_a_service_another_caller_can_page_through(client):
    """tickets.history(company, filter) → rows and the next cursor, as the JSON API reads it."""
    superuser = await signed_in_superuser(client)
    made = [await open_ticket(superuser, subject=f"API {n}") for n in range(23)]
    first = await tickets.history(superuser.company, tickets.HistoryFilter(q="api"))
    assert [r.id for r in first.rows] == [t.id for t in reversed(made)][:20]
    assert first.next_after and first.matches == 23 and not first.bad_cursor
    second = await tickets.history(
        superuser.company, tickets.HistoryFilter(q="api", after=first.next_after)
    )
    assert [r.id for r in second.rows] == [t.id for t in reversed(made)][20:]
    assert second.next_after == ""
    assert tickets.decode_cursor(first.next_after) == (
        first.rows[-1].last_activity_at,
        first.rows[-1].id,
    )


async def test_a_large_count_is_said_as_more_than(client, monkeypatch):
    superuser = await signed_in_superuser(client)
    for n in range(4):
        await open_ticket(superuser, subject=f"Mange {n}")
    monkeypatch.setattr(tickets, "COUNT_LIMIT", 3)
    monkeypatch.setattr(tickets, "HISTORY_PAGE_SIZE", 2)
    page = await tickets.history(superuser.company, tickets.HistoryFilter())
    assert page.more_than_counted and len(page.rows) == 2
    assert "Mer enn 3 saker" in (await client.get("/portal/tickets")).text


async def test_the_history_in_english(client, history):
    await client.get("/language/en")
    html = (await client.get("/portal/tickets")).text
    for text in ("Last activity", "Billed time", "Show more", "25 tickets"):
        assert text in html, text
    assert "Siste aktivitet" not in html and "Vis flere" not in html


# The migration


async def test_the_migration_backfills_last_activity_from_what_the_customer_saw(client):
    """For tickets from before the column: the latest of the opening, a message that is not
    an internal note, and a time entry logged or voided."""
    superuser = await signed_in_superuser(client)
    staff = await technician()
    quiet, talked, noted, timed = [await open_ticket(superuser, f"Gammel {n}") for n in range(4)]
    await tickets.add_message(staff, talked, "Synlig svar")
    await tickets.add_message(staff, noted, "Bare et internt notat", internal=True)
    entry = await coverage.record_time_entry(
        ticket=timed,
        technician=staff,
        actual=15,
        performed_on=clock.today(),
        channel="phone",
        note="",
        key=f"backfill:{timed.id}",
    )
    await coverage.void_time_entry(entry.id, staff, "Feil")
    ours = [quiet.id, talked.id, noted.id, timed.id]
    await Ticket.update(
        {Ticket.last_activity_at: datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC)}
    ).where(Ticket.id.is_in(ours))

    migration = importlib.import_module(
        "backend.piccolo_migrations.backend_2026_12_01t17_30_02_000000"
    )
    manager = await migration.forwards()
    backfill = manager.raw[0]
    await backfill()

    after = {
        row["id"]: row["last_activity_at"]
        for row in await Ticket.select(Ticket.id, Ticket.last_activity_at).where(
            Ticket.id.is_in(ours)
        )
    }
    voided = await TimeEntry.select(TimeEntry.voided_at).where(TimeEntry.id == entry.id).first()
    reply = (await tickets.thread(talked, include_internal=False))[-1]
    assert after[quiet.id] == quiet.created_at
    assert after[talked.id] == reply["created_at"]
    assert after[noted.id] == noted.created_at
    assert after[timed.id] == voided["voided_at"]


async def test_activity_never_moves_back(client):
    superuser = await signed_in_superuser(client)
    ticket = await open_ticket(superuser)
    before = (await Ticket.objects().get(Ticket.id == ticket.id)).last_activity_at
    await activity.record(ticket.id, before - datetime.timedelta(minutes=5))
    assert (await Ticket.objects().get(Ticket.id == ticket.id)).last_activity_at == before
