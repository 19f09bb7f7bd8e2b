"""What is sold and at what price (SPEC §2). An admin edits it; the demo seed fills it."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import msgspec

from backend.db import fetch, from_json, json_rows
from backend.tables import PriceList, Product

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
    id: int
    plan_price_per_product_ore: int
    prepaid_hour_price_ore: int
    hourly_rate_ore: int
    topup_packs: str


@dataclass(frozen=True)
class Offer:
    products: list[OfferedProduct]
    prices: Prices | None

    @property
    def topup_packs(self) -> list[int]:
        if self.prices is None:
            return []
        return [int(h) for h in self.prices.topup_packs.split(",") if h.strip()]


async def current_offer() -> Offer:
    """The active products in the catalog's order and the price list, in one statement."""
    rows = await fetch(Product, f"SELECT {offer_columns(Product._meta.db)}")
    return offer_from_row(rows[0])


@functools.cache
def offer_columns(engine) -> str:
    """The offer as two columns (`products`, `prices`) of a page's single query; read back
    with `offer_from_row`."""
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
        f"SELECT {', '.join(price_columns)} FROM catalog_price_list ORDER BY id LIMIT 1",
        price_columns,
        order_by="id",
    )
    return f"{products} AS products, {prices} AS prices"


def offer_from_row(row: dict) -> Offer:
    prices = from_json(row["prices"], list[Prices])
    return Offer(
        products=from_json(row["products"], list[OfferedProduct]),
        prices=prices[0] if prices else None,
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
