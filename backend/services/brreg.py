"""Company data from Brønnøysundregistrene: Enhetsregisteret's open API (no key).

GET {BRREG_API_URL}/enheter/{orgnr} answers 200 with the entity (navn, forretningsadresse,
konkurs, underAvvikling, underTvangsavviklingEllerTvangsopplosning, slettedato when deleted),
404 for a number it does not know and 410 for an entity that was removed. The register only
helps: when it cannot be reached in time, or answers something we cannot read, the portal
carries on as if there were no register (`None`), and never blames the user for it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

import httpx
import msgspec

from backend.i18n import N_
from backend.services.validation import CONTROL_CHARACTER, collapse

logger = logging.getLogger("portal.brreg")

# The whole lookup (connecting, waiting, reading), not each step of it: a person is waiting.
TIMEOUT_SECONDS = 2.0

DELETED = N_("Firmaet er slettet i Enhetsregisteret og kan ikke registreres.")
BANKRUPT = N_("Firmaet er konkurs ifølge Enhetsregisteret og kan ikke registreres.")
WINDING_UP = N_("Firmaet er under avvikling ifølge Enhetsregisteret og kan ikke registreres.")
FORCED_WINDING_UP = N_(
    "Firmaet er under tvangsavvikling eller tvangsoppløsning ifølge Enhetsregisteret og kan"
    " ikke registreres."
)


class _Address(msgspec.Struct):
    adresse: list[str] = []
    postnummer: str | None = None
    poststed: str | None = None


class _Entity(msgspec.Struct):
    """What we read of the register's answer; it has many more fields, which we ignore."""

    navn: str
    forretningsadresse: _Address | None = None
    postadresse: _Address | None = None
    konkurs: bool = False
    underAvvikling: bool = False
    underTvangsavviklingEllerTvangsopplosning: bool = False
    slettedato: str | None = None


@dataclass(frozen=True)
class Entity:
    """An organisation number as the register knows it. `registered` False: it does not."""

    org_number: str
    registered: bool = True
    name: str = ""
    address: str = ""
    postal_code: str = ""
    city: str = ""
    deleted: bool = False
    bankrupt: bool = False
    winding_up: bool = False
    forced_winding_up: bool = False


class Enhetsregisteret:
    """The register at `base_url`; None: no lookups (development without BRREG_API_URL)."""

    def __init__(self, base_url: str | None) -> None:
        self.base_url = base_url.rstrip("/") if base_url else None

    @property
    def enabled(self) -> bool:
        return self.base_url is not None

    async def look_up(self, org_number: str) -> Entity | None:
        """The entity with this (valid, compact) organisation number, or None when there is no
        register or it did not answer in time with something we can read."""
        if self.base_url is None:
            return None
        url = f"{self.base_url}/enheter/{org_number}"
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                # A client per lookup: registrations are rare, and a client kept in the app
                # would belong to one event loop.
                async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
                    response = await client.get(url, headers={"Accept": "application/json"})
        except (TimeoutError, httpx.HTTPError) as error:
            logger.warning("Enhetsregisteret did not answer for %s: %r", org_number, error)
            return None
        return read_answer(org_number, response.status_code, response.content)


def read_answer(org_number: str, status: int, body: bytes) -> Entity | None:
    """The register's answer as an Entity; None for one that says nothing about the number
    (a server error, a body that is not the documented shape)."""
    if status == 404:
        return Entity(org_number, registered=False)
    if status == 410:
        return Entity(org_number, deleted=True)
    if status != 200:
        logger.warning("Enhetsregisteret answered %s for %s", status, org_number)
        return None
    try:
        entity = msgspec.json.decode(body, type=_Entity)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        logger.warning("Enhetsregisteret's answer for %s did not read: %s", org_number, error)
        return None
    address, postal_code, city = business_address(entity)
    return Entity(
        org_number,
        name=_text(entity.navn),
        address=address,
        postal_code=postal_code,
        city=city,
        deleted=entity.slettedato is not None,
        bankrupt=entity.konkurs,
        winding_up=entity.underAvvikling,
        forced_winding_up=entity.underTvangsavviklingEllerTvangsopplosning,
    )


def business_address(entity: _Entity) -> tuple[str, str, str]:
    """(street lines, postal code, city) of the business address, else the postal address. A
    postal code that is not four digits (an address abroad) is left for the user to write."""
    found = entity.forretningsadresse or entity.postadresse
    if found is None:
        return "", "", ""
    lines = ", ".join(text for line in found.adresse if (text := _text(line)))
    postal_code = (found.postnummer or "").strip()
    if not re.fullmatch(r"[0-9]{4}", postal_code):
        postal_code = ""
    return lines, postal_code, _text(found.poststed or "")


def _text(value: str) -> str:
    """One line of the register's text as the form's fields take it."""
    return collapse(CONTROL_CHARACTER.sub("", value))


def refusal(entity: Entity | None) -> str | None:
    """Why a company the register knows cannot register: it is deleted, bankrupt or being
    wound up, and could not pay for support. None: nothing against it, or no answer."""
    if entity is None:
        return None
    if entity.deleted:
        return DELETED
    if entity.bankrupt:
        return BANKRUPT
    if entity.forced_winding_up:
        return FORCED_WINDING_UP
    if entity.winding_up:
        return WINDING_UP
    return None


def suggested_fields(entity: Entity | None) -> dict[str, str]:
    """The registration form's fields the register can fill in (only what it gave)."""
    if entity is None or not entity.registered or entity.deleted:
        return {}
    values = {
        "company_name": entity.name,
        "address": entity.address,
        "postal_code": entity.postal_code,
        "city": entity.city,
    }
    return {name: value for name, value in values.items() if value}
