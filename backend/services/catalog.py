"""What is sold and at what price (SPEC §2). An admin edits it; the demo seed fills it."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from backend.db import from_json, json_rows
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


@dataclass(frozen=True)
class Offer:
    products: list[Product]
    prices: PriceList | None

    @property
    def topup_packs(self) -> list[int]:
        if self.prices is None:
            return []
        return [int(h) for h in self.prices.topup_packs.split(",") if h.strip()]


async def current_offer() -> Offer:
    """The active products in the catalog's order and the price list, in one statement."""
    rows = await Product.raw(f"SELECT {offer_columns(Product._meta.db)}")
    return offer_from_row(rows[0])


@functools.cache
def offer_columns(engine) -> str:
    """The offer as two columns (`products`, `prices`) of a page's single query; read back
    with `offer_from_row`."""
    product_columns = [c._meta.db_column_name for c in Product._meta.columns]
    price_columns = [c._meta.db_column_name for c in PriceList._meta.columns]
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
    prices = from_json(row["prices"])
    return Offer(
        products=[
            Product(**{**product, "active": True}, _exists_in_db=True)
            for product in from_json(row["products"])
        ],
        prices=PriceList(**prices[0], _exists_in_db=True) if prices else None,
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
