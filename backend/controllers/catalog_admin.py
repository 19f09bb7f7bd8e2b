"""The back office's catalog (issue 12), admins only: products, versioned prices, and the
business's settings (seller, extra closed days, low-balance default)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Response, Template

from backend.services import business, catalog, clock
from backend.web.errors import FormView
from backend.web.forms import form_operation, read_form, read_values
from backend.web.guards import allowed
from backend.web.templating import page, redirect

CATALOG_URL = "/staff/admin/catalog"
PRICES_URL = f"{CATALOG_URL}/prices"
SETTINGS_URL = f"{CATALOG_URL}/settings"


async def _products_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    """The products page; a failed form keeps what was typed: the new-product form, or one
    product's row (`product_id` from the path)."""
    product_id = request.path_params.get("product_id")
    return {
        "products": await catalog.all_products(),
        "offer": await catalog.current_offer(),
        "create_form": values if product_id is None else {},
        "create_errors": errors if product_id is None else {},
        "change_product": product_id,
        "change_form": values if product_id is not None else {},
        "change_errors": errors if product_id is not None else {},
    }


async def _prices_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    offer = await catalog.current_offer()
    return {
        "offer": offer,
        "history": await catalog.price_history(),
        "form": values or catalog.price_form_values(offer.prices, clock.today()),
        "errors": errors,
    }


async def _settings_context(request: Request, values: dict, errors: dict) -> dict[str, Any]:
    settings = await business.current()
    return {
        "settings": settings,
        "form": values or business.form_values(settings),
        "errors": errors,
    }


PRODUCTS_FORM = FormView(
    "staff/admin/catalog.html", "staff/admin/_products.html", _products_context
)
PRICES_FORM = FormView("staff/admin/prices.html", "staff/admin/_prices.html", _prices_context)
SETTINGS_FORM = FormView(
    "staff/admin/settings.html", "staff/admin/_settings.html", _settings_context
)


class CatalogAdminController(Controller):
    path = CATALOG_URL
    guards = [allowed("manage_catalog")]  # noqa: RUF012

    @get(name="admin_catalog")
    async def show_catalog(self, request: Request) -> Template:
        context = await _products_context(request, {}, {})
        return page(request, "staff/admin/catalog.html", **context)

    @post(
        "/products",
        name="admin_product_create",
        operation_class=form_operation(catalog.NewProduct),
        opt={"form": PRODUCTS_FORM},
    )
    async def create_product(self, request: Request) -> Response:
        form = await read_form(request, catalog.NewProduct)
        await catalog.add_product(request.user, form)
        return redirect(request, CATALOG_URL)

    @post(
        "/products/{product_id:int}",
        name="admin_product_change",
        operation_class=form_operation(catalog.ProductChange),
        opt={"form": PRODUCTS_FORM},
    )
    async def change_product(self, request: Request, product_id: FromPath[int]) -> Response:
        await catalog.get_product(product_id)  # 404 before the form's 422
        form = await read_form(request, catalog.ProductChange)
        await catalog.change_product(request.user, product_id, form)
        return redirect(request, CATALOG_URL)

    @get("/prices", name="admin_prices")
    async def show_prices(self, request: Request) -> Template:
        context = await _prices_context(request, {}, {})
        return page(request, "staff/admin/prices.html", **context)

    @post(
        "/prices",
        name="admin_price_version_create",
        operation_class=form_operation(catalog.PriceVersionForm),
        opt={"form": PRICES_FORM},
    )
    async def add_price_version(self, request: Request) -> Response:
        values = await read_values(request, catalog.PriceVersionForm)
        await catalog.add_price_version(request.user, values)
        return redirect(request, PRICES_URL)

    @get("/settings", name="admin_settings")
    async def show_settings(self, request: Request) -> Template:
        context = await _settings_context(request, {}, {})
        return page(request, "staff/admin/settings.html", **context)

    @post(
        "/settings",
        name="admin_settings_save",
        operation_class=form_operation(business.SettingsForm),
        opt={"form": SETTINGS_FORM},
    )
    async def save_settings(self, request: Request) -> Response:
        form = await read_form(request, business.SettingsForm)
        await business.update(request.user, form)
        return redirect(request, SETTINGS_URL)
