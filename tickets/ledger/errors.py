"""Errors of the ledger.

    NegahbanError                      (monitor.errors)
    └── LedgerError                    anything the ledger refuses on purpose
        ├── LedgerInput                bad input (also an ``InvalidInput``): ``field`` and ``reason``
        │   └── PaymentFileError       a payment CSV with bad rows: every ``(line, field, reason)``; nothing
        │                              of the file was imported
        └── AppendOnly                 an attempt to edit or delete a posted ledger entry
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.errors import InvalidInput, NegahbanError

__all__ = ["LedgerError", "LedgerInput", "PaymentFileError", "RowError", "AppendOnly"]


class LedgerError(NegahbanError):
    pass


class LedgerInput(LedgerError, InvalidInput):
    pass


@dataclass(frozen=True, slots=True)
class RowError:
    """One bad CSV row: its ``line`` in the file (the header is line 1), the ``field`` and the ``reason``."""

    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


class PaymentFileError(LedgerInput):
    def __init__(self, errors: list[RowError]) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        InvalidInput.__init__(self, f"line {first.line}: {first.field}", first.reason)


class AppendOnly(LedgerError):
    pass
