from piccolo.columns import Date, ForeignKey, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.tables.companies import Company
from backend.tables.orders import Order


class Agreement(Table, tablename="plan_agreement"):
    """A 6-month "Fri support" plan period (SPEC §2, alternative 1). Dates are inclusive."""

    company = ForeignKey(references=Company, index=True)
    order = ForeignKey(references=Order, null=True, unique=True)
    starts_on = Date()
    ends_on = Date()
    # Set when a refund ended the plan early; the plan covers nothing from this day on.
    cancelled_on = Date(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class AgreementProduct(Table, tablename="agreement_product"):
    """A product a plan period covers: one row per product (unique per agreement). Chosen at
    purchase it covers the whole period; added later (a plan_addition order, SPEC §2) it covers
    from the day it was paid (services/product_additions.py)."""

    agreement = ForeignKey(references=Agreement, index=True)
    product_code = Varchar(length=40)
    # The plan_addition order that added it; None: chosen when the period was bought.
    order = ForeignKey(references=Order, null=True, default=None, index=True)
    # Added during the period: covers from this day on (None: from the period's start).
    covered_from = Date(null=True, default=None)
    # A refund of the addition ended it: covers nothing from this day on.
    cancelled_on = Date(null=True, default=None)
