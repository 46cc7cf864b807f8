"""The ledger (rules 6, 7, 8, 11, 19): datacenter visits billed by cause, module installs and reinstalls,
out-of-scope work and packages, fines and payments, in exact integer rials, with monthly statements.

Modules: ``models`` (tables and the sign convention), ``entries`` (idempotent posting, reversals, balance),
``visits``, ``installs``, ``items``, ``fines`` (fines' money and ``unpaid_overdue_fines``, which the desk's
suspension check reads), ``payments`` (by hand and CSV), ``statements`` and ``format`` (toman, Persian digits,
Jalali dates, CSV), ``metrics``.
"""

from tickets.ledger.entries import balance, post, reverse
from tickets.ledger.fines import UnpaidFine, unpaid_overdue_fines

__all__ = ["balance", "post", "reverse", "UnpaidFine", "unpaid_overdue_fines"]
