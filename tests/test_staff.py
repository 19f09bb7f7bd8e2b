"""The staff console (issue: staff console): the queue, a ticket with thread, notes, status and
time, voiding, tickets on a company's behalf and the company page — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import re
from datetime import timedelta

import pytest

from backend.services import catalog, clock, coverage, ledger, tickets
from backend.services.errors import ValidationFailed
from backend.services.money import format_nok
from backend.services.users import create_staff
from backend.tables import (
    HourlyCharge,
    LedgerEntry,
    Lot,
    PriceList,
    Ticket,
    TicketMessage,
    TimeEntry,
    User,
)
from tests.support import PASSWORD, login, make_company, new_email, post_form

HX = {"HX-Request": "true"}


async def sign_in_staff(client, role: str = "technician") -> User:
    email = new_email(role)
    user = await create_staff(email=email, name=f"Tekniker {role}", role=role, password=PASSWORD)
    response = await login(client, email)
    assert response.status_code == 303
    return user


async def new_ticket(
    company_id: int,
    subject: str = "Skisse låser seg",
    *,
    product: str = "inventor",
    status: str = "open",
    waiting_since: datetime.datetime | None = None,
    opened_days_ago: int = 30,
) -> Ticket:
    superuser = await User.objects().get(User.company == company_id)
    ticket = Ticket(
        company=company_id,
        product_code=product,
        subject=subject,
        description="Inventor henger når jeg åpner skissen.",
        channel="web",
        status=status,
        opened_by=superuser.id,
        # Opened a while ago, so time can be logged on earlier days.
        created_at=clock.now() - datetime.timedelta(days=opened_days_ago),
    )
    if waiting_since is not None:
        ticket.waiting_since = waiting_since
    await ticket.save()
    return ticket


def order_of(html: str, *subjects: str) -> list[str]:
    return sorted(subjects, key=html.index)


@pytest.fixture
async def staff_client(client):
    await catalog.seed_demo_catalog()
    client.staff_user = await sign_in_staff(client)
    return client


# The queue


async def test_queue_shows_the_longest_waiting_first(staff_client):
    company_id, _ = await make_company("Kø Verksted AS")
    now = clock.now()
    await new_ticket(company_id, "Midt i køen", waiting_since=now - datetime.timedelta(hours=2))
    await new_ticket(company_id, "Nyeste sak", waiting_since=now - datetime.timedelta(minutes=5))
    await new_ticket(company_id, "Eldste sak", waiting_since=now - datetime.timedelta(days=3))

    response = await staff_client.get(f"/staff?company={company_id}")

    assert response.status_code == 200
    html = response.text
    assert order_of(html, "Midt i køen", "Nyeste sak", "Eldste sak") == [
        "Eldste sak",
        "Midt i køen",
        "Nyeste sak",
    ]
    assert 'hx-get="/staff"' in html and 'hx-target="#queue-rows"' in html
    assert 'hx-push-url="true"' in html and 'id="queue-rows"' in html


async def test_without_a_status_filter_the_queue_shows_only_work_to_do(staff_client):
    company_id, _ = await make_company("Arbeidskø AS")
    now = clock.now()
    long_ago = now - datetime.timedelta(days=20)
    # Opened first, done long ago: the old queue put these on top.
    await new_ticket(company_id, "Lukket sak", status="closed", waiting_since=long_ago)
    await new_ticket(company_id, "Løst sak", status="resolved", waiting_since=long_ago)
    await new_ticket(company_id, "Venter på kunden-sak", status="waiting_for_customer")
    await new_ticket(
        company_id, "Under arbeid-sak", status="in_progress", waiting_since=now - timedelta(hours=5)
    )
    await new_ticket(company_id, "Åpen sak", waiting_since=now - datetime.timedelta(days=2))

    html = (await staff_client.get(f"/staff?company={company_id}")).text

    assert order_of(html, "Under arbeid-sak", "Åpen sak") == ["Åpen sak", "Under arbeid-sak"]
    for done in ("Lukket sak", "Løst sak", "Venter på kunden-sak"):
        assert done not in html
    assert "Antall saker: 2" in html

    resolved = (await staff_client.get(f"/staff?company={company_id}&status=resolved")).text
    assert "Løst sak" in resolved and "Åpen sak" not in resolved
    everything = (await staff_client.get(f"/staff?company={company_id}&status=all")).text
    assert "Antall saker: 5" in everything and "Lukket sak" in everything
    assert '<option value="all" selected>' in everything


async def test_the_queue_without_any_filter_leaves_out_what_waits_on_no_one(staff_client):
    company_id, _ = await make_company("Ufiltrert AS")
    # Its clock would have put it first of all: waiting "since" long before any other.
    years_ago = clock.now() - timedelta(days=3650)
    await new_ticket(company_id, "Ferdig for lenge siden", status="closed", waiting_since=years_ago)
    await new_ticket(company_id, "Venter lengst av alle", waiting_since=years_ago)

    html = (await staff_client.get("/staff")).text

    assert "Ferdig for lenge siden" not in html and "Venter lengst av alle" in html


async def test_a_staff_reply_stops_the_clock_and_a_customer_reply_starts_it(
    staff_client, other_client
):
    company_id, email = await make_company("Klokke AS")
    now = clock.now()
    answered = await new_ticket(company_id, "Besvart sak", waiting_since=now - timedelta(days=3))
    await new_ticket(company_id, "Ubesvart sak", waiting_since=now - timedelta(hours=1))
    url = f"/staff/tickets/{answered.id}/messages"

    # An internal note is no answer: the customer still waits.
    await post_form(staff_client, url, {"body": "Sjekker loggene.", "internal": "1"})
    assert (await Ticket.objects().get(Ticket.id == answered.id)).waiting_since is not None

    await post_form(staff_client, url, {"body": "Prøv versjon 2027.1."})

    stopped = await Ticket.objects().get(Ticket.id == answered.id)
    assert stopped.waiting_since is None and stopped.status == "open"
    queue = (await staff_client.get(f"/staff?company={company_id}")).text
    assert order_of(queue, "Besvart sak", "Ubesvart sak") == ["Ubesvart sak", "Besvart sak"]
    assert "Venter ikke på support" in queue

    await login(other_client, email)
    before = clock.now()
    reply = await post_form(
        other_client, f"/portal/tickets/{answered.id}/messages", {"body": "Hjalp ikke."}
    )
    assert reply.status_code == 303
    restarted = await Ticket.objects().get(Ticket.id == answered.id)
    assert restarted.waiting_since >= before - timedelta(seconds=1)
    queue = (await staff_client.get(f"/staff?company={company_id}")).text
    assert order_of(queue, "Besvart sak", "Ubesvart sak") == ["Ubesvart sak", "Besvart sak"]


async def test_waiting_for_the_customer_stops_the_clock_and_back_to_support_starts_it(
    staff_client,
):
    company_id, _ = await make_company("Status AS")
    ticket = await new_ticket(
        company_id, "Statussak", waiting_since=clock.now() - timedelta(days=1)
    )
    url = f"/staff/tickets/{ticket.id}/status"

    await post_form(staff_client, url, {"status": "waiting_for_customer"})
    assert (await Ticket.objects().get(Ticket.id == ticket.id)).waiting_since is None
    assert "Statussak" not in (await staff_client.get(f"/staff?company={company_id}")).text

    before = clock.now()
    await post_form(staff_client, url, {"status": "in_progress"})
    back = await Ticket.objects().get(Ticket.id == ticket.id)
    assert back.waiting_since is not None and back.waiting_since >= before - timedelta(seconds=1)
    assert "Statussak" in (await staff_client.get(f"/staff?company={company_id}")).text

    # Within "waiting on support" the clock keeps its start.
    await post_form(staff_client, url, {"status": "open"})
    assert (await Ticket.objects().get(Ticket.id == ticket.id)).waiting_since == back.waiting_since


async def test_queue_filters_by_status_company_and_product(staff_client):
    first, _ = await make_company("Filter En AS")
    second, _ = await make_company("Filter To AS")
    await new_ticket(first, "Åpen Inventor-sak")
    await new_ticket(first, "Løst Inventor-sak", status="resolved")
    await new_ticket(first, "Åpen Vault-sak", product="vault")
    await new_ticket(second, "Annet firmas sak")

    by_status = (await staff_client.get(f"/staff?company={first}&status=resolved")).text
    assert "Løst Inventor-sak" in by_status
    assert "Åpen Inventor-sak" not in by_status and "Åpen Vault-sak" not in by_status

    by_company = (await staff_client.get(f"/staff?company={second}")).text
    assert "Annet firmas sak" in by_company and "Åpen Inventor-sak" not in by_company

    by_product = (await staff_client.get(f"/staff?company={first}&product=vault")).text
    assert "Åpen Vault-sak" in by_product and "Åpen Inventor-sak" not in by_product


async def test_queue_searches_by_ticket_number_and_subject(staff_client):
    company_id, _ = await make_company("Søk AS")
    wanted = await new_ticket(company_id, "Lisensserver svarer ikke")
    await new_ticket(company_id, "Tegningsmal mangler")

    for q in (tickets.ticket_number(wanted.id), str(wanted.id), "lisensserver"):
        html = (await staff_client.get("/staff", params={"q": q, "company": company_id})).text
        assert "Lisensserver svarer ikke" in html, q
        assert "Tegningsmal mangler" not in html, q


async def test_search_ignores_case_beyond_ascii_and_takes_wildcards_literally(staff_client):
    """The same answers on SQLite and PostgreSQL: "østre" finds "Østre", "%" is a character."""
    company_id, _ = await make_company("Søk Unicode AS")
    await new_ticket(company_id, "Østre lager får ikke lisens")
    await new_ticket(company_id, "Rabatt 50% vises feil")
    await new_ticket(company_id, "Tegningsmal mangler")

    def found(html: str) -> set[str]:
        subjects = ("Østre lager får ikke lisens", "Rabatt 50% vises feil", "Tegningsmal mangler")
        return {subject for subject in subjects if subject in html}

    async def search(q: str) -> set[str]:
        params = {"q": q, "company": company_id, "status": "all"}
        return found((await staff_client.get("/staff", params=params)).text)

    assert await search("østre") == {"Østre lager får ikke lisens"}
    assert await search("ØSTRE LAGER") == {"Østre lager får ikke lisens"}
    assert await search("50%") == {"Rabatt 50% vises feil"}
    assert await search("%") == {"Rabatt 50% vises feil"}
    assert await search("_") == set()


async def test_the_filter_form_swaps_only_the_rows_region(staff_client):
    company_id, _ = await make_company("Fragment AS")
    await new_ticket(company_id, "Radsak")

    response = await staff_client.get(
        f"/staff?company={company_id}", headers={**HX, "HX-Target": "queue-rows"}
    )

    assert response.status_code == 200
    assert "Radsak" in response.text
    assert "<form" not in response.text and "<title>" not in response.text
    # htmx 4 names the target as tag#id
    response = await staff_client.get(
        f"/staff?company={company_id}", headers={**HX, "HX-Target": "div#queue-rows"}
    )
    assert "Radsak" in response.text and 'id="queue-filter"' not in response.text


async def test_the_company_list_moved_to_its_own_page(staff_client):
    company_id, email = await make_company("Listefirma AS")
    html = (await staff_client.get("/staff/companies")).text
    assert "Listefirma AS" in html and email in html
    assert f'href="/staff/companies/{company_id}"' in html


# A ticket


async def test_ticket_view_shows_the_thread_with_internal_notes(staff_client):
    company_id, _ = await make_company()
    ticket = await new_ticket(company_id, "Tråd med notat")
    await TicketMessage(
        ticket=ticket.id, author=staff_client.staff_user.id, body="Bare for oss", internal=True
    ).save()

    response = await staff_client.get(f"/staff/tickets/{ticket.id}")

    assert response.status_code == 200
    assert tickets.ticket_number(ticket.id) in response.text
    assert "Bare for oss" in response.text and "Internt notat" in response.text
    assert 'name="idempotency_key"' in response.text


async def test_reply_internal_note_and_status_change(staff_client):
    company_id, _ = await make_company()
    ticket = await new_ticket(company_id)

    reply = await post_form(
        staff_client, f"/staff/tickets/{ticket.id}/messages", {"body": "Prøv å slå av cache."}
    )
    note = await post_form(
        staff_client,
        f"/staff/tickets/{ticket.id}/messages",
        {"body": "Kunden har gammel versjon.", "internal": "1"},
    )
    status = await post_form(
        staff_client, f"/staff/tickets/{ticket.id}/status", {"status": "waiting_for_customer"}
    )

    for response in (reply, note, status):
        assert response.status_code == 303
        assert response.headers["location"] == f"/staff/tickets/{ticket.id}"
    messages = await TicketMessage.objects().where(TicketMessage.ticket == ticket.id)
    assert [(m.body, m.internal) for m in messages] == [
        ("Prøv å slå av cache.", False),
        ("Kunden har gammel versjon.", True),
    ]
    assert (await Ticket.objects().get(Ticket.id == ticket.id)).status == "waiting_for_customer"


async def test_an_empty_reply_and_an_unknown_status_are_shown_at_their_fields(staff_client):
    company_id, _ = await make_company()
    ticket = await new_ticket(company_id)

    empty = await post_form(
        staff_client, f"/staff/tickets/{ticket.id}/messages", {"body": "  "}, headers=HX
    )
    assert empty.status_code == 422
    assert 'id="message-form"' in empty.text and "Feltet må fylles ut." in empty.text
    assert "<title>" not in empty.text  # the form's region only

    unknown = await post_form(staff_client, f"/staff/tickets/{ticket.id}/status", {"status": "x"})
    assert unknown.status_code == 422
    assert "Ukjent status." in unknown.text and "<html" in unknown.text  # whole page, no JS
    assert (await Ticket.objects().get(Ticket.id == ticket.id)).status == "open"


# Logging time


def time_form(**overrides: str) -> dict[str, str]:
    form = {
        "minutes": "20",
        "performed_on": clock.today().isoformat(),
        "channel": "phone",
        "note": "Gikk gjennom innstillingene",
    }
    form.update(overrides)
    return form


async def entries_of(ticket: Ticket) -> list[TimeEntry]:
    return await TimeEntry.objects().where(TimeEntry.ticket == ticket.id).order_by(TimeEntry.id)


async def credit(company_id: int, minutes: int, expires_on: datetime.date) -> Lot:
    return await ledger.credit_lot(
        company_id=company_id,
        minutes=minutes,
        expires_on=expires_on,
        product_codes=["inventor"],
        key=f"test-lot:{company_id}:{minutes}:{expires_on}",
        cause=ledger.Cause(type="admin"),
    )


async def test_logging_time_without_agreement_bills_hourly(staff_client):
    company_id, _ = await make_company()
    ticket = await new_ticket(company_id)

    response = await post_form(staff_client, f"/staff/tickets/{ticket.id}/time", time_form())

    assert response.status_code == 303
    [entry] = await entries_of(ticket)
    assert (entry.actual_minutes, entry.billed_minutes, entry.coverage) == (20, 30, "hourly")
    assert (entry.channel, entry.note) == ("phone", "Gikk gjennom innstillingene")
    rate = (await PriceList.objects().first()).hourly_rate_ore
    assert entry.hourly_amount_ore == coverage.hourly_amount_ore(30, rate)
    html = (await staff_client.get(f"/staff/tickets/{ticket.id}")).text
    assert "30 min fakturert etter timesats" in html and format_nok(entry.hourly_amount_ore) in html


async def test_logging_time_debits_the_time_account_and_the_balance_drops(staff_client):
    company_id, _ = await make_company()
    ticket = await new_ticket(company_id)
    await credit(company_id, 120, clock.today() + datetime.timedelta(days=200))
    assert await ledger.balance(company_id, clock.today()) == 120

    response = await post_form(
        staff_client, f"/staff/tickets/{ticket.id}/time", time_form(minutes="44"), headers=HX
    )

    assert response.status_code == 200 and response.headers["hx-redirect"] == (
        f"/staff/tickets/{ticket.id}"
    )
    [entry] = await entries_of(ticket)
    assert (entry.billed_minutes, entry.coverage, entry.account_minutes) == (45, "account", 45)
    assert await ledger.balance(company_id, clock.today()) == 75
    assert (
        "45 min trukket fra tidskontoen"
        in (await staff_client.get(f"/staff/tickets/{ticket.id}")).text
    )


@pytest.mark.parametrize("minutes", ["0", "-1", "601", "abc"])
async def test_minutes_outside_1_to_600_are_refused_at_the_field(staff_client, minutes):
    company_id, _ = await make_company()
    ticket = await new_ticket(company_id)

    response = await post_form(
        staff_client,
        f"/staff/tickets/{ticket.id}/time",
        time_form(minutes=minutes, note="Beholdes"),
        headers=HX,
    )

    assert response.status_code == 422
    assert 'id="time-form"' in response.text
    assert "Skriv inn hele minutter fra 1 til 600." in response.text
    assert f'value="{minutes}"' in response.text and 'value="Beholdes"' in response.text
    assert await entries_of(ticket) == []


async def test_a_future_date_is_refused(staff_client):
    company_id, _ = await make_company()
    ticket = await new_ticket(company_id)
    tomorrow = clock.today() + datetime.timedelta(days=1)

    response = await post_form(
        staff_client,
        f"/staff/tickets/{ticket.id}/time",
        time_form(performed_on=tomorrow.strftime("%d.%m.%Y")),
    )

    assert response.status_code == 422
    assert "Datoen kan ikke være frem i tid." in response.text
    assert await entries_of(ticket) == []


async def test_a_date_before_the_ticket_was_opened_is_refused(staff_client):
    company_id, _ = await make_company()
    ticket = await new_ticket(company_id, opened_days_ago=3)
    opened_on = clock.oslo_date(ticket.created_at)

    response = await post_form(
        staff_client,
        f"/staff/tickets/{ticket.id}/time",
        time_form(performed_on=(opened_on - timedelta(days=1)).isoformat(), note="Beholdes"),
        headers=HX,
    )

    assert response.status_code == 422
    assert "Datoen kan ikke være før saken ble opprettet." in response.text
    assert 'value="Beholdes"' in response.text
    assert f'min="{opened_on.isoformat()}"' in response.text
    assert await entries_of(ticket) == []
    on_the_day = await post_form(
        staff_client,
        f"/staff/tickets/{ticket.id}/time",
        time_form(performed_on=opened_on.isoformat()),
    )
    assert on_the_day.status_code == 303
    assert [e.performed_on for e in await entries_of(ticket)] == [opened_on]


async def test_the_date_rule_holds_in_the_service_too(staff_client):
    company_id, _ = await make_company()
    ticket = await new_ticket(company_id, opened_days_ago=0)

    with pytest.raises(ValidationFailed) as refused:
        await coverage.record_time_entry(
            ticket=ticket,
            technician=staff_client.staff_user,
            actual=15,
            performed_on=clock.today() - timedelta(days=400),
            channel="phone",
            note="",
            key=None,
        )

    assert "performed_on" in refused.value.errors
    assert await entries_of(ticket) == []


async def test_dates_in_either_form_and_today_by_default(staff_client):
    company_id, _ = await make_company()
    ticket = await new_ticket(company_id)
    yesterday = clock.today() - datetime.timedelta(days=1)

    bad = await post_form(
        staff_client, f"/staff/tickets/{ticket.id}/time", time_form(performed_on="31.02.2025")
    )
    assert bad.status_code == 422 and "Skriv inn en gyldig dato" in bad.text

    for performed_on in (yesterday.strftime("%d.%m.%Y"), ""):
        response = await post_form(
            staff_client, f"/staff/tickets/{ticket.id}/time", time_form(performed_on=performed_on)
        )
        assert response.status_code == 303
    assert [e.performed_on for e in await entries_of(ticket)] == [yesterday, clock.today()]


async def test_the_same_form_sent_twice_makes_one_entry(staff_client):
    company_id, _ = await make_company()
    ticket = await new_ticket(company_id)
    html = (await staff_client.get(f"/staff/tickets/{ticket.id}")).text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    form = time_form(idempotency_key=key)

    first = await post_form(staff_client, f"/staff/tickets/{ticket.id}/time", form)
    second = await post_form(staff_client, f"/staff/tickets/{ticket.id}/time", form)

    assert first.status_code == second.status_code == 303
    assert len(await entries_of(ticket)) == 1
    # Without a key each post is an entry of its own.
    for _ in range(2):
        await post_form(staff_client, f"/staff/tickets/{ticket.id}/time", time_form())
    assert len(await entries_of(ticket)) == 3


async def test_each_rendered_form_has_a_fresh_key(staff_client):
    company_id, _ = await make_company()
    ticket = await new_ticket(company_id)
    keys = {
        re.search(
            r'name="idempotency_key" value="([^"]+)"',
            (await staff_client.get(f"/staff/tickets/{ticket.id}")).text,
        ).group(1)
        for _ in range(2)
    }
    assert len(keys) == 2


# Voiding


async def test_voiding_with_a_reason_gives_the_minutes_back(staff_client):
    company_id, _ = await make_company()
    ticket = await new_ticket(company_id)
    await credit(company_id, 60, clock.today() + datetime.timedelta(days=100))
    await post_form(staff_client, f"/staff/tickets/{ticket.id}/time", time_form(minutes="30"))
    [entry] = await entries_of(ticket)
    assert await ledger.balance(company_id, clock.today()) == 30

    response = await post_form(
        staff_client, f"/staff/time-entries/{entry.id}/void", {"reason": "Ført på feil sak"}
    )

    assert response.status_code == 303
    assert response.headers["location"] == f"/staff/tickets/{ticket.id}"
    assert await ledger.balance(company_id, clock.today()) == 60
    voided = (await entries_of(ticket))[0]
    assert voided.voided_at is not None and voided.void_reason == "Ført på feil sak"
    html = (await staff_client.get(f"/staff/tickets/{ticket.id}")).text
    assert "Annullert" in html and "Ført på feil sak" in html


async def test_voiding_without_a_reason_is_refused(staff_client):
    company_id, _ = await make_company()
    ticket = await new_ticket(company_id)
    await post_form(staff_client, f"/staff/tickets/{ticket.id}/time", time_form())
    [entry] = await entries_of(ticket)

    response = await post_form(
        staff_client, f"/staff/time-entries/{entry.id}/void", {"reason": " "}, headers=HX
    )

    assert response.status_code == 422
    assert f'id="void-form-{entry.id}"' in response.text
    assert "Skriv hvorfor timeføringen annulleres." in response.text
    assert (await entries_of(ticket))[0].voided_at is None
    charge = await HourlyCharge.objects().get(HourlyCharge.time_entry == entry.id)
    assert charge.status == "outstanding"


async def test_minutes_back_to_an_expired_lot_are_shown_as_written_off_again(staff_client):
    company_id, _ = await make_company()
    ticket = await new_ticket(company_id)
    # Logged a week ago on a lot that expired yesterday.
    lot = await credit(company_id, 60, clock.today() - datetime.timedelta(days=1))
    week_ago = (clock.today() - datetime.timedelta(days=7)).isoformat()
    await post_form(
        staff_client,
        f"/staff/tickets/{ticket.id}/time",
        time_form(minutes="15", performed_on=week_ago),
    )
    [entry] = await entries_of(ticket)
    assert entry.coverage == "account"
    await ledger.expire_lots(clock.today(), company_id)

    await post_form(staff_client, f"/staff/time-entries/{entry.id}/void", {"reason": "Feil"})

    html = (await staff_client.get(f"/staff/tickets/{ticket.id}")).text
    assert "15 min ble ført tilbake til timer som har utløpt siden" in html
    assert (await Lot.objects().get(Lot.id == lot.id)).remaining_minutes == 0


async def test_an_unknown_time_entry_is_not_found(staff_client):
    response = await post_form(staff_client, "/staff/time-entries/999999999/void", {"reason": "x"})
    assert response.status_code == 404


# On a company's behalf


async def test_staff_open_a_ticket_for_a_company_by_phone(staff_client):
    company_id, _ = await make_company("Ringte Inn AS")
    page = await staff_client.get(f"/staff/tickets/new?company={company_id}")
    assert page.status_code == 200
    assert f'<option value="{company_id}" selected>' in page.text

    response = await post_form(
        staff_client,
        "/staff/tickets",
        {
            "company": str(company_id),
            "product": "vault",
            "subject": "Vault-innlogging feiler",
            "description": "Ringte inn kl. 9, får feilmelding ved innlogging.",
            "channel": "phone",
        },
    )

    assert response.status_code == 303
    ticket = await Ticket.objects().get(Ticket.subject == "Vault-innlogging feiler")
    assert (ticket.company, ticket.channel, ticket.product_code) == (company_id, "phone", "vault")
    assert ticket.opened_by == staff_client.staff_user.id
    assert response.headers["location"] == f"/staff/tickets/{ticket.id}"


async def test_opening_a_ticket_keeps_input_and_shows_messages(staff_client):
    company_id, _ = await make_company()
    response = await post_form(
        staff_client,
        "/staff/tickets",
        {
            "company": str(company_id),
            "product": "finnes-ikke",
            "subject": "Beholdt emne",
            "description": "",
            "channel": "mail",
        },
        headers=HX,
    )
    assert response.status_code == 422
    assert "Velg et produkt fra listen." in response.text
    assert "Feltet må fylles ut." in response.text
    assert 'value="Beholdt emne"' in response.text


# The company page


async def test_company_page_shows_balance_lots_and_entries(staff_client):
    company_id, _ = await make_company("Kontofirma AS")
    ticket = await new_ticket(company_id, "Sak med tid")
    expires_on = clock.today() + datetime.timedelta(days=300)
    await credit(company_id, 300, expires_on)
    await post_form(staff_client, f"/staff/tickets/{ticket.id}/time", time_form(minutes="50"))

    response = await staff_client.get(f"/staff/companies/{company_id}")

    assert response.status_code == 200
    html = response.text
    assert "Kontofirma AS" in html
    assert "4 t 0 min" in html  # 300 − 60 minutes left
    assert expires_on.strftime("%d.%m.%Y") in html
    assert "60 min trukket fra tidskontoen" in html and "Sak med tid" in html
    assert "Kjøp av timer" in html and "-60" in html
    assert await LedgerEntry.count().where(LedgerEntry.company == company_id) == 2


async def test_an_unknown_company_or_ticket_is_not_found(staff_client):
    assert (await staff_client.get("/staff/companies/999999999")).status_code == 404
    assert (await staff_client.get("/staff/tickets/999999999")).status_code == 404
    assert (await staff_client.get("/staff/tickets/99999999999999999999")).status_code == 404


# Who may


async def test_company_users_get_403_on_the_console(client, other_client):
    company_id, email = await make_company()
    ticket = await new_ticket(company_id)
    await login(client, email)

    for path in (f"/staff/tickets/{ticket.id}", "/staff", f"/staff/companies/{company_id}"):
        assert (await client.get(path)).status_code == 403, path
    response = await post_form(client, f"/staff/tickets/{ticket.id}/time", time_form())
    assert response.status_code == 403
    assert await entries_of(ticket) == []


async def test_admin_adjusts_the_time_account_with_a_reason(client, other_client):
    from backend.services import clock, ledger
    from backend.services.users import create_staff
    from backend.tables import LedgerEntry
    from tests.support import PASSWORD, login, make_company, new_email, post_form

    company_id, _ = await make_company()
    admin, technician = new_email("admin"), new_email("tek")
    await create_staff(email=admin, name="Ada", role="admin", password=PASSWORD)
    await create_staff(email=technician, name="Tor", role="technician", password=PASSWORD)
    await login(client, admin)
    url = f"/staff/companies/{company_id}/adjustments"

    refused = await post_form(client, url, {"minutes": "0", "reason": ""})
    assert refused.status_code == 422 and "Skriv en begrunnelse." in refused.text

    form = {
        "minutes": "90",
        "reason": "Kompensasjon for nedetid",
        "idempotency_key": "k1",
        "products": ["inventor"],
    }
    assert (await post_form(client, url, form)).status_code == 303
    assert (await post_form(client, url, form)).status_code == 303  # a double submit
    assert await ledger.balance(company_id, clock.today()) == 90
    entries = await LedgerEntry.objects().where(LedgerEntry.company == company_id)
    assert [(e.kind, e.minutes, e.note) for e in entries] == [
        ("adjustment", 90, "Kompensasjon for nedetid")
    ]
    page = await client.get(f"/staff/companies/{company_id}")
    assert "Kompensasjon for nedetid" in page.text and 'id="adjust-form"' in page.text

    await login(other_client, technician)
    assert 'id="adjust-form"' not in (await other_client.get(f"/staff/companies/{company_id}")).text
    denied = await post_form(other_client, url, {"minutes": "60", "reason": "Nei"})
    assert denied.status_code == 403
    assert await ledger.balance(company_id, clock.today()) == 90


async def test_admin_minutes_pay_for_support_on_the_products_they_cover(client):
    """Admin +60 minutes, then 15 minutes of support on a covered product: 45 left, nothing
    billed hourly. The form offers what the company's agreements cover, else every product."""
    from backend.services import agreements, catalog, clock, ledger
    from backend.services.users import create_staff
    from backend.tables import Coverage
    from tests.support import PASSWORD, login, make_company, new_email, post_form

    await catalog.seed_demo_catalog()
    company_id, _ = await make_company()
    admin = new_email("admin")
    await create_staff(email=admin, name="Ada", role="admin", password=PASSWORD)
    await login(client, admin)
    url = f"/staff/companies/{company_id}/adjustments"

    def checked(page: str) -> set[str]:
        form = page[page.index('id="adjust-form"') :]
        return set(re.findall(r'value="([\w-]+)" checked', form[: form.index("</form>")]))

    page = (await client.get(f"/staff/companies/{company_id}")).text
    assert checked(page) == {p.code for p in (await catalog.current_offer()).products}

    today = clock.today()
    await agreements.create_plan(
        company_id=company_id, product_codes=["vault"], starts_on=today, ends_on=today
    )
    page = (await client.get(f"/staff/companies/{company_id}")).text
    assert checked(page) == {"vault"}

    no_products = {"minutes": "60", "reason": "Goodwill", "idempotency_key": "a0"}
    refused = await post_form(client, url, no_products)
    assert refused.status_code == 422
    assert "Velg hvilke produkter minuttene skal dekke." in refused.text
    assert await ledger.balance(company_id, today) == 0

    form = {**no_products, "idempotency_key": "a1", "products": ["inventor"]}
    assert (await post_form(client, url, form)).status_code == 303
    ticket = await new_ticket(company_id, product="inventor")
    entry = await post_form(client, f"/staff/tickets/{ticket.id}/time", time_form(minutes="15"))
    assert entry.status_code == 303, entry.text
    (logged,) = await entries_of(ticket)
    assert (logged.coverage, logged.account_minutes) == (Coverage.account.value, 15)
    assert await ledger.balance(company_id, today) == 45
