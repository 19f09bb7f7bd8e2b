"""The customer side of tickets (SPEC §6): opening, reading, replying, history and costs."""

from __future__ import annotations

import datetime
import re

import pytest
from babel.dates import format_datetime

from backend.services import agreements, catalog, clock, coverage, ledger, tickets
from backend.services.availability import OSLO, availability_at
from backend.services.money import format_nok
from backend.services.users import create_staff, hash_password
from backend.tables import PriceList, Role, Ticket, TicketStatus, User
from tests.support import PASSWORD, login, make_company, new_email, post_form

TICKET_LINK = re.compile(r'href="/portal/tickets/(\d+)"')


@pytest.fixture(autouse=True)
async def demo_catalog():
    await catalog.seed_demo_catalog()


async def signed_in_superuser(client) -> tuple[int, User]:
    company_id, email = await make_company()
    assert (await login(client, email)).status_code == 303
    return company_id, await User.objects().get(User.email == email)


async def signed_in_member(client, company_id: int) -> User:
    email = new_email("kollega")
    member = User(
        email=email,
        name="Kollega Medlem",
        role=Role.member.value,
        company=company_id,
        password_hash=hash_password(PASSWORD),
    )
    await member.save()
    assert (await login(client, email)).status_code == 303
    return member


async def staff_user(role: str = "technician") -> User:
    return await create_staff(
        email=new_email(role), name="Tina Tekniker", role=role, password=PASSWORD
    )


async def open_ticket(user: User, product: str = "inventor", subject: str = "Skisse låser seg"):
    return await tickets.open_ticket(
        user, {"product": product, "subject": subject, "description": "Den henger ved lagring."}
    )


def form_error(html: str, field: str) -> str:
    match = re.search(rf'<small id="d-{field}" class="field-error">([^<]*)</small>', html)
    return match.group(1) if match else ""


# Opening


async def test_the_superuser_opens_a_ticket_on_the_web_and_lands_on_it(client):
    _, superuser = await signed_in_superuser(client)
    form = (await client.get("/portal/tickets/new")).text
    assert 'id="ticket-form"' in form and "Autodesk Inventor" in form

    response = await post_form(
        client,
        "/portal/tickets",
        {
            "product": "inventor",
            "subject": "Skisse låser seg",
            "description": "Inventor henger når jeg lagrer.\nSkjer hver gang.",
        },
    )

    assert response.status_code == 303
    ticket_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert response.headers["location"] == f"/portal/tickets/{ticket_id}"
    ticket = await Ticket.objects().get(Ticket.id == ticket_id)
    assert (ticket.company, ticket.opened_by, ticket.channel, ticket.status) == (
        superuser.company,
        superuser.id,
        "web",
        "open",
    )
    number = tickets.ticket_number(ticket_id)
    assert re.fullmatch(r"SUP-\d{6}", number) and int(number[4:]) == ticket_id
    page = (await client.get(response.headers["location"])).text
    assert number in page and "Skisse låser seg" in page
    assert "Autodesk Inventor" in page and "Åpen" in page
    assert "Inventor henger når jeg lagrer.<br>Skjer hver gang." in page
    assert 'id="reply-form"' in page


async def test_ticket_numbers_are_padded_to_six_digits_and_unique():
    assert tickets.ticket_number(123) == "SUP-000123"
    assert tickets.ticket_number(1_234_567) == "SUP-1234567"
    _, email = await make_company()
    superuser = await User.objects().get(User.email == email)
    first, second = await open_ticket(superuser), await open_ticket(superuser)
    assert tickets.ticket_number(first.id) != tickets.ticket_number(second.id)


async def test_opening_with_htmx_redirects_the_client(client):
    await signed_in_superuser(client)
    response = await post_form(
        client,
        "/portal/tickets",
        {"product": "vault", "subject": "Innsjekk feiler", "description": "Feilkode 42."},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert re.fullmatch(r"/portal/tickets/\d+", response.headers["hx-redirect"])


async def test_invalid_ticket_form_is_shown_again_with_norwegian_messages(client):
    await signed_in_superuser(client)
    before = await Ticket.count()

    response = await post_form(
        client,
        "/portal/tickets",
        {"product": "photoshop", "subject": "   ", "description": "Beholdes <som skrevet>"},
    )

    assert response.status_code == 422
    html = response.text
    assert form_error(html, "product") == "Velg et produkt fra listen."
    assert form_error(html, "subject") == "Feltet må fylles ut."
    assert form_error(html, "description") == ""
    assert "Skjemaet har feil. Se meldingene ved feltene." in html
    assert "Beholdes &lt;som skrevet&gt;</textarea>" in html
    assert await Ticket.count() == before


async def test_invalid_ticket_form_over_htmx_gets_only_the_form(client):
    await signed_in_superuser(client)
    response = await post_form(
        client,
        "/portal/tickets",
        {"product": "inventor", "subject": "Emne", "description": ""},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert response.text.lstrip().startswith('<form id="ticket-form"')
    assert form_error(response.text, "description") == "Feltet må fylles ut."
    assert 'value="Emne"' in response.text
    assert '<option value="inventor" selected>' in response.text


async def test_unknown_fields_are_refused(client):
    await signed_in_superuser(client)
    response = await post_form(
        client,
        "/portal/tickets",
        {"product": "inventor", "subject": "Emne", "description": "Tekst", "company": "1"},
    )
    assert response.status_code == 422
    assert "Skjemaet inneholdt ukjente felt" in response.text


# Who may do what


async def test_a_member_reads_but_cannot_open_or_reply(client, other_client):
    company_id, superuser = await signed_in_superuser(client)
    ticket = await open_ticket(superuser)
    member_client = other_client
    await signed_in_member(member_client, company_id)

    listing = await member_client.get("/portal/tickets")
    assert listing.status_code == 200
    assert tickets.ticket_number(ticket.id) in listing.text
    assert 'href="/portal/tickets/new"' not in listing.text

    page = await member_client.get(f"/portal/tickets/{ticket.id}")
    assert page.status_code == 200 and "Skisse låser seg" in page.text
    assert 'id="reply-form"' not in page.text and "/messages" not in page.text

    assert (await member_client.get("/portal/tickets/new")).status_code == 403
    opened = await post_form(
        member_client,
        "/portal/tickets",
        {"product": "inventor", "subject": "Medlemmets sak", "description": "Tekst"},
    )
    assert opened.status_code == 403
    replied = await post_form(
        member_client, f"/portal/tickets/{ticket.id}/messages", {"body": "Hei"}
    )
    assert replied.status_code == 403
    assert not await Ticket.exists().where(Ticket.subject == "Medlemmets sak")
    assert await tickets.thread(ticket, include_internal=True) == []


async def test_customers_never_see_internal_notes(client, other_client):
    company_id, superuser = await signed_in_superuser(client)
    await signed_in_member(other_client, company_id)
    ticket = await open_ticket(superuser)
    technician = await staff_user()
    await tickets.add_message(technician, ticket, "Intern: ring leverandøren først", internal=True)
    await tickets.add_message(technician, ticket, "Hei! Prøv å tømme hurtigbufferen.")

    for browser in (client, other_client):
        html = (await browser.get(f"/portal/tickets/{ticket.id}")).text
        assert "Hei! Prøv å tømme hurtigbufferen." in html
        assert "Tina Tekniker" in html
        assert "ring leverandøren" not in html


async def test_a_reply_reopens_a_resolved_ticket(client):
    _, superuser = await signed_in_superuser(client)
    ticket = await open_ticket(superuser)
    technician = await staff_user()
    await tickets.set_status(technician, ticket, TicketStatus.resolved.value)
    page = (await client.get(f"/portal/tickets/{ticket.id}")).text
    assert "Løst" in page and "Et svar åpner den igjen." in page

    response = await post_form(
        client, f"/portal/tickets/{ticket.id}/messages", {"body": "Det skjer igjen."}
    )

    assert response.status_code == 303
    assert response.headers["location"] == f"/portal/tickets/{ticket.id}"
    reopened = await Ticket.objects().get(Ticket.id == ticket.id)
    assert reopened.status == TicketStatus.open.value
    page = (await client.get(f"/portal/tickets/{ticket.id}")).text
    assert "Det skjer igjen." in page and "Åpen" in page


async def test_the_superuser_marks_a_ticket_resolved_and_a_reply_reopens_it(client):
    _, superuser = await signed_in_superuser(client)
    ticket = await open_ticket(superuser)
    page = (await client.get(f"/portal/tickets/{ticket.id}")).text
    assert "Merk som løst" in page and f'action="/portal/tickets/{ticket.id}/resolve"' in page

    response = await post_form(client, f"/portal/tickets/{ticket.id}/resolve", {})

    assert response.status_code == 303
    assert response.headers["location"] == f"/portal/tickets/{ticket.id}"
    resolved = await Ticket.objects().get(Ticket.id == ticket.id)
    assert (resolved.status, resolved.waiting_since) == (TicketStatus.resolved.value, None)
    page = (await client.get(f"/portal/tickets/{ticket.id}")).text
    assert "Merk som løst" not in page and "Et svar åpner den igjen." in page
    # Twice is once.
    assert (await post_form(client, f"/portal/tickets/{ticket.id}/resolve", {})).status_code == 303

    await post_form(client, f"/portal/tickets/{ticket.id}/messages", {"body": "Kom tilbake."})

    reopened = await Ticket.objects().get(Ticket.id == ticket.id)
    assert reopened.status == TicketStatus.open.value and reopened.waiting_since is not None


async def test_only_the_superuser_of_the_company_marks_resolved(client, other_client):
    company_id, superuser = await signed_in_superuser(client)
    ticket = await open_ticket(superuser)
    url = f"/portal/tickets/{ticket.id}/resolve"

    # Without the CSRF token nothing changes.
    assert (await client.post(url, data={})).status_code == 403

    await signed_in_member(other_client, company_id)
    assert "Merk som løst" not in (await other_client.get(f"/portal/tickets/{ticket.id}")).text
    assert (await post_form(other_client, url, {})).status_code == 403

    await signed_in_superuser(other_client)  # another company's superuser
    assert (await post_form(other_client, url, {})).status_code == 404

    assert (await Ticket.objects().get(Ticket.id == ticket.id)).status == TicketStatus.open.value


async def test_a_closed_ticket_is_not_marked_resolved(client):
    _, superuser = await signed_in_superuser(client)
    ticket = await open_ticket(superuser)
    await tickets.set_status(await staff_user(), ticket, TicketStatus.closed.value)

    assert "Merk som løst" not in (await client.get(f"/portal/tickets/{ticket.id}")).text
    await post_form(client, f"/portal/tickets/{ticket.id}/resolve", {})

    assert (await Ticket.objects().get(Ticket.id == ticket.id)).status == "closed"


async def test_the_void_reason_is_for_staff_only(client, other_client):
    _, superuser = await signed_in_superuser(client)
    ticket = await open_ticket(superuser)
    technician = await staff_user()
    entry = await coverage.record_time_entry(
        ticket=ticket,
        technician=technician,
        actual=20,
        performed_on=clock.today(),
        channel="phone",
        note="",
        key=f"void-reason:{ticket.id}",
    )
    await coverage.void_time_entry(entry.id, technician, "Kunden er storkunde, gratis denne gang")

    customer_page = (await client.get(f"/portal/tickets/{ticket.id}")).text
    assert "Annullert" in customer_page
    assert "storkunde" not in customer_page

    await login(other_client, technician.email)
    staff_page = (await other_client.get(f"/staff/tickets/{ticket.id}")).text
    assert "Kunden er storkunde, gratis denne gang" in staff_page


async def test_an_empty_reply_is_refused_next_to_the_field(client):
    _, superuser = await signed_in_superuser(client)
    ticket = await open_ticket(superuser)
    response = await post_form(client, f"/portal/tickets/{ticket.id}/messages", {"body": "  "})
    assert response.status_code == 422
    assert form_error(response.text, "body") == "Feltet må fylles ut."
    fragment = await post_form(
        client,
        f"/portal/tickets/{ticket.id}/messages",
        {"body": ""},
        headers={"HX-Request": "true"},
    )
    assert fragment.status_code == 422
    assert fragment.text.lstrip().startswith('<form id="reply-form"')
    assert await tickets.thread(ticket, include_internal=True) == []


async def test_another_companys_tickets_are_not_found(client, other_client):
    _, superuser = await signed_in_superuser(client)
    ticket = await open_ticket(superuser, subject="Hemmelig sak")
    await signed_in_superuser(other_client)

    assert (await other_client.get(f"/portal/tickets/{ticket.id}")).status_code == 404
    reply = await post_form(other_client, f"/portal/tickets/{ticket.id}/messages", {"body": "Hei"})
    assert reply.status_code == 404
    assert (await other_client.get("/portal/tickets/2147483648")).status_code == 404
    listing = await other_client.get(f"/portal/tickets?q={tickets.ticket_number(ticket.id)}")
    assert "Hemmelig sak" not in listing.text
    assert await tickets.thread(ticket, include_internal=True) == []


async def test_staff_and_strangers_do_not_get_the_customer_pages(client, other_client):
    technician = await staff_user()
    await login(client, technician.email)
    assert (await client.get("/portal/tickets")).status_code == 403
    anonymous = await other_client.get("/portal/tickets", follow_redirects=False)
    assert anonymous.status_code in (302, 303)
    assert anonymous.headers["location"].startswith("/login")


# Costs


async def test_time_entries_say_what_each_cost_the_company(client):
    company_id, superuser = await signed_in_superuser(client)
    yesterday = clock.today() - datetime.timedelta(days=1)
    await agreements.create_plan(
        company_id=company_id,
        product_codes=["vault"],
        starts_on=yesterday,
        ends_on=clock.today() + datetime.timedelta(days=100),
    )
    await ledger.credit_lot(
        company_id=company_id,
        minutes=45,
        expires_on=clock.today() + datetime.timedelta(days=300),
        product_codes=("inventor",),
        key=f"tickets-test-lot:{company_id}",
        cause=ledger.Cause(type="admin"),
    )
    technician = await staff_user()
    on_plan = await open_ticket(superuser, product="vault")
    on_account = await open_ticket(superuser, product="inventor")
    hourly = await open_ticket(superuser, product="fusion")

    async def log(ticket, minutes, key):
        return await coverage.record_time_entry(
            ticket=ticket,
            technician=technician,
            actual=minutes,
            performed_on=clock.today(),
            channel="phone",
            note="",
            key=f"{key}:{company_id}",
        )

    plan_entry = await log(on_plan, 50, "plan")
    account_entry = await log(on_account, 20, "account")
    split_entry = await log(on_account, 40, "split")
    hourly_entry = await log(hourly, 10, "hourly")
    wrong = await log(hourly, 5, "wrong")
    await coverage.void_time_entry(wrong.id, technician, "Ført på feil sak")
    assert [e.coverage for e in (plan_entry, account_entry, split_entry, hourly_entry)] == [
        "plan",
        "account",
        "split",
        "hourly",
    ]

    plan_page = (await client.get(f"/portal/tickets/{on_plan.id}")).text
    assert "Dekket av Fri support" in plan_page
    assert "Tina Tekniker" in plan_page and clock.today().strftime("%d.%m.%Y") in plan_page
    assert "50 min" in plan_page and "60 min" in plan_page

    account_page = (await client.get(f"/portal/tickets/{on_account.id}")).text
    assert "30 min trukket fra tidskontoen" in account_page
    assert (
        "15 min trukket fra tidskontoen, 30 min fakturert etter timesats "
        f"({format_nok(split_entry.hourly_amount_ore)})"
    ) in account_page

    hourly_page = (await client.get(f"/portal/tickets/{hourly.id}")).text
    assert (
        f"{hourly_entry.hourly_minutes} min fakturert etter timesats "
        f"({format_nok(hourly_entry.hourly_amount_ore)})"
    ) in hourly_page
    # The technician's reason is internal: the customer sees only that the entry was voided.
    assert "Annullert" in hourly_page and "Ført på feil sak" not in hourly_page
    assert hourly_page.count("<del>") == 5  # every cell of the voided entry, struck


async def test_a_ticket_without_time_entries_says_so(client):
    _, superuser = await signed_in_superuser(client)
    ticket = await open_ticket(superuser)
    assert (
        "Ingen timeføringer på saken ennå."
        in (await client.get(f"/portal/tickets/{ticket.id}")).text
    )


# Before submitting: products billed hourly


async def test_the_form_says_which_products_are_billed_at_the_hourly_rate(client):
    company_id, _ = await signed_in_superuser(client)
    rate = format_nok((await PriceList.objects().first()).hourly_rate_ore)
    nothing = (await client.get("/portal/tickets/new")).text
    assert f"Support faktureres etter timesatsen på {rate}/t eks. mva." in nothing

    await agreements.create_plan(
        company_id=company_id,
        product_codes=["inventor", "vault"],
        starts_on=clock.today(),
        ends_on=clock.today() + datetime.timedelta(days=100),
    )
    await ledger.credit_lot(
        company_id=company_id,
        minutes=300,
        expires_on=clock.today() + datetime.timedelta(days=300),
        product_codes=("fusion",),
        key=f"tickets-test-notice:{company_id}",
        cause=ledger.Cause(type="admin"),
    )
    html = (await client.get("/portal/tickets/new")).text
    notice = html[html.index('<div id="product-notice"') :]
    notice = notice[: notice.index("</div>")]
    assert f"faktureres etter timesatsen på {rate}/t eks. mva" in notice
    assert "AutoCAD Mechanical" in notice and "Inventor CAM" in notice
    assert "Autodesk Inventor" not in notice and "Autodesk Vault" not in notice
    assert "Autodesk Fusion" not in notice
    assert '<option value="acad-mech">AutoCAD Mechanical (timesats)</option>' in html
    assert '<option value="inventor">Autodesk Inventor</option>' in html

    chosen = (await client.get("/portal/tickets/new?product=acad-mech")).text
    assert (
        "AutoCAD Mechanical er ikke dekket av en aktiv avtale. "
        f"Saken faktureres etter timesatsen på {rate}/t eks. mva."
    ) in chosen


async def test_uncovered_products_ignore_ended_plans_and_empty_or_expired_lots():
    company_id, _ = await make_company()
    yesterday = clock.today() - datetime.timedelta(days=1)
    await agreements.create_plan(
        company_id=company_id,
        product_codes=["inventor"],
        starts_on=clock.today(),
        ends_on=clock.today(),
    )
    await agreements.create_plan(
        company_id=company_id,
        product_codes=["vault"],
        starts_on=yesterday - datetime.timedelta(days=180),
        ends_on=yesterday,
    )
    await ledger.credit_lot(
        company_id=company_id,
        minutes=60,
        expires_on=clock.today(),  # usable before today only: expired
        product_codes=("fusion",),
        key=f"tickets-test-expired:{company_id}",
        cause=ledger.Cause(type="admin"),
    )
    await ledger.credit_lot(
        company_id=company_id,
        minutes=60,
        expires_on=clock.today() + datetime.timedelta(days=1),
        product_codes=("acad-mech",),
        key=f"tickets-test-open:{company_id}",
        cause=ledger.Cause(type="admin"),
    )
    assert await coverage.billed_hourly_products(company_id, clock.today()) == {
        "vault",
        "fusion",
        "inventor-cam",
    }


# Opened while support is closed


async def test_a_ticket_opened_while_closed_says_when_support_looks_at_it(client):
    _, superuser = await signed_in_superuser(client)
    ticket = await open_ticket(superuser)
    # Opened on a Saturday afternoon a week or two ahead: support looks at it next opening.
    saturday = clock.today() + datetime.timedelta(days=(5 - clock.today().weekday()) % 7 + 7)
    opened_at = datetime.datetime.combine(saturday, datetime.time(14, 0), tzinfo=OSLO)
    await Ticket.update({Ticket.created_at: opened_at}).where(Ticket.id == ticket.id)
    opening = availability_at(opened_at).next_opening
    when = format_datetime(opening, "EEEE d. MMMM 'kl.' HH:mm", tzinfo=OSLO, locale="nb_NO")

    page = (await client.get(f"/portal/tickets/{ticket.id}")).text
    assert f"Saken kom inn mens support var stengt. Vi ser på den {when}." in page
    assert "kl. 08:00" in when

    technician = await staff_user()
    await tickets.add_message(technician, ticket, "Vi har sett på saken.")
    assert "Vi ser på den" not in (await client.get(f"/portal/tickets/{ticket.id}")).text


def test_pending_first_look_is_none_once_support_has_answered_or_the_time_has_passed():
    saturday = datetime.datetime(2026, 11, 7, 14, 0, tzinfo=OSLO)
    ticket = Ticket(created_at=saturday)
    monday = datetime.datetime(2026, 11, 9, 8, 0, tzinfo=OSLO)
    assert tickets.pending_first_look(ticket, [], saturday) == monday
    staff_reply = [{"author_role": "technician"}]
    assert tickets.pending_first_look(ticket, staff_reply, saturday) is None
    assert tickets.pending_first_look(ticket, [{"author_role": "superuser"}], saturday) == monday
    assert tickets.pending_first_look(ticket, [], monday) is None
    weekday = datetime.datetime(2026, 11, 10, 10, 0, tzinfo=OSLO)
    assert tickets.pending_first_look(Ticket(created_at=weekday), [], weekday) is None


async def test_dashboard_lists_open_tickets_but_not_resolved_ones(client):
    from backend.services import catalog
    from backend.services import tickets as ticket_service
    from backend.services.users import create_staff
    from backend.tables import User
    from tests.support import PASSWORD, new_email, register

    await catalog.seed_demo_catalog()
    form = await register(client)
    user = await User.objects().get(User.email == form["email"])
    first = await ticket_service.open_ticket(
        user, {"product": "inventor", "subject": "Åpen sak her", "description": "Hjelp"}
    )
    second = await ticket_service.open_ticket(
        user, {"product": "vault", "subject": "Løst sak her", "description": "Hjelp"}
    )
    staff_email = new_email("tek")
    staff = await create_staff(email=staff_email, name="T", role="technician", password=PASSWORD)
    await ticket_service.set_status(staff, second, "resolved")
    html = (await client.get("/portal")).text
    assert ticket_service.ticket_number(first.id) in html and "Åpen sak her" in html
    assert "Løst sak her" not in html
    assert "Åpen sak her · Åpen" in html

    # The status in the reader's language, on the dashboard and in the list.
    await client.get("/language/en")
    assert "Åpen sak her · Open" in (await client.get("/portal")).text
    listed = (await client.get("/portal/tickets?status=resolved")).text
    assert "Løst sak her" in listed and "<td>Resolved</td>" in listed
