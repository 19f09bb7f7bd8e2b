"""Domain errors: services raise these; controllers turn them into 422/403/404 pages."""

from __future__ import annotations


class DomainError(Exception):
    pass


class ValidationFailed(DomainError):
    """Bad input, with one Norwegian message per field (keys are the form's field names)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


class NotAllowed(DomainError):
    pass


class MalformedEvent(DomainError):
    """A signed webhook body that is not an event the portal can read; the message, for the
    sender, says why. Nothing was recorded."""
