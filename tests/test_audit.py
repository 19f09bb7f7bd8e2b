"""The back office's foundation (issue 12): /staff/admin for admins only, the append-only
audit trail, staff sign-ins and adjustments recorded, staff accounts managed by admins —
on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from piccolo.engine import engine_finder

from backend.app import create_app
from backend.services import audit, catalog, clock, ledger, outbox, policy, staff_accounts
from backend.services.errors import ValidationFailed
from backend.services.users import create_staff
from backend.tables import AuditEntry, AuditKind, User
from tests.support import PASSWORD, login, make_company, new_email, post_form

NEW_PASSWORD = "Nytt-passord-for-ansatt-42"


async def staff(role: str = "admin") -> User:
    return await create_staff(
        email=new_email(role), name=f"Ansatt {role}", role=role, password=PASSWORD
    )


async def entries_of(**where) -> list[AuditEntry]:
    query = AuditEntry.objects().order_by(AuditEntry.id)
    for name, value in where.items():
        query = query.where(getattr(AuditEntry, name) == value)
    return await query


async def test_a_staff_sign_in_is_recorded_and_a_customer_sign_in_is_not(client, other_client):
    technician = await staff("technician")
    assert (await login(client, technician.email)).status_code == 303
    [entry] = await entries_of(actor=technician.id)
    assert entry.kind == AuditKind.staff_sign_in and entry.subject == f"user:{technician.id}"

    # A wrong password records nothing.
    await login(other_client, technician.email, "feil-passord")
    assert len(await entries_of(actor=technician.id)) == 1

    _, superuser_email = await make_company()
    superuser = await User.objects().get(User.email == superuser_email)
    assert (await login(other_client, superuser_email)).status_code == 303
    assert await entries_of(actor=superuser.id) == []


async def test_the_database_refuses_to_change_or_delete_an_audit_entry():
    admin = await staff()
    await audit.record(admin, AuditKind.staff_created, subject="test", reason="opprinnelig")
    [entry] = await entries_of(actor=admin.id)
    with pytest.raises(Exception, match="append-only"):
        await AuditEntry.update({AuditEntry.reason: "endret"}).where(AuditEntry.id == entry.id)
    with pytest.raises(Exception, match="append-only"):
        await AuditEntry.delete().where(AuditEntry.id == entry.id)
    with pytest.raises(Exception, match="append-only"):
        await engine_finder().run_ddl(f"UPDATE audit_entry SET reason = 'x' WHERE id = {entry.id}")
    [still] = await entries_of(actor=admin.id)
    assert still.reason == "opprinnelig"


def test_the_audit_service_has_no_way_to_change_an_entry():
    public = {name for name in dir(audit) if not name.startswith("_")}
    assert not {n for n in public if re.search(r"update|delete|edit|remove|change", n, re.I)}


async def test_an_adjustment_is_recorded_once_with_its_actor_minutes_and_reason(client):
    await catalog.seed_demo_catalog()
    company_id, _ = await make_company()
    admin = await staff()
    await login(client, admin.email)
    url = f"/staff/companies/{company_id}/adjustments"
    form = {
        "minutes": "90",
        "reason": "Kompensasjon for nedetid",
        "idempotency_key": "audit-k1",
        "products": ["inventor"],
    }
    assert (await post_form(client, url, form)).status_code == 303
    assert (await post_form(client, url, form)).status_code == 303  # a double submit
    taken = {**form, "minutes": "-30", "reason": "Feilregistrert", "idempotency_key": "audit-k2"}
    assert (await post_form(client, url, taken)).status_code == 303
    assert await ledger.balance(company_id, clock.today()) == 60

    found = await entries_of(company=company_id, kind=AuditKind.minutes_adjusted.value)
    assert [(e.actor, e.reason) for e in found] == [
        (admin.id, "Kompensasjon for nedetid"),
        (admin.id, "Feilregistrert"),
    ]
    assert '"moved_minutes": 90' in found[0].after and '"moved_minutes": -30' in found[1].after

    # Without a reason: refused, and nothing recorded.
    refused = await post_form(client, url, {**form, "reason": "", "idempotency_key": "k3"})
    assert refused.status_code == 422
    assert len(await entries_of(company=company_id)) == 2

    page = await client.get(f"/staff/admin/audit?company={company_id}")
    assert page.status_code == 200
    assert "Kompensasjon for nedetid" in page.text and "Feilregistrert" in page.text
    # Newest first.
    assert page.text.index("Feilregistrert") < page.text.index("Kompensasjon for nedetid")


async def test_the_audit_page_filters_and_says_when_a_filter_makes_no_sense(client):
    admin, technician = await staff(), await staff("technician")
    await audit.record(technician, AuditKind.staff_created, subject="filter-a", reason="Grunn A")
    await audit.record(admin, AuditKind.price_changed, subject="filter-b", reason="Grunn B")
    await login(client, admin.email)

    by_actor = await client.get(f"/staff/admin/audit?actor={technician.id}")
    assert "Grunn A" in by_actor.text and "Grunn B" not in by_actor.text
    by_kind = await client.get("/staff/admin/audit?kind=price_changed")
    assert "Grunn B" in by_kind.text and "Grunn A" not in by_kind.text
    # An empty filter is no filter.
    assert "Grunn A" in (await client.get("/staff/admin/audit?company=&kind=")).text

    for bad in ("kind=nonsense", "actor=abc", "company=-1", "before=x", "actor=99999999999"):
        page = await client.get(f"/staff/admin/audit?{bad}")
        assert page.status_code == 200, bad
        assert "Noen av filtrene ble ikke brukt" in page.text, bad


async def test_the_audit_page_pages_by_keyset(client):
    admin = await staff()
    for n in range(audit.PAGE_SIZE + 3):
        await audit.record(admin, AuditKind.staff_created, subject=f"page-{n}", reason=f"r{n}")
    await login(client, admin.email)
    first = await client.get(f"/staff/admin/audit?actor={admin.id}&kind=staff_created")
    assert f"page-{audit.PAGE_SIZE + 2}<" in first.text and "page-2<" not in first.text
    older = re.search(r'href="(/staff/admin/audit\?[^"]+)">', first.text.split("Eldre")[0][-300:])
    assert older
    second = await client.get(older.group(1).replace("&amp;", "&"))
    assert "page-2<" in second.text and "page-0<" in second.text
    assert f"page-{audit.PAGE_SIZE + 2}<" not in second.text


async def test_the_admin_nav_link_is_for_admins_only(client, other_client):
    admin, technician = await staff(), await staff("technician")
    await login(client, admin.email)
    await login(other_client, technician.email)
    assert 'href="/staff/admin"' in (await client.get("/staff")).text
    assert 'href="/staff/admin"' not in (await other_client.get("/staff")).text
    index = await client.get("/staff/admin")
    assert 'href="/staff/admin/audit"' in index.text and 'href="/staff/admin/staff"' in index.text


async def invitation_link(settings, smtp, email: str, count: int = 1) -> str:
    await outbox.send_due(settings)
    messages = await smtp.wait_for(email, count)
    text = messages[-1].get_body(("plain",)).get_content()
    [path] = re.findall(re.escape(settings.base_url) + r"(/password/reset/[A-Za-z0-9_-]+)", text)
    return path


async def test_an_admin_creates_a_technician_who_sets_a_password_by_mail_and_signs_in(
    client, other_client, settings, smtp
):
    admin = await staff()
    await login(client, admin.email)
    email = new_email("ny-tekniker")
    form = {"name": "Nora Ny", "email": email, "role": "technician", "reason": "Nyansatt"}
    assert (await post_form(client, "/staff/admin/staff", form)).status_code == 303
    # Twice: the address is taken, nothing more is created.
    again = await post_form(client, "/staff/admin/staff", form)
    assert again.status_code == 422 and "Det finnes allerede en bruker" in again.text
    created = await User.objects().get(User.email == email)
    assert created.role == "technician" and created.active
    [entry] = await entries_of(kind=AuditKind.staff_created.value, subject=f"user:{created.id}")
    assert entry.actor == admin.id and entry.reason == "Nyansatt"

    # Not before the password is chosen: nobody knows the one it has.
    assert (await login(other_client, email, "")).status_code != 303
    link = await invitation_link(settings, smtp, email)
    chosen = await post_form(
        other_client, link, {"new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    )
    assert chosen.status_code in (200, 303)
    assert (await login(other_client, email, NEW_PASSWORD)).status_code == 303
    assert (await other_client.get("/staff", follow_redirects=False)).status_code == 200
    # The link works once.
    reused = await post_form(
        other_client,
        link,
        {"new_password": "Annet-passord-99", "new_password_confirm": "Annet-passord-99"},
    )
    assert reused.status_code == 422


async def test_the_new_staff_form_refuses_bad_input_and_keeps_it(client):
    admin = await staff()
    await login(client, admin.email)
    bad = {"name": "Ola", "email": "ikke-en-adresse", "role": "superuser"}
    response = await post_form(client, "/staff/admin/staff", bad)
    assert response.status_code == 422
    assert "Velg tekniker eller administrator." in response.text
    assert 'value="Ola"' in response.text
    assert not await User.exists().where(User.email == "ikke-en-adresse")


async def test_a_deactivated_technician_is_signed_out_cannot_sign_in_and_can_be_reactivated(
    client, other_client
):
    admin, technician = await staff(), await staff("technician")
    await login(client, admin.email)
    await login(other_client, technician.email)
    assert (await other_client.get("/staff", follow_redirects=False)).status_code == 200

    url = f"/staff/admin/staff/{technician.id}/deactivate"
    refused = await post_form(client, url, {"reason": ""})
    assert refused.status_code == 422 and "Skriv en begrunnelse." in refused.text
    assert (await post_form(client, url, {"reason": "Sluttet"})).status_code == 303
    assert (await post_form(client, url, {"reason": "Sluttet"})).status_code == 303  # twice
    assert (await other_client.get("/staff", follow_redirects=False)).status_code != 200
    assert (await login(other_client, technician.email)).status_code != 303
    [entry] = await entries_of(
        kind=AuditKind.staff_deactivated.value, subject=f"user:{technician.id}"
    )
    assert entry.actor == admin.id and entry.reason == "Sluttet"

    back = f"/staff/admin/staff/{technician.id}/reactivate"
    assert (await post_form(client, back, {"reason": "Tilbake"})).status_code == 303
    assert (await login(other_client, technician.email)).status_code == 303
    [entry] = await entries_of(
        kind=AuditKind.staff_reactivated.value, subject=f"user:{technician.id}"
    )
    assert entry.actor == admin.id and entry.reason == "Tilbake"


async def test_an_admin_cannot_deactivate_themselves_nor_the_last_active_admin(client):
    admin = await staff()
    await login(client, admin.email)
    own = await post_form(client, f"/staff/admin/staff/{admin.id}/deactivate", {"reason": "x"})
    assert own.status_code == 422 and "deaktivere deg selv" in own.text

    # The last one. The database is the run's: the other admins are set aside for the moment
    # (no session of theirs ends) and put back after.
    second = await staff()
    others = await User.select(User.id).where(
        (User.role == "admin") & (User.active == True) & User.id.not_in([admin.id, second.id])  # noqa: E712
    )
    ids = [row["id"] for row in others]
    if ids:
        await User.update({User.active: False}).where(User.id.is_in(ids))
    why = staff_accounts.StaffChange(reason="t")
    try:
        await staff_accounts.deactivate(second, admin.id, why)
        # What is left is `second`: an admin whose deactivation raced with theirs is refused.
        with pytest.raises(ValidationFailed) as refused:
            await staff_accounts.deactivate(
                admin, second.id, staff_accounts.StaffChange(reason="t")
            )
        assert refused.value.errors == {"form": staff_accounts.LAST_ADMIN}
        assert (await User.objects().get(User.id == second.id)).active
    finally:
        if ids:
            await User.update({User.active: True}).where(User.id.is_in(ids))


async def test_reset_sign_in_ends_sessions_and_mails_a_reset_link(
    client, other_client, settings, smtp
):
    admin, technician = await staff(), await staff("technician")
    await login(client, admin.email)
    await login(other_client, technician.email)
    url = f"/staff/admin/staff/{technician.id}/reset"
    assert (await post_form(client, url, {"reason": "Mistet PC"})).status_code == 303
    assert (await other_client.get("/staff", follow_redirects=False)).status_code != 200
    link = await invitation_link(settings, smtp, technician.email)
    await post_form(
        other_client, link, {"new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    )
    assert (await login(other_client, technician.email, NEW_PASSWORD)).status_code == 303
    [entry] = await entries_of(
        kind=AuditKind.staff_sign_in_reset.value, subject=f"user:{technician.id}"
    )
    assert entry.actor == admin.id and entry.reason == "Mistet PC"


def admin_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route that only an admin may use, anywhere in the app: those
    guarded by a policy action of admins alone (backend/web/guards.py names its guards)."""
    admin_only = {
        f"allowed_{action}" for action, roles in policy.ACTIONS.items() if roles == {policy.ADMIN}
    }
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if {guard.__name__ for guard in handler.resolve_guards()} & admin_only:
                found.extend((m, route.path) for m in handler.http_methods - {"OPTIONS", "HEAD"})
    return found


async def test_no_one_but_an_admin_reaches_the_back_office_and_nothing_changes(app, settings):
    routes = admin_routes(app)
    assert ("POST", "/staff/admin/staff/{staff_id:int}/deactivate") in routes
    assert ("POST", "/staff/companies/{company_id:int}/deactivate") in routes
    assert ("GET", "/staff/admin/reports") in routes
    target = await staff("technician")
    _, superuser_email = await make_company()
    member_email = new_email("medlem")
    superuser = await User.objects().get(User.email == superuser_email)
    await User(
        email=member_email,
        name="Mona",
        role="member",
        company=superuser.company,
        password_hash=superuser.password_hash,
    ).save()
    technician = await staff("technician")
    created = new_email("skal-ikke-finnes")
    form = {"name": "Ikke", "email": created, "role": "admin", "reason": "Forsøk"}

    async def snapshot():
        users = await User.select(User.id, User.active, User.password_hash).order_by(User.id)
        return await AuditEntry.count(), users

    for who, email in [
        ("visitor", None),
        ("technician", technician.email),
        ("superuser", superuser_email),
        ("member", member_email),
    ]:
        async with AsyncTestClient(
            app=create_app(settings, db_pool=False, background_jobs=False)
        ) as walker:
            if email:
                assert (await login(walker, email)).status_code == 303
            else:
                await walker.get("/login")
            before = await snapshot()
            for method, path in routes:
                # Any id: the guard refuses before the handler reads it.
                url = re.sub(r"\{\w+:int\}", str(target.id), path)
                if method == "GET":
                    response = await walker.get(url, follow_redirects=False)
                else:
                    response = await post_form(walker, url, form)
                if who == "visitor":
                    assert response.status_code in (302, 303, 401), (who, method, url)
                    if response.status_code != 401:
                        assert response.headers["location"].startswith("/login"), (who, url)
                else:
                    assert response.status_code == 403, (who, method, url, response.status_code)
            assert await snapshot() == before, who
    assert not await User.exists().where(User.email == created)
