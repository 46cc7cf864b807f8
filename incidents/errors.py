"""Errors of the ``incidents`` package.

    NegahbanError (monitor.errors)
    └── IncidentError
        ├── IncidentNotFound       no such incident, or not the caller's to see
        ├── IncidentClosed         the incident is resolved; resolved incidents are never changed again
        ├── InvalidPayload         an Alertmanager payload that fails validation (names the field)
        └── ReconcileFailed        Alertmanager's API could not be read
    DeliveryFailed                 a notifier could not deliver; ``permanent`` says whether to retry
"""

from __future__ import annotations

from monitor.errors import InvalidInput, NegahbanError, NotFound

__all__ = ["IncidentError", "IncidentNotFound", "IncidentClosed", "InvalidPayload", "ReconcileFailed",
           "DeliveryFailed"]


class IncidentError(NegahbanError):
    """Root of the incidents package's errors."""


class IncidentNotFound(IncidentError, NotFound):
    pass


class IncidentClosed(IncidentError):
    pass


class InvalidPayload(IncidentError, InvalidInput):
    """A webhook payload that fails validation; ``field`` is the dotted path of the first bad field."""

    def __init__(self, field: str, reason: str) -> None:
        InvalidInput.__init__(self, field, reason)


class ReconcileFailed(IncidentError):
    pass


class DeliveryFailed(NegahbanError):
    """A notification was not delivered. ``permanent`` failures disable the channel; others are retried."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        self.reason, self.permanent = reason, permanent
        super().__init__(f"{'permanent' if permanent else 'transient'}: {reason}")
