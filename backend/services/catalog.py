"""What is sold and at what price (SPEC §2). An admin edits it in the back office (issue
12); the demo seed fills it.

Prices are versions (PriceList rows), each in force from its `valid_from` (an Oslo date)
until the next one's: `in_force` is the one rule that picks the version of a day, and every
reader of prices asks it (the offer, pricing, coverage's hourly rate). A version is only
added, from today or a later day, never changed; an order and a time entry store the amount
they were priced at, so a new version never changes a past amount.

Products are added, renamed, reordered, deactivated and activated again, each with an
audit entry. An inactive product is not offered for new purchases (the offer lists active
products only) but stays on the agreements and lots that name it, which still cover it.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from backend.db import (
    fetch,
    from_json,
    is_unique_violation,
    json_rows,
    lock_name,
    lock_row,
    write_transaction,
)
from backend.i18n import N_
from backend.services import audit, business, clock, money, policy, validation
from backend.services.errors import NotFound, ValidationFailed
from backend.services.validation import FieldError
from backend.tables import AuditKind, PriceList, Product, User
from backend.tables.catalog import FIRST_VALID_FROM

DEMO_PRODUCTS = (
    ("inventor", "Autodesk Inventor"),
    ("acad-mech", "AutoCAD Mechanical"),
    ("vault", "Autodesk Vault"),
    ("fusion", "Autodesk Fusion"),
    ("inventor-cam", "Inventor CAM"),
)
DEMO_PRICES = {
    "plan_price_per_product_ore": 450_000,  # 4 500 kr per product per 6 months
    "prepaid_hour_price_ore": 110_000,  # 1 100 kr per prepaid hour
    "hourly_rate_ore": 135_000,  # 1 350 kr per hour without agreement
    "topup_packs": "5,10,20",
}


class OfferedProduct(msgspec.Struct, frozen=True):
    """A product on sale, as pages and prices read it (a struct: a Piccolo row object costs
    more to make than the query that reads it)."""

    id: int
    code: str
    name: str
    position: int
    active: bool = True


class Prices(msgspec.Struct, frozen=True):
    """One version of the price list."""

    id: int
    plan_price_per_product_ore: int
    prepaid_hour_price_ore: int
    hourly_rate_ore: int
    topup_packs: str
    valid_from: datetime.date = FIRST_VALID_FROM


def in_force(versions: Sequence[Prices], day: datetime.date) -> Prices | None:
    """The prices in force on `day`: the version with the latest `valid_from` on or before
    it; of two from the same day, the one added last. None before the first version."""
    found: Prices | None = None
    for version in versions:
        if version.valid_from <= day and (
            found is None or (version.valid_from, version.id) > (found.valid_from, found.id)
        ):
            found = version
    return found


@dataclass(frozen=True)
class Offer:
    products: list[OfferedProduct]
    prices: Prices | None  # in force today
    # Every version, oldest first (a handful a year): the next prices, the history.
    versions: tuple[Prices, ...] = ()
    # The seller, the closed days, the low-balance default (services/business.py), read in
    # the same statement: the pages that show the offer show whether support is open.
    business: business.Business = field(default_factory=business.defaults)

    @property
    def upcoming(self) -> list[Prices]:
        """The versions that come into force after today, soonest first."""
        today = clock.today()
        return sorted(
            (v for v in self.versions if v.valid_from > today), key=lambda v: (v.valid_from, v.id)
        )

    @property
    def topup_packs(self) -> list[int]:
        if self.prices is None:
            return []
        return [int(h) for h in self.prices.topup_packs.split(",") if h.strip()]


async def current_offer() -> Offer:
    """The active products in the catalog's order and the prices in force today, in one
    statement."""
    rows = await fetch(Product, f"SELECT {offer_columns(Product._meta.db)}")
    return offer_from_row(rows[0])


async def price_versions() -> list[Prices]:
    """Every version of the price list, oldest first."""
    columns = ", ".join(Prices.__struct_fields__)
    rows = await fetch(
        PriceList, f"SELECT {columns} FROM catalog_price_list ORDER BY valid_from, id"
    )
    return [msgspec.convert(dict(row), Prices) for row in rows]


async def prices_on(day: datetime.date) -> Prices | None:
    """The prices in force on `day` (`in_force`): what support given that day is billed at."""
    return in_force(await price_versions(), day)


@functools.cache
def offer_columns(engine) -> str:
    """The offer as columns (`products`, `prices`: every version, `business`) of a page's
    single query; read back with `offer_from_row`."""
    # `active` is not read: only active products are on sale (and SQLite's JSON says 1).
    product_columns = [name for name in OfferedProduct.__struct_fields__ if name != "active"]
    price_columns = list(Prices.__struct_fields__)
    products = json_rows(
        engine,
        f"SELECT {', '.join(product_columns)} FROM catalog_product WHERE active"
        " ORDER BY position, id",
        product_columns,
        order_by="position, id",
    )
    prices = json_rows(
        engine,
        f"SELECT {', '.join(price_columns)} FROM catalog_price_list ORDER BY valid_from, id",
        price_columns,
        order_by="valid_from, id",
    )
    return (
        f"{products} AS products, {prices} AS prices, {business.settings_json(engine)} AS business"
    )


def offer_from_row(row: dict, on_date: datetime.date | None = None) -> Offer:
    """The offer of `offer_columns`, priced as on `on_date` (today by default)."""
    versions = tuple(from_json(row["prices"], list[Prices]))
    return Offer(
        products=from_json(row["products"], list[OfferedProduct]),
        prices=in_force(versions, on_date or clock.today()),
        versions=versions,
        business=business.from_column(row.get("business")),
    )


async def seed_demo_catalog() -> None:
    """Idempotent: fills an empty catalog, never overwrites what an admin has set."""
    if not await Product.exists():
        await Product.insert(
            *(
                Product(code=code, name=name, position=index)
                for index, (code, name) in enumerate(DEMO_PRODUCTS)
            )
        )
    if not await PriceList.exists():
        await PriceList(**DEMO_PRICES).save()


async def product_names(codes: list[str]) -> list[str]:
    """Names for product codes, in the catalog's order (unknown codes are shown as they are)."""
    products = (
        await Product.objects().where(Product.code.is_in(codes or [""])).order_by(Product.position)
    )
    names = {p.code: p.name for p in products}
    return [names.get(code, code) for code in codes if code]


async def all_offered_products() -> list[OfferedProduct]:
    """Every product, inactive ones too, in the catalog's order."""
    rows = (
        await Product.select(
            Product.id, Product.code, Product.name, Product.position, Product.active
        )
        .order_by(Product.position)
        .order_by(Product.id)
    )
    return [OfferedProduct(**row) for row in rows]


async def all_known(codes: list[str]) -> bool:
    """Whether every code names a product in the catalog."""
    known = await Product.select(Product.code).where(Product.code.is_in(codes or [""]))
    return {row["code"] for row in known} >= set(codes)


def products_json(engine) -> str:
    """Every product's code and name (inactive ones too: old lots and plans name them), in
    the catalog's order, as one column of a page's single query."""
    return json_rows(
        engine,
        "SELECT p.code, p.name, p.position, p.id FROM catalog_product AS p"
        " ORDER BY p.position, p.id",
        ("code", "name", "position", "id"),
        order_by="position, id",
    )


# --- the back office: price versions ---------------------------------------------------------

MAX_PRICE_ORE = 10_000_000 * 100  # ten million kroner: a typo, not a price
PRICE_MESSAGE = N_("Skriv prisen i kroner, f.eks. 1 350 eller 1 350,50.")
PRICE_NOT_POSITIVE = N_("Prisen må være større enn 0 kr.")
PACKS_MESSAGE = N_(
    "Skriv pakkene som hele timer fra 1 til 200, skilt med komma (f.eks. 5, 10, 20)."
)
VALID_FROM_MESSAGE = N_("Skriv datoen som åååå-mm-dd.")
VALID_FROM_PAST = N_("Nye priser kan gjelde fra i dag eller en senere dag, ikke tilbake i tid.")
REASON_REQUIRED = N_("Skriv en begrunnelse.")


def kroner_to_ore(value: str) -> int:
    """A price typed in kroner (`money.parse_nok`), in whole øre; FieldError with the form's
    message otherwise."""
    if value.strip().startswith(("-", "−")):
        raise FieldError(PRICE_NOT_POSITIVE)
    ore = money.parse_nok(value)
    if ore is None or ore > MAX_PRICE_ORE:
        raise FieldError(PRICE_MESSAGE)
    if ore <= 0:
        raise FieldError(PRICE_NOT_POSITIVE)
    return ore


def format_kroner(ore: int) -> str:
    """Øre as the form shows them again: 135000 → "1350", 135050 → "1350,50"."""
    return f"{ore // 100}" if ore % 100 == 0 else f"{ore // 100},{ore % 100:02d}"


def topup_packs(value: str) -> str:
    """ "5, 10, 20" → "5,10,20": whole hours a top-up can be (pricing's 1–200), once each,
    smallest first; at least one."""
    # pricing reads the catalog: its bounds are imported when asked for.
    from backend.services.pricing import MAX_TOPUP_HOURS, MIN_TOPUP_HOURS

    hours: set[int] = set()
    for item in value.replace(";", ",").replace(" ", ",").split(","):
        if not item:
            continue
        number = validation.whole_number(item, MIN_TOPUP_HOURS, MAX_TOPUP_HOURS)
        if number is None:
            raise FieldError(PACKS_MESSAGE)
        hours.add(number)
    if not hours or len(hours) > 10:
        raise FieldError(PACKS_MESSAGE)
    return ",".join(str(h) for h in sorted(hours))


def _iso_date(value: str) -> str:
    try:
        datetime.date.fromisoformat(value.strip())
    except ValueError:
        raise FieldError(VALID_FROM_MESSAGE) from None
    return value.strip()


# Typed as kroner text; `kroner_to_ore` makes the form's value whole øre (an int).
Kroner = validation.field(
    str, max_length=40, required=PRICE_MESSAGE, message=PRICE_MESSAGE, check=kroner_to_ore
)


class PriceVersionForm(msgspec.Struct):
    """A new version of the price list: from which day, every price (in kroner, ex. MVA) and
    the top-up packs, and why."""

    valid_from: validation.field(
        str, min_length=1, max_length=20, required=VALID_FROM_MESSAGE, check=_iso_date
    )
    plan_price_per_product: Kroner
    prepaid_hour_price: Kroner
    hourly_rate: Kroner
    topup_packs: validation.field(
        str,
        min_length=1,
        max_length=100,
        required=PACKS_MESSAGE,
        message=PACKS_MESSAGE,
        check=topup_packs,
    )
    reason: validation.line(500, required=REASON_REQUIRED)


def price_form_values(prices: Prices | None, today: datetime.date) -> dict[str, str]:
    """The new-version form filled in with the prices in force, from today."""
    if prices is None:
        return {"valid_from": today.isoformat()}
    return {
        "valid_from": today.isoformat(),
        "plan_price_per_product": format_kroner(prices.plan_price_per_product_ore),
        "prepaid_hour_price": format_kroner(prices.prepaid_hour_price_ore),
        "hourly_rate": format_kroner(prices.hourly_rate_ore),
        "topup_packs": ", ".join(prices.topup_packs.split(",")),
    }


def _audited(prices: Prices | None) -> dict | None:
    if prices is None:
        return None
    return {
        "valid_from": prices.valid_from.isoformat(),
        "plan_price_per_product_ore": prices.plan_price_per_product_ore,
        "prepaid_hour_price_ore": prices.prepaid_hour_price_ore,
        "hourly_rate_ore": prices.hourly_rate_ore,
        "topup_packs": prices.topup_packs,
    }


def _same_prices(prices: Prices, form: PriceVersionForm) -> bool:
    return (
        prices.plan_price_per_product_ore,
        prices.prepaid_hour_price_ore,
        prices.hourly_rate_ore,
        prices.topup_packs,
    ) == (form.plan_price_per_product, form.prepaid_hour_price, form.hourly_rate, form.topup_packs)


async def add_price_version(admin: User, values: dict) -> Prices:
    """A new version of the prices, in force from its `valid_from` (today or later: a price
    is never changed back in time), with one audit entry: before, the version that was in
    force on that day; after, the new one. Every message at once, and nothing saved, when
    something does not hold. The prices already in force from that day change nothing and
    record nothing (a double submit)."""
    policy.require(admin, "manage_catalog")
    today = clock.today()
    found: dict[str, str] = {}
    try:
        if datetime.date.fromisoformat(str(values.get("valid_from", "")).strip()) < today:
            found["valid_from"] = VALID_FROM_PAST
    except ValueError:
        pass  # the field's own message
    form = validation.convert(values, PriceVersionForm, errors=found)
    valid_from = datetime.date.fromisoformat(form.valid_from)
    async with write_transaction(PriceList._meta.db):
        # Two submits at once: the second must see the first's version (and add nothing).
        await lock_name(PriceList, "catalog_price_list")
        before = in_force(await price_versions(), valid_from)
        if before is not None and _same_prices(before, form):
            # Prices in force already from that day (a form sent twice): no day changes.
            return before
        row = PriceList(
            plan_price_per_product_ore=form.plan_price_per_product,
            prepaid_hour_price_ore=form.prepaid_hour_price,
            hourly_rate_ore=form.hourly_rate,
            topup_packs=form.topup_packs,
            valid_from=valid_from,
            created_by=admin.id,
            created_at=clock.now(),
        )
        await row.save()
        added = Prices(
            id=row.id,
            plan_price_per_product_ore=row.plan_price_per_product_ore,
            prepaid_hour_price_ore=row.prepaid_hour_price_ore,
            hourly_rate_ore=row.hourly_rate_ore,
            topup_packs=row.topup_packs,
            valid_from=valid_from,
        )
        await audit.record(
            admin,
            AuditKind.price_changed,
            subject=f"price_list:{row.id}",
            before=_audited(before),
            after=_audited(added),
            reason=form.reason,
        )
    return added


@dataclass(frozen=True)
class PriceVersion:
    """One version as the history shows it."""

    prices: Prices
    created_at: datetime.datetime | None
    created_by_name: str
    state: str  # "past", "current" or "upcoming"


async def price_history() -> list[PriceVersion]:
    """Every version, newest first, with who added it and whether it is in force today."""
    rows = await (
        PriceList.select(*PriceList.all_columns(), PriceList.created_by.name.as_alias("by"))
        .order_by(PriceList.valid_from, ascending=False)
        .order_by(PriceList.id, ascending=False)
    )
    versions = [
        msgspec.convert({k: row[k] for k in Prices.__struct_fields__}, Prices) for row in rows
    ]
    current = in_force(versions, clock.today())
    today = clock.today()
    return [
        PriceVersion(
            prices=version,
            created_at=row["created_at"],
            created_by_name=row["by"] or "",
            state="current"
            if current is not None and version.id == current.id
            else "upcoming"
            if version.valid_from > today
            else "past",
        )
        for version, row in zip(versions, rows, strict=True)
    ]


# --- the back office: products ---------------------------------------------------------------

CODE_MESSAGE = N_("Koden kan ha små bokstaver a–z, sifre og bindestrek (høyst 40 tegn).")
CODE_TAKEN = N_("Det finnes allerede et produkt med denne koden.")
MAX_POSITION = 1000


def _code(value: str) -> str:
    code = value.strip().lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", code, re.ASCII):
        raise FieldError(CODE_MESSAGE)
    return code


def _zero_if_empty(value: str) -> str:
    return value.strip() or "0"


# The place in the catalog's order (smallest first); left empty, 0.
Position = validation.field(
    int,
    ge=0,
    le=MAX_POSITION,
    message=N_("Skriv et helt tall fra 0 til 1000."),
    clean=_zero_if_empty,
)


class NewProduct(msgspec.Struct):
    code: validation.field(
        str, max_length=60, required=CODE_MESSAGE, message=CODE_MESSAGE, min_length=1, check=_code
    )
    name: validation.line(120, required=N_("Skriv produktets navn."))
    reason: validation.line(500, required=REASON_REQUIRED)
    position: Position = 0


class ProductChange(msgspec.Struct):
    """Rename, move in the order, deactivate or activate again: the row's form."""

    name: validation.line(120, required=N_("Skriv produktets navn."))
    position: Position
    active: validation.field(int, ge=0, le=1, message=N_("Velg aktiv eller ikke aktiv."))
    reason: validation.line(500, required=REASON_REQUIRED)


def _product_audited(product: Product | dict) -> dict:
    get = product.get if isinstance(product, dict) else lambda name: getattr(product, name)
    return {
        "code": get("code"),
        "name": get("name"),
        "position": get("position"),
        "active": bool(get("active")),
    }


async def all_products() -> list[Product]:
    """Every product, inactive ones too, in the catalog's order."""
    return await Product.objects().order_by(Product.position).order_by(Product.id)


async def get_product(product_id: int) -> Product:
    product = await Product.objects().get(Product.id == product_id)
    if product is None:
        raise NotFound(f"no product {product_id}")
    return product


async def add_product(admin: User, form: NewProduct) -> Product:
    """A new product, on sale at once, with one audit entry."""
    policy.require(admin, "manage_catalog")
    try:
        async with write_transaction(Product._meta.db):
            if await Product.exists().where(Product.code == form.code):
                raise ValidationFailed({"code": CODE_TAKEN})
            product = Product(code=form.code, name=form.name, position=form.position)
            await product.save()
            await audit.record(
                admin,
                AuditKind.product_changed,
                subject=f"product:{product.id}",
                after=_product_audited(product),
                reason=form.reason,
            )
    except Exception as error:
        if not is_unique_violation(error):
            raise
        raise ValidationFailed({"code": CODE_TAKEN}) from None
    return product


async def change_product(admin: User, product_id: int, form: ProductChange) -> bool:
    """Rename, reorder, deactivate or activate a product, with one audit entry (before →
    after). Its code never changes: agreements, lots and tickets name it. Saving it as it
    is records nothing (False)."""
    policy.require(admin, "manage_catalog")
    async with write_transaction(Product._meta.db):
        await lock_row(Product, product_id)  # two saves at once: one after the other
        product = await get_product(product_id)
        before = _product_audited(product)
        after = {
            **before,
            "name": form.name,
            "position": form.position,
            "active": bool(form.active),
        }
        if after == before:
            return False
        await Product.update(
            {
                Product.name: form.name,
                Product.position: form.position,
                Product.active: bool(form.active),
            }
        ).where(Product.id == product_id)
        await audit.record(
            admin,
            AuditKind.product_changed,
            subject=f"product:{product_id}",
            before=before,
            after=after,
            reason=form.reason,
        )
    return True
