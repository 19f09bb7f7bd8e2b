from backend.tables.agreements import Agreement
from backend.tables.catalog import PriceList, Product
from backend.tables.companies import Company
from backend.tables.ledger import EntryKind, LedgerEntry, LedgerOperation, Lot
from backend.tables.orders import CheckoutSession, Order, OrderKind, OrderStatus, StripeEvent
from backend.tables.tickets import (
    Channel,
    ChargeStatus,
    Coverage,
    HourlyCharge,
    Ticket,
    TicketMessage,
    TicketStatus,
    TimeEntry,
)
from backend.tables.users import Role, User

__all__ = [
    "Agreement",
    "Channel",
    "ChargeStatus",
    "CheckoutSession",
    "Company",
    "Coverage",
    "EntryKind",
    "HourlyCharge",
    "LedgerEntry",
    "LedgerOperation",
    "Lot",
    "Order",
    "OrderKind",
    "OrderStatus",
    "PriceList",
    "Product",
    "Role",
    "StripeEvent",
    "Ticket",
    "TicketMessage",
    "TicketStatus",
    "TimeEntry",
    "User",
]
