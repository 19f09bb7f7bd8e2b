"""Update advisories (issue 13): staff publish, revise and withdraw an advisory for a product,
each revision kept and dated; a company sees the advisories for the products its agreements
cover, with the details only while an active agreement covers the product; visitors see
titles and verdicts. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import html
import re
import secrets
from xml.etree import ElementTree

import pytest
from litestar.testing import AsyncTestClient

from backend.services import advisories, catalog, clock, ledger
from backend.services.users import create_staff, hash_password
from backend.tables import (
    Advisory,
    AdvisoryFeed,
    AdvisoryRevision,
    AdvisoryUnfollow,
    Agreement,
    AgreementProduct,
    AuditEntry,
    AuditKind,
    OutboxMail,
    Role,
    Ticket,
    User,
)
from tests.support import PASSWORD, login, make_company, new_email, post_form

STAFF_URL = "/staff/advisories"


@pytest.fixture(autouse=True)
async def _catalog():
    await catalog.seed_demo_catalog()


async def _staff(client, role: str = "technician") -> User:
    user = await create_staff(
        email=new_email(role), name=f"Tekniker {role}", role=role, password=PASSWORD
    )
    assert (await login(client, user.email)).status_code == 303
    return user


async def _plan(company_id: int, product: str, *, days_left: int = 120) -> Agreement:
    today = clock.today()
    agreement = Agreement(
        company=company_id,
        starts_on=today - datetime.timedelta(days=180 - days_left),
        ends_on=today + datetime.timedelta(days=days_left),
    )
    await agreement.save()
    await AgreementProduct(agreement=agreement.id, product_code=product).save()
    return agreement


def _title() -> str:
    return f"Inventor 2027.{secrets.randbelow(1000)} Update {secrets.token_hex(3)}"


def _form(**changes: str) -> dict[str, str]:
    form = {
        "product": "inventor",
        "title": _title(),
        "verdict": "wait",
        "summary": "Vent til Hotfix 1: iLogic-regler feiler.",
        "details": "iLogic-regler som bruker eksterne regler feiler ved åpning.\nLøsning: vent.",
        "applies_to": "2027, 2027.1",
    }
    return {**form, **changes}


async def _publish(client, **changes: str) -> Advisory:
    form = _form(**changes)
    response = await post_form(client, STAFF_URL, form)
    assert response.status_code == 303, response.text
    return await Advisory.objects().get(Advisory.title == form["title"])


async def _superuser(client, name: str = "Kunde AS") -> tuple[int, str]:
    company_id, email = await make_company(name)
    assert (await login(client, email)).status_code == 303
    return company_id, email


# --- staff ---------------------------------------------------------------------------------


async def test_a_technician_publishes_revises_and_withdraws_and_the_history_is_kept(client):
    technician = await _staff(client)
    advisory = await _publish(client, verdict="wait")
    assert advisory.verdict == "wait" and advisory.revision == 1
    assert response_ok(await client.get(STAFF_URL), advisory.title)

    revise = {
        "verdict": "safe",
        "summary": "Hotfix 1 retter feilen: trygt.",
        "details": "",
        "applies_to": "",
    }
    response = await post_form(client, f"{STAFF_URL}/{advisory.id}/revisions", revise)
    assert response.status_code == 303, response.text
    # The same revision sent twice is one revision.
    await post_form(client, f"{STAFF_URL}/{advisory.id}/revisions", revise)
    revisions = (
        await AdvisoryRevision.objects()
        .where(AdvisoryRevision.advisory == advisory.id)
        .order_by(AdvisoryRevision.number)
    )
    assert [(r.number, r.verdict) for r in revisions] == [(1, "wait"), (2, "safe")]
    assert all(r.author == technician.id and r.created_at is not None for r in revisions)

    page = (await client.get(f"{STAFF_URL}/{advisory.id}")).text
    assert 'id="revision-1"' in page and 'id="revision-2"' in page
    assert "Trygt å installere" in page and "Vent" in page

    confirm = await client.get(f"{STAFF_URL}/{advisory.id}/withdraw")
    assert confirm.status_code == 200 and "Ja, trekk tilbake rådet" in confirm.text
    response = await post_form(
        client, f"{STAFF_URL}/{advisory.id}/withdraw", {"reason": "Feil versjonsnummer"}
    )
    assert response.status_code == 303
    withdrawn = await Advisory.objects().get(Advisory.id == advisory.id)
    assert (
        withdrawn.withdrawn_at is not None and withdrawn.withdrawn_reason == "Feil versjonsnummer"
    )
    # The history stays, and a withdrawn advisory is not revised.
    assert await AdvisoryRevision.count().where(AdvisoryRevision.advisory == advisory.id) == 2
    again = await post_form(
        client, f"{STAFF_URL}/{advisory.id}/revisions", {**revise, "verdict": "wait"}
    )
    assert again.status_code == 422 and "trukket tilbake" in again.text
    kinds = [
        row["kind"]
        for row in await AuditEntry.select(AuditEntry.kind)
        .where(AuditEntry.subject == f"advisory:{advisory.id}")
        .order_by(AuditEntry.id)
    ]
    assert kinds == [
        AuditKind.advisory_published,
        AuditKind.advisory_revised,
        AuditKind.advisory_withdrawn,
    ]


def response_ok(response, text: str) -> bool:
    return response.status_code == 200 and text in response.text


async def test_bad_input_keeps_the_form_and_says_what_is_wrong(client):
    await _staff(client)
    before = await Advisory.count()
    response = await post_form(
        client,
        STAFF_URL,
        _form(product="finnes-ikke", verdict="kanskje", summary="", title="Min tittel \x01"),
    )
    assert response.status_code == 422
    assert "Velg et produkt fra katalogen." in response.text
    assert "Velg en av vurderingene." in response.text
    assert "Skriv et kort sammendrag." in response.text
    assert await Advisory.count() == before
    # Unknown ids are 404, never 500.
    assert (await client.get(f"{STAFF_URL}/2147483647")).status_code == 404
    response = await post_form(client, f"{STAFF_URL}/2147483647/withdraw", {"reason": "x"})
    assert response.status_code == 404
    advisory = await _publish(client)
    response = await post_form(client, f"{STAFF_URL}/{advisory.id}/withdraw", {"reason": ""})
    assert response.status_code == 422 and "Skriv en begrunnelse." in response.text
    response = await post_form(
        client, f"{STAFF_URL}/{advisory.id}/revisions", {"verdict": "safe", "summary": "x" * 501}
    )
    assert response.status_code == 422
    assert (await Advisory.objects().get(Advisory.id == advisory.id)).revision == 1


async def test_the_same_title_twice_is_one_advisory_and_another_text_is_refused(client):
    await _staff(client)
    form = _form()
    assert (await post_form(client, STAFF_URL, form)).status_code == 303
    assert (await post_form(client, STAFF_URL, form)).status_code == 303
    assert await Advisory.count().where(Advisory.title == form["title"]) == 1
    response = await post_form(client, STAFF_URL, {**form, "summary": "Noe annet"})
    assert response.status_code == 422 and "Revider det i stedet" in response.text


async def test_customers_and_visitors_cannot_use_the_staff_pages(client, other_client):
    await _staff(other_client)
    advisory = await _publish(other_client)
    company_id, _ = await _superuser(client)
    member_email = new_email("medlem")
    await User(
        email=member_email,
        name="Mona",
        role=Role.member.value,
        company=company_id,
        password_hash=hash_password(PASSWORD),
    ).save()
    for path in (STAFF_URL, f"{STAFF_URL}/new", f"{STAFF_URL}/{advisory.id}"):
        assert (await client.get(path)).status_code == 403
    response = await post_form(client, STAFF_URL, _form())
    assert response.status_code == 403
    response = await post_form(client, f"{STAFF_URL}/{advisory.id}/withdraw", {"reason": "x"})
    assert response.status_code == 403
    assert (await Advisory.objects().get(Advisory.id == advisory.id)).withdrawn_at is None


# --- customers -----------------------------------------------------------------------------


async def _technician() -> User:
    return await create_staff(
        email=new_email("tekniker"), name="Tor Tekniker", role="technician", password=PASSWORD
    )


async def _published(product: str = "inventor", **changes: str) -> advisories.AdvisoryView:
    return await advisories.publish(await _technician(), _form(product=product, **changes))


DETAILS = "iLogic-regler som bruker eksterne regler feiler"


async def test_a_company_sees_details_only_for_the_products_its_agreements_cover(client):
    covered = await _published("inventor", verdict="do_not_install")
    by_account = await _published("vault", verdict="known_problems")
    uncovered = await _published("fusion", verdict="safe")
    company_id, _ = await _superuser(client)
    await _plan(company_id, "inventor")
    await ledger.credit_lot(
        company_id=company_id,
        minutes=120,
        expires_on=clock.today() + datetime.timedelta(days=200),
        product_codes=["vault"],
        key=f"advisory-lot-{company_id}",
        cause=ledger.Cause(type="order"),
    )

    page = (await client.get("/portal/advisories")).text
    mine = page[
        page.index('id="advisories"') : page.index("</table>", page.index('id="advisories"'))
    ]
    assert covered.title in mine and by_account.title in mine and uncovered.title not in mine
    assert f'href="/portal/advisories/{covered.id}"' in mine
    assert "Ikke installer" in mine and "Kjente problemer" in mine
    # Other products: title and verdict, no link to the details.
    others = page[page.index('id="other-advisories"') :]
    assert uncovered.title in others and f"/portal/advisories/{uncovered.id}" not in page

    shown = await client.get(f"/portal/advisories/{covered.id}")
    assert shown.status_code == 200 and DETAILS in shown.text and covered.summary in shown.text
    hidden = await client.get(f"/portal/advisories/{uncovered.id}")
    assert hidden.status_code == 200 and uncovered.title in hidden.text
    assert DETAILS not in hidden.text and uncovered.summary not in hidden.text
    assert 'id="advisory-no-details"' in hidden.text


async def test_an_ended_agreement_shows_no_details_and_members_read_them_too(client, other_client):
    advisory = await _published("inventor")
    company_id, _ = await _superuser(client)
    agreement = await _plan(company_id, "inventor")
    member_email = new_email("medlem")
    await User(
        email=member_email,
        name="Mona Medlem",
        role=Role.member.value,
        company=company_id,
        password_hash=hash_password(PASSWORD),
    ).save()
    assert (await login(other_client, member_email)).status_code == 303
    page = (await other_client.get(f"/portal/advisories/{advisory.id}")).text
    assert DETAILS in page
    # A member does not open tickets: no one-click ticket for them.
    assert 'id="advisory-ticket"' not in page

    yesterday = clock.today() - datetime.timedelta(days=1)
    await Agreement.update({Agreement.ends_on: yesterday}).where(Agreement.id == agreement.id)
    for who in (client, other_client):
        page = (await who.get(f"/portal/advisories/{advisory.id}")).text
        assert DETAILS not in page and 'id="advisory-no-details"' in page
        assert f"/portal/advisories/{advisory.id}" not in (await who.get("/portal/advisories")).text


async def test_visitors_see_titles_and_verdicts_only_and_nothing_withdrawn(client, other_client):
    advisory = await _published("inventor", verdict="wait")
    gone = await _published("inventor", verdict="do_not_install")
    await advisories.withdraw(await _technician(), gone.id, {"reason": "Feil"})
    page = await client.get("/advisories")
    assert page.status_code == 200
    assert advisory.title in page.text and "Vent" in page.text
    assert advisory.summary not in page.text and DETAILS not in page.text
    assert gone.title not in page.text
    assert (
        await client.get(f"/portal/advisories/{advisory.id}", follow_redirects=False)
    ).status_code in (
        302,
        303,
        401,
    )
    # A covered company sees the withdrawn one, marked so.
    company_id, _ = await _superuser(other_client)
    await _plan(company_id, "inventor")
    row = (await other_client.get("/portal/advisories")).text
    row = row[row.index(f'id="advisories-{gone.id}"') :]
    assert "Trukket tilbake" in row[: row.index("</tr>")]


async def test_no_500_on_odd_advisory_ids(client):
    await _superuser(client)
    for value in ("2147483647", "0", str(2**63)):
        assert (await client.get(f"/portal/advisories/{value}")).status_code == 404
    assert (await client.get("/portal/advisories/abc")).status_code == 404


# --- one click to a ticket -----------------------------------------------------------------


async def test_the_superuser_opens_a_ticket_about_an_advisory_in_one_click(client):
    advisory = await _published(
        "inventor", title=f"Inventor 2027.1 Update & Co {secrets.token_hex(2)}"
    )
    company_id, _ = await _superuser(client)
    await _plan(company_id, "inventor")
    page = (await client.get(f"/portal/advisories/{advisory.id}")).text
    link = re.search(r'id="advisory-ticket" href="([^"]+)"', page)
    assert link, "no one-click ticket link"
    form = await client.get(html.unescape(link.group(1)))
    assert form.status_code == 200
    subject = f"Oppdateringsråd: {advisory.title}"
    assert (
        f'value="{html.escape(subject)}"' in form.text
        or f'value="{html.escape(subject, quote=False)}"' in form.text
    )
    assert re.search(r'<option value="inventor"[^>]*selected', form.text)
    response = await post_form(
        client,
        "/portal/tickets",
        {"product": "inventor", "subject": subject, "description": "Skal vi vente?"},
    )
    assert response.status_code == 303, response.text
    ticket = await Ticket.objects().where(Ticket.company == company_id).first()
    assert ticket.subject == subject and ticket.product_code == "inventor"


async def test_a_pre_filled_ticket_form_still_checks_what_the_link_says(client):
    await _superuser(client)
    form = await client.get("/portal/tickets/new?product=finnes-ikke&subject=" + "x" * 5000)
    assert form.status_code == 200


async def test_the_advisory_pages_speak_english_on_the_switch(client):
    advisory = await _published("inventor", verdict="do_not_install")
    company_id, _ = await _superuser(client)
    await _plan(company_id, "inventor")
    await client.get("/language/en?next=/portal/advisories")
    page = (await client.get(f"/portal/advisories/{advisory.id}")).text
    assert "Do not install" in page and "Open a ticket about this" in page
    link = re.search(r'id="advisory-ticket" href="([^"]+)"', page)
    form = (await client.get(html.unescape(link.group(1)))).text
    assert html.escape(f"Update advisory: {advisory.title}") in form
    assert "Do not install" in (await client.get("/advisories")).text


# --- the dashboard -------------------------------------------------------------------------


async def test_the_dashboard_shows_the_latest_verdicts_and_every_do_not_install_in_force(client):
    company_id, _ = await _superuser(client)
    await _plan(company_id, "inventor")
    stop = await _published("inventor", verdict="do_not_install")
    later = [
        await _published("inventor", verdict="safe") for _ in range(advisories.DASHBOARD_LATEST)
    ]
    wait = await _published("inventor", verdict="wait")
    gone = await _published("inventor", verdict="do_not_install")
    await advisories.withdraw(await _technician(), gone.id, {"reason": "Feil"})
    elsewhere = await _published("fusion", verdict="do_not_install")

    page = (await client.get("/portal")).text
    region = page[
        page.index('id="advisories-summary"') : page.index(
            "</article>", page.index('id="advisories-summary"')
        )
    ]
    # The "do not install" in force, though five advisories came after it.
    assert 'id="do-not-install"' in region and stop.title in region
    assert wait.title in region and later[-1].title in region
    assert later[0].title not in region  # older than the latest five
    assert gone.title not in region and elsewhere.title not in region

    alone = await client.get(
        "/portal", headers={"hx-request": "true", "hx-target": "advisories-summary"}
    )
    assert alone.text.lstrip().startswith('<article id="advisories-summary"')


async def test_the_dashboard_without_coverage_says_so(client):
    await _published("inventor", verdict="do_not_install")
    await _superuser(client)
    page = (await client.get("/portal")).text
    assert "Ingen oppdateringsråd for produktene avtalene deres dekker." in page
    assert 'id="do-not-install"' not in page


# --- following and mail --------------------------------------------------------------------


async def _mails(company_email: str) -> list[OutboxMail]:
    return (
        await OutboxMail.objects()
        .where((OutboxMail.recipient == company_email) & (OutboxMail.template == "advisory"))
        .order_by(OutboxMail.id)
    )


async def test_followers_are_mailed_once_on_publish_and_on_a_verdict_change_only(
    client, other_client
):
    follower_id, follower = await make_company("Følger AS")
    await _plan(follower_id, "inventor")
    await User.update({User.language: "en"}).where(User.email == follower)
    chooser_id, chooser = await _superuser(client, "Velger AS")
    await _plan(chooser_id, "inventor")
    await _plan(chooser_id, "vault")
    _, outsider = await make_company("Utenfor AS")
    # The chooser follows Vault only; by default a company follows every covered product.
    page = (await client.get("/portal/advisories")).text
    assert 'name="products" value="inventor" checked' in page
    response = await post_form(client, "/portal/advisories/follows", {"products": "vault"})
    assert response.status_code == 200 and "Lagret." in response.text
    assert 'value="inventor" checked' not in response.text

    technician = await _technician()
    advisory = await advisories.publish(technician, _form(product="inventor", verdict="wait"))
    [mail] = await _mails(follower)
    assert advisory.title in mail.subject and "Wait" in mail.subject and mail.language == "en"
    assert f"/portal/advisories/{advisory.id}" in mail.text_body
    assert await _mails(chooser) == [] and await _mails(outsider) == []

    # A revision that keeps the verdict mails nobody; a new verdict mails the followers once.
    await advisories.revise(technician, advisory.id, {"verdict": "wait", "summary": "Fortsatt."})
    assert len(await _mails(follower)) == 1
    changed = await advisories.revise(
        technician, advisory.id, {"verdict": "safe", "summary": "Hotfix 1 retter det."}
    )
    mails = await _mails(follower)
    assert len(mails) == 2 and "Safe to install" in mails[1].subject
    assert "Wait" in mails[1].text_body  # what it was
    # The same revision's mail again (a retried run) writes nothing.
    assert await advisories._mail_followers(changed, changed_from="wait") == 0
    assert len(await _mails(follower)) == 2
    assert await _mails(chooser) == []

    # The chooser hears of Vault, in Norwegian.
    vault = await advisories.publish(technician, _form(product="vault", verdict="do_not_install"))
    [mail] = await _mails(chooser)
    assert vault.title in mail.subject and "Ikke installer" in mail.subject


async def test_a_member_sees_what_is_followed_but_cannot_change_it(client, other_client):
    company_id, _ = await _superuser(client)
    await _plan(company_id, "inventor")
    member_email = new_email("medlem")
    await User(
        email=member_email,
        name="Mona",
        role=Role.member.value,
        company=company_id,
        password_hash=hash_password(PASSWORD),
    ).save()
    assert (await login(other_client, member_email)).status_code == 303
    page = (await other_client.get("/portal/advisories")).text
    assert 'action="/portal/advisories/follows"' not in page and "Autodesk Inventor" in page
    response = await post_form(other_client, "/portal/advisories/follows", {"products": ""})
    assert response.status_code == 403
    assert await AdvisoryUnfollow.count().where(AdvisoryUnfollow.company == company_id) == 0
    # Odd input from the superuser: a clear 422 or ignored, never a 500.
    response = await post_form(client, "/portal/advisories/follows", {"products": "x" * 5000})
    assert response.status_code == 422
    response = await post_form(
        client, "/portal/advisories/follows", {"products": "inventor", "extra": "1"}
    )
    assert response.status_code == 422


# --- the API and the Atom feed -------------------------------------------------------------


async def _api_token(client) -> str:
    response = await post_form(client, "/portal/company/api", {"name": "Distribusjon"})
    assert response.status_code == 200
    return re.search(r"(spt_[A-Za-z0-9_-]+)", response.text).group(1)


async def test_the_api_lists_only_the_companys_covered_products(client, other_client):
    mine = await _published("inventor", verdict="do_not_install")
    theirs = await _published("fusion", verdict="safe")
    company_id, _ = await _superuser(client)
    await _plan(company_id, "inventor")
    other_id, _ = await _superuser(other_client, "Andre AS")
    await _plan(other_id, "fusion")

    by_session = (await client.get("/api/v1/advisories")).json()
    ids = {a["id"] for a in by_session["advisories"]}
    assert mine.id in ids and theirs.id not in ids
    [shown] = [a for a in by_session["advisories"] if a["id"] == mine.id]
    assert shown["verdict"] == "do_not_install" and DETAILS in shown["details"]
    assert shown["product"] == "inventor" and shown["withdrawn_at"] is None

    token = await _api_token(other_client)
    async with AsyncTestClient(app=client.app) as bare:
        by_token = await bare.get(
            "/api/v1/advisories", headers={"authorization": f"Bearer {token}"}
        )
        assert by_token.status_code == 200
        ids = {a["id"] for a in by_token.json()["advisories"]}
        assert theirs.id in ids and mine.id not in ids
        assert (await bare.get("/api/v1/advisories")).status_code == 401
        wrong = await bare.get("/api/v1/advisories", headers={"authorization": "Bearer spt_x"})
        assert wrong.status_code == 401
    assert (await client.get("/api/v1/advisories?x=1")).status_code == 400


async def test_the_private_feed_shows_the_companys_advisories_and_a_new_url_ends_the_old(
    client, other_client
):
    mine = await _published(
        "inventor", verdict="wait", title="Inventor <2027> & Co " + secrets.token_hex(3)
    )
    theirs = await _published("fusion", verdict="safe")
    company_id, _ = await _superuser(client)
    await _plan(company_id, "inventor")
    other_id, _ = await _superuser(other_client, "Andre AS")
    await _plan(other_id, "fusion")

    response = await post_form(client, "/portal/advisories/feed", {})
    assert response.status_code == 200
    url = html.unescape(re.search(r'id="advisory-feed-url">([^<]+)<', response.text).group(1))
    path = url[url.index("/portal/advisories.atom") :]
    token = path.split("token=")[1]
    stored = await AdvisoryFeed.objects().get(AdvisoryFeed.company == company_id)
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() != token

    async with AsyncTestClient(app=client.app) as reader:
        feed = await reader.get(path)
        assert feed.status_code == 200
        assert feed.headers["content-type"].startswith("application/atom+xml")
        root = ElementTree.fromstring(feed.text)
        atom = "{http://www.w3.org/2005/Atom}"
        titles = [e.findtext(f"{atom}title") for e in root.iter(f"{atom}entry")]
        assert f"{mine.title}: Vent" in titles
        assert not any(theirs.title in t for t in titles)

        for bad in ("", "kort", "x" * 43, token[:-1] + ("A" if token[-1] != "A" else "B")):
            assert (await reader.get(f"/portal/advisories.atom?token={bad}")).status_code == 404
        # A new URL: the old one stops working at once.
        assert (await post_form(client, "/portal/advisories/feed", {})).status_code == 200
        assert (await reader.get(path)).status_code == 404


async def test_only_the_superuser_makes_the_feed_url(client, other_client):
    company_id, _ = await _superuser(client)
    member_email = new_email("medlem")
    await User(
        email=member_email,
        name="Mona",
        role=Role.member.value,
        company=company_id,
        password_hash=hash_password(PASSWORD),
    ).save()
    assert (await login(other_client, member_email)).status_code == 303
    assert (await post_form(other_client, "/portal/advisories/feed", {})).status_code == 403
    assert not await AdvisoryFeed.exists().where(AdvisoryFeed.company == company_id)


async def test_the_demo_has_a_few_advisories_one_revised():
    from backend.services.demo import seed_demo

    await seed_demo()
    await seed_demo()
    rows = await Advisory.objects().where(
        Advisory.title.is_in(["Inventor 2027.1 Update", "Vault 2027 Hotfix 2"])
    )
    assert {(a.title, a.verdict, a.revision) for a in rows} == {
        ("Inventor 2027.1 Update", "wait", 1),
        ("Vault 2027 Hotfix 2", "safe", 2),
    }


async def test_the_same_advisory_published_twice_at_once_is_one():
    technician = await _technician()
    form = _form()
    first, second = await asyncio.gather(
        advisories.publish(technician, form), advisories.publish(technician, form)
    )
    assert first.id == second.id
    assert await Advisory.count().where(Advisory.title == form["title"]) == 1
    assert await AdvisoryRevision.count().where(AdvisoryRevision.advisory == first.id) == 1
