"""The receipt (kvittering) as a PDF: the same contents as portal/receipt.html, drawn with
fpdf2 (pure Python, no browser)."""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from backend.i18n import gettext
from backend.services.ledger import last_usable_day
from backend.services.money import format_nok
from backend.services.orders import Receipt
from backend.services.validation import format_org_number
from backend.tables import Order
from backend.web.templating import date_text, datetime_text, hours_minutes

# Debian's fonts-dejavu-core (the Makefile installs it): every letter a name may have, æøå
# included, which the PDF core fonts (latin-1) would not promise.
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT = "DejaVu"

LINE = 6  # mm
AMOUNT_WIDTH = 45  # mm, the right-hand column of amounts


def filename(order: Order) -> str:
    return f"kvittering-{order.id}.pdf"


def receipt_pdf(receipt: Receipt) -> bytes:
    order, seller, buyer = receipt.order, receipt.seller, receipt.buyer
    pdf = FPDF(format="A4")
    pdf.set_title(f"{gettext('Kvittering')} #{order.id}")
    pdf.set_author(seller.name)
    pdf.add_font(FONT, "", FONT_DIR / "DejaVuSans.ttf")
    pdf.add_font(FONT, "B", FONT_DIR / "DejaVuSans-Bold.ttf")
    pdf.add_page()
    width = pdf.epw

    def text(value: str, *, size: float = 10, bold: bool = False, height: float = LINE) -> None:
        pdf.set_font(FONT, "B" if bold else "", size)
        pdf.multi_cell(width, height, value, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def amount_row(label: str, amount_ore: int, *, bold: bool = False) -> None:
        pdf.set_font(FONT, "B" if bold else "", 10)
        pdf.cell(width - AMOUNT_WIDTH, LINE, label)
        pdf.cell(AMOUNT_WIDTH, LINE, format_nok(amount_ore), align="R")
        pdf.ln(LINE)

    text(gettext("Kvittering"), size=20, bold=True, height=10)
    heading = gettext("Bestilling nr. %(number)s") % {"number": order.id}
    if order.paid_at:
        heading += " · " + gettext("betalt %(when)s") % {"when": datetime_text(order.paid_at)}
    text(heading)
    pdf.ln(4)

    text(gettext("Selger"), size=12, bold=True)
    text(seller.name)
    if seller.org_number:
        text(f"{gettext('Org.nr.')} {format_org_number(seller.org_number)} MVA")
    if seller.address:
        text(seller.address)
    pdf.ln(3)
    text(gettext("Kjøper"), size=12, bold=True)
    text(buyer.name)
    text(f"{gettext('Org.nr.')} {format_org_number(buyer.org_number)}")
    text(f"{buyer.address}, {buyer.postal_code} {buyer.city}")
    pdf.ln(4)

    # The order's line, ex. MVA.
    pdf.set_font(FONT, "B", 10)
    pdf.cell(width - AMOUNT_WIDTH, LINE, gettext("Hva"), border="B")
    pdf.cell(AMOUNT_WIDTH, LINE, gettext("Beløp eks. mva"), border="B", align="R")
    pdf.ln(LINE + 1)
    top = pdf.get_y()
    pdf.set_font(FONT, "", 10)
    pdf.multi_cell(width - AMOUNT_WIDTH, LINE, receipt.description, align="L")
    details = []
    if receipt.agreement:
        details.append(
            gettext("Periode: %(start)s–%(end)s")
            % {
                "start": date_text(receipt.agreement.starts_on),
                "end": date_text(receipt.agreement.ends_on),
            }
        )
    if receipt.lot:
        details.append(
            gettext("%(time)s, gyldig til og med %(date)s")
            % {
                "time": hours_minutes(receipt.lot.minutes),
                "date": date_text(last_usable_day(receipt.lot.expires_on)),
            }
        )
    pdf.set_font(FONT, "", 8.5)
    for detail in details:
        pdf.set_x(pdf.l_margin)
        pdf.multi_cell(width - AMOUNT_WIDTH, 5, detail, align="L")
    bottom = pdf.get_y()
    pdf.set_xy(pdf.l_margin + width - AMOUNT_WIDTH, top)
    pdf.set_font(FONT, "", 10)
    pdf.cell(AMOUNT_WIDTH, LINE, format_nok(order.amount_ore), align="R")
    pdf.set_xy(pdf.l_margin, bottom + 2)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
    pdf.ln(2)

    amount_row(gettext("Beløp eks. mva"), order.amount_ore)
    amount_row(f"{gettext('Mva')} 25 %", order.mva_ore)
    amount_row(gettext("Totalt"), order.total_ore, bold=True)
    if order.refunded_ore:
        amount_row(gettext("Refundert"), order.refunded_ore)
    pdf.ln(4)
    text(gettext("Betalt med kort via Stripe."), size=9)
    return bytes(pdf.output())
