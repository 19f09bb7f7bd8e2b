"""Update advisories (issue 13): the reseller tells each customer, per covered product, which
new versions and patches are safe to install.

Staff publish an advisory for a product (a title such as "Inventor 2027.1 Update", a verdict,
a summary, the details, the versions it applies to), revise it (each revision kept and dated:
the verdict history) and withdraw it. The advisory row repeats its latest revision's number and
verdict, written in the same transaction, so a list reads one row per advisory.

Who sees what: anyone sees the titles and verdicts of the advisories in force (the public
list); a company's own pages list the advisories for the products its active agreements
cover (an active plan or unexpired minutes, coverage.covered_products), and only there are
the summary and the details shown. A withdrawn advisory stays on the company's list marked
withdrawn (someone may have acted on it), with no verdict in force; the public list and the
dashboard leave it out.
"""

from __future__ import annotations

import datetime
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import msgspec

from backend.db import date_parameter, fetch, is_unique_violation, json_rows, write_transaction
from backend.i18n import N_, gettext
from backend.services import (
    api_tokens,
    audit,
    business,
    catalog,
    clock,
    coverage,
    outbox,
    policy,
    validation,
)
from backend.services.errors import NotFound, ValidationFailed
from backend.services.validation import FieldError
from backend.tables import (
    Advisory,
    AdvisoryFeed,
    AdvisoryRevision,
    AdvisoryUnfollow,
    AuditKind,
    Company,
    Role,
    User,
    Verdict,
)

VERDICT_LABELS: dict[str, str] = {
    Verdict.safe: N_("Trygt å installere"),
    Verdict.wait: N_("Vent"),
    Verdict.known_problems: N_("Kjente problemer"),
    Verdict.do_not_install: N_("Ikke installer"),
}
VERDICT_INVALID = N_("Velg en av vurderingene.")
PRODUCT_UNKNOWN = N_("Velg et produkt fra katalogen.")
TITLE_TAKEN = N_(
    "Det finnes allerede et råd med denne tittelen for produktet. Revider det i stedet."
)
WITHDRAWN = N_("Rådet er trukket tilbake og kan ikke revideres.")
CHANGED_MEANWHILE = N_("Noen reviderte rådet samtidig. Se historikken og prøv igjen.")
REASON_REQUIRED = N_("Skriv en begrunnelse.")
# A ticket opened from an advisory starts with this subject (the superuser may change it).
TICKET_SUBJECT = N_("Oppdateringsråd: %(title)s")
MAX_DETAILS = 20_000


def _verdict(value: str) -> str:
    if value not in VERDICT_LABELS:
        raise FieldError(VERDICT_INVALID)
    return value


VerdictField = validation.field(
    str, max_length=20, required=VERDICT_INVALID, message=VERDICT_INVALID, check=_verdict
)
Details = validation.field(
    str, clean=validation.strip, max_length=MAX_DETAILS, message=N_("Detaljene er for lange.")
)


class RevisionForm(msgspec.Struct):
    """What a revision says: the verdict, a short summary, the details (what breaks, the
    workaround, which add-ins or post-processors are affected), the versions it applies to."""

    verdict: VerdictField
    summary: validation.line(500, required=N_("Skriv et kort sammendrag."))
    details: Details = ""
    applies_to: validation.line(200, optional=True) = ""


class AdvisoryForm(msgspec.Struct):
    """A new advisory: the product and the version or patch (the title), and its first
    revision."""

    product: validation.line(40, required=PRODUCT_UNKNOWN)
    title: validation.line(200, required=N_("Skriv tittelen, f.eks. «Inventor 2027.1 Update»."))
    verdict: VerdictField
    summary: validation.line(500, required=N_("Skriv et kort sammendrag."))
    details: Details = ""
    applies_to: validation.line(200, optional=True) = ""


class WithdrawForm(msgspec.Struct):
    reason: validation.line(500, required=REASON_REQUIRED)


@dataclass(frozen=True)
class AdvisoryView:
    """An advisory with its latest revision, as the pages show it."""

    id: int
    product_code: str
    product_name: str
    title: str
    verdict: str
    revision: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    withdrawn_at: datetime.datetime | None
    withdrawn_reason: str
    summary: str
    details: str
    applies_to: str

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None


@dataclass(frozen=True)
class RevisionView:
    number: int
    verdict: str
    summary: str
    details: str
    applies_to: str
    author_name: str
    created_at: datetime.datetime


@dataclass(frozen=True)
class CompanyAdvisory:
    """An advisory as a company's page shows it: with the details only when `covered`."""

    advisory: AdvisoryView
    covered: bool


def new_form_values(product: str = "") -> dict[str, str]:
    return {"product": product, "verdict": Verdict.wait.value}


def revision_form_values(advisory: AdvisoryView) -> dict[str, str]:
    """The revise form filled in with the latest revision."""
    return {
        "verdict": advisory.verdict,
        "summary": advisory.summary,
        "details": advisory.details,
        "applies_to": advisory.applies_to,
    }


def _audited(advisory: Advisory | AdvisoryView, revision: Any) -> dict:
    return {
        "product": advisory.product_code,
        "title": advisory.title,
        "revision": advisory.revision,
        "verdict": revision.verdict,
        "summary": revision.summary,
        "applies_to": revision.applies_to,
    }


def _same(advisory: AdvisoryView, form: RevisionForm | AdvisoryForm) -> bool:
    return (advisory.verdict, advisory.summary, advisory.details, advisory.applies_to) == (
        form.verdict,
        form.summary,
        form.details,
        form.applies_to,
    )


# --- reading -------------------------------------------------------------------------------

_SELECT = (
    "SELECT a.id, a.product_code, a.title, a.verdict, a.revision, a.created_at, a.updated_at,"
    " a.withdrawn_at, a.withdrawn_reason, r.summary, r.details, r.applies_to"
    " FROM advisory AS a JOIN advisory_revision AS r"
    " ON r.advisory = a.id AND r.number = a.revision"
)
_NEWEST_FIRST = " ORDER BY a.created_at DESC, a.id DESC"


def _as_datetime(value: Any) -> Any:
    """SQLite's raw rows may give a timestamp as text."""
    if isinstance(value, str):
        parsed = datetime.datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
    return value


async def _views(where: str = "", *args: Any) -> list[AdvisoryView]:
    rows = await Advisory.raw(_SELECT + where + _NEWEST_FIRST, *args)
    names = {p.code: p.name for p in await catalog.all_offered_products()}
    return [
        AdvisoryView(
            id=row["id"],
            product_code=row["product_code"],
            product_name=names.get(row["product_code"], row["product_code"]),
            title=row["title"],
            verdict=row["verdict"],
            revision=row["revision"],
            created_at=_as_datetime(row["created_at"]),
            updated_at=_as_datetime(row["updated_at"]),
            withdrawn_at=_as_datetime(row["withdrawn_at"]),
            withdrawn_reason=row["withdrawn_reason"],
            summary=row["summary"],
            details=row["details"],
            applies_to=row["applies_to"],
        )
        for row in rows
    ]


async def get_advisory(advisory_id: int) -> AdvisoryView:
    """One advisory with its latest revision, or NotFound."""
    found = await _views(" WHERE a.id = {}", advisory_id)
    if not found:
        raise NotFound(f"advisory {advisory_id}")
    return found[0]


async def all_advisories(user: User) -> list[AdvisoryView]:
    """Every advisory, withdrawn ones too, newest first (the staff list)."""
    policy.require(user, "publish_advisories")
    return await _views()


async def history(advisory_id: int) -> list[RevisionView]:
    """Every revision of an advisory, newest first, with who wrote it: the verdict history."""
    rows = await (
        AdvisoryRevision.select(
            *AdvisoryRevision.all_columns(), AdvisoryRevision.author.name.as_alias("by")
        )
        .where(AdvisoryRevision.advisory == advisory_id)
        .order_by(AdvisoryRevision.number, ascending=False)
    )
    return [
        RevisionView(
            number=row["number"],
            verdict=row["verdict"],
            summary=row["summary"],
            details=row["details"],
            applies_to=row["applies_to"],
            author_name=row["by"] or "",
            created_at=row["created_at"],
        )
        for row in rows
    ]


async def covered_codes(company_id: int) -> set[str]:
    """The products the company's active agreements cover today (a plan or a time account)."""
    by_plan, by_account = await coverage.covered_products(company_id, clock.today())
    return by_plan | by_account


async def for_company(user: User) -> list[AdvisoryView]:
    """The advisories for the products the user's company is covered for, newest first,
    withdrawn ones too (marked so on the page)."""
    policy.require(user, "view_company")
    codes = sorted(await covered_codes(user.company))
    if not codes:
        return []
    placeholders = ", ".join("{}" for _ in codes)
    return await _views(f" WHERE a.product_code IN ({placeholders})", *codes)


@dataclass(frozen=True)
class CompanyLists:
    """A company's advisories page: those for its covered products (withdrawn ones marked),
    and the others in force, whose titles and verdicts anyone may see."""

    covered: list[AdvisoryView]
    others: list[AdvisoryView]


async def company_lists(user: User) -> CompanyLists:
    policy.require(user, "view_company")
    codes = await covered_codes(user.company)
    every = await _views()
    return CompanyLists(
        covered=[a for a in every if a.product_code in codes],
        others=[a for a in every if a.product_code not in codes and not a.withdrawn],
    )


def ticket_link(advisory: AdvisoryView) -> str:
    """The new-ticket form filled in with the advisory's product and a subject naming it, in
    the reader's language."""
    subject = gettext(TICKET_SUBJECT) % {"title": advisory.title}
    return "/portal/tickets/new?" + urlencode(
        {"product": advisory.product_code, "subject": subject[:200]}
    )


async def company_advisory(user: User, advisory_id: int) -> CompanyAdvisory:
    """One advisory for a company's page: the details only when an active agreement of the
    company covers its product today."""
    policy.require(user, "view_company")
    advisory = await get_advisory(advisory_id)
    return CompanyAdvisory(advisory, advisory.product_code in await covered_codes(user.company))


async def public_list() -> list[AdvisoryView]:
    """The advisories in force, for anyone: the page shows titles and verdicts only."""
    return await _views(" WHERE a.withdrawn_at IS NULL")


# --- the dashboard ---------------------------------------------------------------------------

DASHBOARD_LATEST = 5


class DashboardAdvisory(msgspec.Struct, frozen=True):
    id: int
    title: str
    product_code: str
    verdict: str


def dashboard_json(engine: Any, company: str, today: str) -> str:
    """The dashboard's advisories as one column of its single query (services/overview.py):
    every `do_not_install` in force for the company's covered products, and the latest
    DASHBOARD_LATEST advisories in force for them; withdrawn ones are left out. Read back with
    `from_json(..., list[DashboardAdvisory])`."""
    covered = coverage.covered_products_sql(company, today)
    in_force = f"ad.withdrawn_at IS NULL AND ad.product_code IN {covered}"
    latest = (
        f"SELECT ad.id FROM advisory AS ad WHERE {in_force}"
        f" ORDER BY ad.created_at DESC, ad.id DESC LIMIT {DASHBOARD_LATEST}"
    )
    select = (
        "SELECT ad.id, ad.title, ad.product_code, ad.verdict,"
        f" CASE WHEN ad.verdict = '{Verdict.do_not_install.value}' THEN 0 ELSE 1 END AS rank,"
        " ad.created_at FROM advisory AS ad"
        f" WHERE {in_force} AND (ad.verdict = '{Verdict.do_not_install.value}'"
        f" OR ad.id IN ({latest}))"
        " ORDER BY rank, ad.created_at DESC, ad.id DESC"
    )
    return json_rows(
        engine,
        select,
        ("id", "title", "product_code", "verdict"),
        order_by="rank, created_at DESC, id DESC",
    )


# --- following and mail --------------------------------------------------------------------

MAIL_TEMPLATE = "advisory"


class FollowForm(msgspec.Struct):
    """The covered products whose advisories the superuser wants mailed (the rest not)."""

    products: list[validation.field(str, max_length=40)] = msgspec.field(default_factory=list)


@dataclass(frozen=True)
class Follows:
    """The company's covered products (code, name), and which of them it follows."""

    products: list[tuple[str, str]]
    followed: set[str]


async def follows(user: User) -> Follows:
    """Every covered product is followed unless the superuser chose it off."""
    policy.require(user, "view_company")
    codes = await covered_codes(user.company)
    names = {p.code: p.name for p in await catalog.all_offered_products()}
    unfollowed = {
        row["product_code"]
        for row in await AdvisoryUnfollow.select(AdvisoryUnfollow.product_code).where(
            AdvisoryUnfollow.company == user.company
        )
    }
    products = sorted(((c, names.get(c, c)) for c in codes), key=lambda p: p[1])
    return Follows(products=products, followed=codes - unfollowed)


async def set_follows(user: User, values: dict) -> Follows:
    """The superuser's choice: the covered products not checked are not mailed about. A
    product covered later is followed until chosen off. Codes not covered are ignored."""
    policy.require(user, "follow_advisories")
    form = validation.convert(values, FollowForm)
    codes = await covered_codes(user.company)
    off = codes - set(form.products)
    async with write_transaction(AdvisoryUnfollow._meta.db):
        await AdvisoryUnfollow.delete().where(AdvisoryUnfollow.company == user.company)
        if off:
            await AdvisoryUnfollow.insert(
                *(AdvisoryUnfollow(company=user.company, product_code=c) for c in sorted(off))
            )
    return await follows(user)


def _followers_sql(engine: Any) -> str:
    """The superusers of the active companies that cover the product today and follow it."""
    covered = coverage.covered_products_sql("c.id", "p.today")
    return (
        "SELECT c.id AS company, c.name AS company_name, u.email, u.language"
        " FROM company AS c"
        f" CROSS JOIN (SELECT {date_parameter(engine)} AS today) AS p"
        f" JOIN portal_user AS u ON u.company = c.id AND u.role = '{Role.superuser.value}'"
        f" WHERE c.active AND {{}} IN {covered}"
        " AND NOT EXISTS (SELECT 1 FROM advisory_unfollow AS f"
        " WHERE f.company = c.id AND f.product_code = {})"
        " ORDER BY c.id"
    )


async def _mail_followers(advisory: AdvisoryView, *, changed_from: str | None) -> int:
    """One mail per following company for this revision of the advisory (its key names the
    advisory, the revision and the company: sent once however often this runs). Called inside
    the transaction that publishes or changes the verdict, so mail goes only if it commits.
    `changed_from`: the verdict before (None when just published)."""
    rows = await fetch(
        Company,
        _followers_sql(Company._meta.db),
        clock.today(),
        advisory.product_code,
        advisory.product_code,
    )
    seller = (await business.current()).seller
    queued = 0
    for row in rows:
        queued += await outbox.queue(
            row["email"],
            MAIL_TEMPLATE,
            {
                "advisory": advisory,
                "company_name": row["company_name"],
                "changed_from": changed_from,
                "verdict_labels": VERDICT_LABELS,
            },
            f"advisory:{advisory.id}:{advisory.revision}:{row['company']}",
            language=row["language"] or "nb",
            seller=seller,
        )
    return queued


# --- the private Atom feed ---------------------------------------------------------------------

# What a feed token looks like (secrets.token_urlsafe(32)); anything else names no feed.
_FEED_TOKEN = re.compile(r"[A-Za-z0-9_-]{40,60}", re.ASCII)


async def has_feed(user: User) -> bool:
    policy.require(user, "view_company")
    return await AdvisoryFeed.exists().where(AdvisoryFeed.company == user.company)


async def new_feed_token(user: User) -> str:
    """A new private feed URL's token for the company, replacing the one before (which stops
    working at once); only its SHA-256 is kept, so it is shown this once."""
    policy.require(user, "manage_api_tokens")
    token = secrets.token_urlsafe(32)
    async with write_transaction(AdvisoryFeed._meta.db):
        await AdvisoryFeed.delete().where(AdvisoryFeed.company == user.company)
        await AdvisoryFeed(
            company=user.company,
            token_hash=api_tokens.hash_secret(token),
            created_at=clock.now(),
            created_by=user.id,
        ).save()
    return token


async def feed_for_token(token: str) -> tuple[Company, list[AdvisoryView]]:
    """The company a feed token names (an active one) and its advisories, or NotFound."""
    if not _FEED_TOKEN.fullmatch(token or ""):
        raise NotFound("no such feed")
    row = (
        await AdvisoryFeed.select(AdvisoryFeed.company)
        .where(AdvisoryFeed.token_hash == api_tokens.hash_secret(token))
        .first()
    )
    company = None if row is None else await Company.objects().get(Company.id == row["company"])
    if company is None or not company.active:
        raise NotFound("no such feed")
    codes = sorted(await covered_codes(company.id))
    if not codes:
        return company, []
    placeholders = ", ".join("{}" for _ in codes)
    return company, await _views(f" WHERE a.product_code IN ({placeholders})", *codes)


# --- writing -------------------------------------------------------------------------------


async def publish(user: User, values: dict) -> AdvisoryView:
    """A new advisory and its first revision, with one audit entry. The same advisory posted
    twice (a double submit) is the one already there; another advisory in force with the same
    title for the product is refused (revise that one instead)."""
    policy.require(user, "publish_advisories")
    found: dict[str, str] = {}
    product = validation.collapse(str(values.get("product", "")))
    if product and not await catalog.all_known([product]):
        found["product"] = PRODUCT_UNKNOWN
    form = validation.convert(values, AdvisoryForm, errors=found)
    try:
        return await _publish_once(user, form, values)
    except Exception as error:
        # The same title published at the same moment (unique index advisory_one_in_force):
        # outside the failed transaction, the other one is there to compare with.
        if not is_unique_violation(error):
            raise
    return await _publish_once(user, form, values)


async def _publish_once(user: User, form: AdvisoryForm, values: dict) -> AdvisoryView:
    async with write_transaction(Advisory._meta.db):
        same_title = await Advisory.select(Advisory.id).where(
            (Advisory.product_code == form.product)
            & (Advisory.title == form.title)
            & Advisory.withdrawn_at.is_null()
        )
        if same_title:
            existing = await get_advisory(same_title[0]["id"])
            if existing.revision == 1 and _same(existing, form):
                return existing
            raise ValidationFailed({"title": TITLE_TAKEN}, values)
        now = clock.now()
        advisory = Advisory(
            product_code=form.product,
            title=form.title,
            verdict=form.verdict,
            revision=1,
            created_at=now,
            updated_at=now,
            created_by=user.id,
        )
        await advisory.save()
        await AdvisoryRevision(
            advisory=advisory.id,
            number=1,
            verdict=form.verdict,
            summary=form.summary,
            details=form.details,
            applies_to=form.applies_to,
            author=user.id,
            created_at=now,
        ).save()
        await audit.record(
            user,
            AuditKind.advisory_published,
            subject=f"advisory:{advisory.id}",
            after=_audited(advisory, form),
        )
        published = await get_advisory(advisory.id)
        await _mail_followers(published, changed_from=None)
    return published


async def revise(user: User, advisory_id: int, values: dict) -> AdvisoryView:
    """A new revision (kept, dated, numbered after the last) that becomes what the advisory
    says, with one audit entry. A revision that says what the latest says already (a double
    submit) adds nothing. A withdrawn advisory is not revised."""
    policy.require(user, "publish_advisories")
    before = await get_advisory(advisory_id)
    form = validation.convert(values, RevisionForm)
    if before.withdrawn:
        raise ValidationFailed({"form": WITHDRAWN}, values)
    if _same(before, form):
        return before
    try:
        async with write_transaction(Advisory._meta.db):
            number = before.revision + 1
            now = clock.now()
            # Only from the revision this form was read from: a revision saved in between
            # makes this one fail instead of being lost under it.
            moved = (
                await Advisory.update(
                    {
                        Advisory.revision: number,
                        Advisory.verdict: form.verdict,
                        Advisory.updated_at: now,
                    }
                )
                .where((Advisory.id == advisory_id) & (Advisory.revision == before.revision))
                .returning(Advisory.id)
            )
            if not moved:
                raise ValidationFailed({"form": CHANGED_MEANWHILE}, values)
            await AdvisoryRevision(
                advisory=advisory_id,
                number=number,
                verdict=form.verdict,
                summary=form.summary,
                details=form.details,
                applies_to=form.applies_to,
                author=user.id,
                created_at=now,
            ).save()
            await audit.record(
                user,
                AuditKind.advisory_revised,
                subject=f"advisory:{advisory_id}",
                before=_audited(before, before),
                after={**_audited(before, form), "revision": number},
            )
            # Followers hear of a new verdict, not of a revision that keeps it.
            if form.verdict != before.verdict:
                await _mail_followers(await get_advisory(advisory_id), changed_from=before.verdict)
    except Exception as error:
        if is_unique_violation(error):
            raise ValidationFailed({"form": CHANGED_MEANWHILE}, values) from None
        raise
    return await get_advisory(advisory_id)


async def withdraw(user: User, advisory_id: int, values: dict) -> AdvisoryView:
    """Withdraw an advisory, with a reason and one audit entry; its revisions are kept. An
    advisory withdrawn already stays as it was (a double submit)."""
    policy.require(user, "publish_advisories")
    before = await get_advisory(advisory_id)
    form = validation.convert(values, WithdrawForm)
    if before.withdrawn:
        return before
    async with write_transaction(Advisory._meta.db):
        done = (
            await Advisory.update(
                {Advisory.withdrawn_at: clock.now(), Advisory.withdrawn_reason: form.reason}
            )
            .where((Advisory.id == advisory_id) & Advisory.withdrawn_at.is_null())
            .returning(Advisory.id)
        )
        if done:
            await audit.record(
                user,
                AuditKind.advisory_withdrawn,
                subject=f"advisory:{advisory_id}",
                before={"title": before.title, "verdict": before.verdict},
                after={"withdrawn": True},
                reason=form.reason,
            )
    return await get_advisory(advisory_id)
