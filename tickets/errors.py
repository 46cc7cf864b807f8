"""Errors of the ``tickets`` package.

    NegahbanError                      (monitor.errors)
    └── DeskError                      anything the desk refuses on purpose
        └── Refusal                    a specific refusal shown to the person who asked: a machine-readable
            │                          ``code``, the ``field`` at fault, a Persian ``message``, the caller's
            │                          ``draft`` handed back untouched (nothing typed is lost) and ``extra``
            │                          facts (the duplicate's id, the missing fields, ...)
            ├── TextRefused            rule 1: the text is not Persian in Persian script
            ├── MissingFields          rule 13: the department's required fields are missing
            ├── DuplicateTicket        rule 16: an open ticket already asks the same thing
            ├── TicketClosed           rule 15: a closed ticket takes no new messages
            ├── SupportSuspended       rule 19: an unpaid fine past its due date
            └── NotAllowed             rule 3 and other role/ownership refusals

``monitor.errors.NotFound`` is raised (never a Refusal) for rows the caller may not see, so that a customer
cannot tell another customer's ticket from one that does not exist.
"""

from __future__ import annotations

from typing import Any

from monitor.errors import NegahbanError

__all__ = ["DeskError", "Refusal", "TextRefused", "MissingFields", "DuplicateTicket", "TicketClosed",
           "SupportSuspended", "NotAllowed"]


class DeskError(NegahbanError):
    """Root of the desk's errors."""


class Refusal(DeskError):
    """A specific, explained refusal that gives the caller's draft back."""

    def __init__(self, code: str, field: str | None, message: str, *, draft: dict[str, Any] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        self.code, self.field, self.message = code, field, message
        self.draft = dict(draft or {})
        self.extra = dict(extra or {})
        super().__init__(f"{code}: {field or '-'}")

    def payload(self) -> dict[str, Any]:
        """The JSON body shown to the client: what went wrong, where, in Persian, and the draft back."""
        return {"error": self.code, "field": self.field, "message": self.message, "draft": self.draft,
                **self.extra}

    def with_draft(self, draft: dict[str, Any]) -> Refusal:
        self.draft = dict(draft)
        return self


class TextRefused(Refusal):
    pass


class MissingFields(Refusal):
    pass


class DuplicateTicket(Refusal):
    pass


class TicketClosed(Refusal):
    pass


class SupportSuspended(Refusal):
    pass


class NotAllowed(Refusal):
    pass
