"""Domain errors: services raise these; backend/web/errors.py turns them into 422/403/404."""

from __future__ import annotations


class DomainError(Exception):
    pass


class ValidationFailed(DomainError):
    """Bad input, with one Norwegian message per field (keys are the form's field names).
    `values`: what the form held, when the failure came before the handler got the form, so
    the form can be shown again with the input kept."""

    def __init__(self, errors: dict[str, str], values: dict | None = None) -> None:
        super().__init__(errors)
        self.errors = errors
        self.values = values


class NotAllowed(DomainError):
    """The policy (backend/services/policy.py) refuses this user the action: 403."""


class NotFound(DomainError):
    """No such row, or none this user may know of (another company's): 404."""


class MalformedEvent(DomainError):
    """A signed webhook body that is not an event the portal can read; the message, for the
    sender, says why. Nothing was recorded."""
