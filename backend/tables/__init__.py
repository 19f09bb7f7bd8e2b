from backend.tables.account_links import AccountLink, LinkPurpose
from backend.tables.advisories import (
    Advisory,
    AdvisoryFeed,
    AdvisoryRevision,
    AdvisoryUnfollow,
    Verdict,
)
from backend.tables.agreements import Agreement, AgreementProduct
from backend.tables.api_tokens import ApiToken
from backend.tables.attachments import Attachment
from backend.tables.audit import AuditEntry, AuditKind
from backend.tables.catalog import BusinessSettings, PriceList, Product
from backend.tables.companies import Company
from backend.tables.inbound import InboundMail, InboundOutcome, InboxReason, TicketMailId
from backend.tables.invitations import Invitation
from backend.tables.ledger import EntryKind, LedgerEntry, LedgerOperation, Lot, LotProduct
from backend.tables.mail import MailStatus, OutboxMail
from backend.tables.orders import CheckoutSession, Order, OrderKind, OrderStatus, StripeEvent
from backend.tables.refunds import RefundRequest, RefundStatus
from backend.tables.sessions import BrowserSession
from backend.tables.sign_in import SignInCounter
from backend.tables.tickets import (
    Channel,
    ChargeStatus,
    Coverage,
    HourlyCharge,
    SupportDay,
    Ticket,
    TicketMessage,
    TicketStatus,
    TimeEntry,
)
from backend.tables.users import Role, User

__all__ = [
    "AccountLink",
    "Advisory",
    "AdvisoryFeed",
    "AdvisoryRevision",
    "AdvisoryUnfollow",
    "Agreement",
    "AgreementProduct",
    "ApiToken",
    "Attachment",
    "AuditEntry",
    "AuditKind",
    "BrowserSession",
    "BusinessSettings",
    "Channel",
    "ChargeStatus",
    "CheckoutSession",
    "Company",
    "Coverage",
    "EntryKind",
    "HourlyCharge",
    "InboundMail",
    "InboundOutcome",
    "InboxReason",
    "Invitation",
    "LedgerEntry",
    "LedgerOperation",
    "LinkPurpose",
    "Lot",
    "LotProduct",
    "MailStatus",
    "Order",
    "OrderKind",
    "OrderStatus",
    "OutboxMail",
    "PriceList",
    "Product",
    "RefundRequest",
    "RefundStatus",
    "Role",
    "SignInCounter",
    "StripeEvent",
    "SupportDay",
    "Ticket",
    "TicketMailId",
    "TicketMessage",
    "TicketStatus",
    "TimeEntry",
    "User",
    "Verdict",
]
