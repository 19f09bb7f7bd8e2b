"""The hosted checkout page, in Norwegian and clearly marked «Testmodus».

Plain HTML forms (each button is its own `<form method="post">`, posting back to the page's
own address), no scripts and no inline styles, so the portal's Content-Security-Policy
(`default-src 'self'`) is satisfied and the page works without JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from .state import SessionRecord

NBSP = "\u00a0"


def format_amount(amount: int, currency: str) -> str:
    """Øre → «1 234,50 kr» (non-breaking spaces); other currencies → «12,00 EUR»."""
    sign = "-" if amount < 0 else ""
    units, cents = divmod(abs(amount), 100)
    digits = str(units)
    groups = []
    while digits:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    number = f"{sign}{NBSP.join(groups)},{cents:02d}"
    suffix = "kr" if currency.lower() == "nok" else currency.upper()
    return f"{number}{NBSP}{suffix}"


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="nb">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title)}</title>\n"
        "</head>\n"
        "<body>\n"
        "<main>\n"
        "<h1>Testmodus <small>– betalingssandkasse</small></h1>\n"
        "<p><strong>Dette er ikke en ekte betaling.</strong> Siden etterligner Stripes "
        "betalingsside, og ingen ekte penger blir trukket eller overført.</p>\n"
        f"{body}"
        "</main>\n"
        "</body>\n"
        "</html>\n"
    )


def _button(outcome: str, label: str) -> str:
    return (
        '<form method="post">\n'
        f'<input type="hidden" name="outcome" value="{escape(outcome)}">\n'
        f'<button type="submit">{escape(label)}</button>\n'
        "</form>\n"
    )


def _anchor(url: str | None, label: str) -> str:
    if not url:
        return ""
    return f'<p><a href="{escape(url)}">{escape(label)}</a></p>\n'


def _items(record: SessionRecord) -> str:
    session = record.obj
    currency = session["currency"]
    rows = "".join(
        "<tr>"
        f"<td>{escape(item['description'])}</td>"
        f"<td>{item['quantity']}</td>"
        f"<td>{escape(format_amount(item['price']['unit_amount'], currency))}</td>"
        f"<td>{escape(format_amount(item['amount_total'], currency))}</td>"
        "</tr>\n"
        for item in record.line_items
    )
    return (
        "<table>\n"
        "<caption>Det du betaler for</caption>\n"
        "<thead><tr>"
        '<th scope="col">Vare</th><th scope="col">Antall</th>'
        '<th scope="col">Pris per stk.</th><th scope="col">Beløp</th>'
        "</tr></thead>\n"
        f"<tbody>\n{rows}</tbody>\n"
        "<tfoot><tr>"
        '<th scope="row" colspan="3">Totalt</th>'
        f"<td>{escape(format_amount(session['amount_total'], currency))}</td>"
        "</tr></tfoot>\n"
        "</table>\n"
    )


def _message(text: str | None, *, alert: bool) -> str:
    if not text:
        return ""
    role = "alert" if alert else "status"
    return f'<p role="{role}"><strong>{escape(text)}</strong></p>\n'


def checkout_page(
    record: SessionRecord,
    intent: dict[str, Any] | None,
    *,
    message: str | None = None,
    error: bool = False,
    may_link: Callable[[str | None], bool],
) -> str:
    """The page for one session; it links back only to URLs `may_link` allows."""
    session = record.obj

    def _link(url: str | None, label: str) -> str:
        return _anchor(url, label) if may_link(url) else ""

    total = format_amount(session["amount_total"], session["currency"])
    parts = [f"<h2>Betaling: {escape(total)}</h2>\n", _message(message, alert=error)]
    status, paid = session["status"], session["payment_status"] == "paid"
    success_url = (session["success_url"] or "").replace("{CHECKOUT_SESSION_ID}", session["id"])
    if status == "open":
        parts += [
            _items(record),
            '<section aria-labelledby="choices">\n<h2 id="choices">Velg hva som skjer</h2>\n',
            _button("paid", f"Betal {total}"),
            _button("declined", "Avvis kortet"),
            _button("async_pending", "Betal med forsinket betaling"),
            _button("cancel", "Avbryt") if may_link(session["cancel_url"]) else "",
            "</section>\n",
        ]
    elif status == "expired":
        parts += [
            "<p>Denne betalingsøkten er utløpt. Ingen betaling ble gjennomført.</p>\n",
            _link(session["cancel_url"], "Tilbake til butikken"),
        ]
    elif paid:
        parts += [
            _items(record),
            "<p>Betalingen er fullført. Det er ikke mer å gjøre her.</p>\n",
            _link(success_url, "Tilbake til butikken"),
        ]
    elif intent is not None and intent["status"] == "processing":
        parts += [
            _items(record),
            "<p>Betalingen er forsinket og venter på bekreftelse fra banken.</p>\n",
            '<section aria-labelledby="choices">\n'
            '<h2 id="choices">Resultatet av den forsinkede betalingen</h2>\n',
            _button("async_succeeded", "Fullfør forsinket betaling"),
            _button("async_failed", "Avvis forsinket betaling"),
            "</section>\n",
            _link(success_url, "Tilbake til butikken"),
        ]
    else:
        parts += [
            _items(record),
            "<p>Den forsinkede betalingen ble avvist. Ingen penger ble trukket.</p>\n",
            _link(session["cancel_url"], "Tilbake til butikken"),
        ]
    return _page(f"Testmodus – betal {total}", "".join(parts))


def not_found_page() -> str:
    return _page(
        "Testmodus – fant ikke betalingen",
        "<h2>Fant ikke betalingsøkten</h2>\n<p>Lenken er ugyldig eller for gammel.</p>\n",
    )
