"""The public pages, htmx partials, language switch, demo seed and staff command (issue 2)."""

from __future__ import annotations

import datetime
import subprocess
import sys

import pytest

from backend.services.availability import OSLO, availability_at
from backend.services.catalog import seed_demo_catalog
from backend.services.demo import DEMO_PASSWORD, seed_demo
from backend.tables import Company, OutboxMail, PriceList, User
from tests.support import PASSWORD, PRODUCTION_ENV, login, new_email, register


async def test_home_shows_the_three_alternatives_with_prices_and_hours(client):
    await seed_demo_catalog()
    prices = await PriceList.objects().first()
    prices.hourly_rate_ore = 123_450
    await prices.save()

    html = (await client.get("/")).text

    assert "Alternativ 1: Fri support" in html
    assert "Alternativ 2: Tidskonto" in html
    assert "Alternativ 3: Uten avtale" in html
    assert "6 måneder" in html and "1 år" in html
    assert "1\xa0234,50\xa0kr" in html  # the admin's hourly rate, formatted the Norwegian way
    assert "hverdager 08:00–16:00" in html
    assert "Support er åpen nå." in html or "Support er stengt nå." in html
    assert "Autodesk Inventor" in html


async def test_htmx_navigation_gets_only_the_main_region(client):
    response = await client.get("/register", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text and "<nav" not in response.text
    assert "<title>Registrer firma · Supportportalen</title>" in response.text
    assert 'id="register-form"' in response.text
    assert "HX-Request" in response.headers["vary"]
    # The same URL loaded on its own is a whole page.
    whole = await client.get("/register")
    assert whole.text.startswith("<!doctype html>") and 'id="register-form"' in whole.text


async def test_history_restore_gets_the_whole_page(client):
    response = await client.get(
        "/register", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert response.text.startswith("<!doctype html>")


async def test_english_switch_translates_pages_and_messages(client):
    switch = await client.get("/language/en?next=/register", follow_redirects=False)
    assert switch.status_code == 303 and switch.headers["location"] == "/register"
    page = await client.get("/register")
    assert '<html lang="en">' in page.text
    assert "Register company" in page.text
    back = await client.get("/language/nb?next=//evil.example", follow_redirects=False)
    assert back.headers["location"] == "/"
    assert '<html lang="nb">' in (await client.get("/")).text


async def test_the_language_link_returns_to_the_page_it_is_on(client):
    page = (await client.get("/register")).text
    assert 'href="/language/en?next=/register"' in page
    await client.get("/language/en")
    assert 'href="/language/nb?next=/login"' in (await client.get("/login")).text


async def test_english_error_messages(client):
    await client.get("/language/en")
    from tests.support import post_form, registration_form

    response = await post_form(client, "/register", registration_form(password="kort"))
    assert response.status_code == 422
    assert "at least 10 characters" in response.text


async def test_dashboard_shows_company_superuser_and_no_agreement(client):
    form = await register(client)
    html = (await client.get("/portal")).text
    number = form["org_number"]
    assert f"{number[:3]} {number[3:6]} {number[6:]}" in html
    assert "Kari Nordmann" in html and form["email"] in html
    assert "73 12 34 56" in html
    assert "Ingen avtale ennå." in html


async def test_demo_seed_is_idempotent_and_its_accounts_sign_in(client, other_client):
    first = await seed_demo()
    second = await seed_demo()
    assert first == second
    assert await Company.count().where(Company.name == "Demo Mekanikk AS") == 1
    assert await User.count().where(User.email.like("%@demo.no")) == 4
    # The colleague invited once, however often the seed runs: one invitation, one mail.
    assert await OutboxMail.count().where(OutboxMail.recipient == "kollega@demo.no") == 1
    member = await login(other_client, "medlem@demo.no", DEMO_PASSWORD)
    assert member.headers["location"] == "/portal"
    response = await login(client, "superbruker@demo.no", DEMO_PASSWORD)
    assert response.headers["location"] == "/portal"
    assert "Demo Mekanikk AS" in (await client.get("/portal")).text


async def test_demo_is_never_on_in_production():
    from backend.config import load_settings

    settings = load_settings({**PRODUCTION_ENV, "PORTAL_DEMO": "1"})
    assert settings.demo is False


def test_production_requires_a_secret_key():
    from backend.config import ConfigError, load_settings

    with pytest.raises(ConfigError):
        load_settings({"PORTAL_ENV": "production"})


def test_create_staff_command(tmp_path):
    email = new_email("tekniker")
    command = [
        sys.executable,
        "-m",
        "backend.cli",
        "create-staff",
        "--email",
        email,
        "--name",
        "Tor Tekniker",
        "--role",
        "technician",
        "--password-stdin",
    ]
    done = subprocess.run(
        command, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert f"Created technician {email}" in done.stdout

    again = subprocess.run(
        command, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 1
    assert "Det finnes allerede en bruker" in again.stderr

    weak = subprocess.run(
        [*command[:5], new_email(), *command[6:]],
        input="kort\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert weak.returncode == 1
    assert "minst 10 tegn" in weak.stderr


async def test_created_staff_signs_in_to_the_staff_console(client):
    from backend.services.users import create_staff

    email = new_email("admin")
    await create_staff(email=email, name="Ada Admin", role="admin", password=PASSWORD)
    response = await login(client, email)
    assert response.headers["location"] == "/staff"


def oslo(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=OSLO)


@pytest.mark.parametrize(
    ("moment", "open_now", "next_opening"),
    [
        (oslo(2026, 11, 23, 7, 59), False, oslo(2026, 11, 23, 8, 0)),  # Monday morning
        (oslo(2026, 11, 23, 8, 0), True, None),
        (oslo(2026, 11, 23, 15, 59), True, None),
        (oslo(2026, 11, 23, 16, 0), False, oslo(2026, 11, 24, 8, 0)),
        (oslo(2026, 11, 28, 12, 0), False, oslo(2026, 11, 30, 8, 0)),  # Saturday
        (oslo(2026, 5, 15, 17, 0), False, oslo(2026, 5, 18, 8, 0)),  # Friday before 17 May
        (oslo(2027, 5, 17, 10, 0), False, oslo(2027, 5, 18, 8, 0)),  # 17 May on a Monday
        (oslo(2026, 4, 6, 10, 0), False, oslo(2026, 4, 7, 8, 0)),  # Easter Monday
        (oslo(2026, 5, 14, 10, 0), False, oslo(2026, 5, 15, 8, 0)),  # Ascension Day
        (oslo(2026, 12, 23, 16, 30), False, oslo(2026, 12, 28, 8, 0)),  # 24th, Christmas
        (oslo(2026, 12, 30, 16, 0), False, oslo(2027, 1, 4, 8, 0)),  # 31st, New Year, weekend
        (oslo(2026, 3, 29, 9, 0), False, oslo(2026, 3, 30, 8, 0)),  # DST switch (Sunday)
    ],
)
def test_support_hours(moment, open_now, next_opening):
    result = availability_at(moment.astimezone(datetime.UTC))
    assert result.open_now is open_now
    assert result.next_opening == next_opening
