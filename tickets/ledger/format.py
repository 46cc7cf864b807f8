"""Showing money and statements: toman with Persian digits and Jalali dates for customers, a rials CSV for
finance. Every figure is computed from integer rials with integer arithmetic (one toman is ten rials)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import jdatetime

from tickets.calendar import TEHRAN
from tickets.ledger.statements import StatementView

__all__ = ["persian_digits", "toman_fa", "jalali_fa", "statement_fa", "statement_csv", "statement_download_csv", "KIND_FA"]

_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
THOUSANDS, DECIMAL, MINUS = "\u066c", "\u066b", "\u2212"
KIND_FA = {
    "visit": "هزینهٔ مراجعه به دیتاسنتر",
    "reinstall": "نصب مجدد ماژول",
    "out_of_scope": "خدمات خارج از محدودهٔ پشتیبانی",
    "package": "بستهٔ مدیریت یا رفع اشکال",
    "fine": "جریمه",
    "payment": "پرداخت",
    "reversal": "اصلاحیه (برگشت)",
}


def persian_digits(text: str) -> str:
    return str(text).translate(_DIGITS)


def toman_fa(rials: int) -> str:
    """``12_345_670`` rials -> ``"۱٬۲۳۴٬۵۶۷ تومان"``; a rial remainder shows as a decimal (``۱۲٫۵``)."""
    if type(rials) is not int:
        raise TypeError("money is a whole number of rials")
    toman, rem = divmod(abs(rials), 10)
    text = f"{toman:,}".replace(",", THOUSANDS) + (f"{DECIMAL}{rem}" if rem else "")
    return (MINUS if rials < 0 else "") + persian_digits(text) + " تومان"


def jalali_fa(at: datetime, *, with_time: bool = False) -> str:
    """An instant as a Tehran-time Jalali date in Persian digits (``۱۴۰۵/۰۹/۰۵``)."""
    local = jdatetime.datetime.fromgregorian(datetime=at.astimezone(TEHRAN))
    return persian_digits(local.strftime("%Y/%m/%d %H:%M" if with_time else "%Y/%m/%d"))


def _month_fa(view: StatementView) -> str:
    return f"{jdatetime.date.j_months_fa[view.jalali_month - 1]} {persian_digits(view.jalali_year)}"


def statement_fa(view: StatementView) -> dict:
    """The statement as the customer portal shows it (every figure a Persian string in toman)."""
    return {
        "month": _month_fa(view),
        "opening": toman_fa(view.opening_rials),
        "charges": toman_fa(view.charges_rials),
        "credits": toman_fa(view.credits_rials),
        "closing": toman_fa(view.closing_rials),
        "lines": [{"date": jalali_fa(line.posted_at), "kind": KIND_FA.get(line.kind, line.kind),
                   "amount": toman_fa(line.amount_rials),
                   "ticket": persian_digits(line.ticket_id) if line.ticket_id else None}
                  for line in view.lines],
    }


CSV_COLUMNS = ("entry_id", "posted_at_utc", "jalali_date", "kind", "amount_rials", "ticket_id", "visit_id",
               "reference", "reverses_id", "description")


def statement_csv(view: StatementView) -> str:
    """Finance's CSV: one row per entry in rials, then the opening, total and closing balances."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for ln in view.lines:
        date = jdatetime.datetime.fromgregorian(datetime=ln.posted_at.astimezone(TEHRAN)).strftime("%Y/%m/%d")
        w.writerow([ln.entry_id, ln.posted_at.isoformat(), date, ln.kind, ln.amount_rials, ln.ticket_id or "",
                    ln.visit_id or "", ln.reference or "", ln.reverses_id or "", ln.description])
    for label, value in (("opening", view.opening_rials), ("total", view.total_rials),
                         ("closing", view.closing_rials)):
        w.writerow([label, "", "", "", value, "", "", "", "", ""])
    return out.getvalue()


DOWNLOAD_COLUMNS = ("entry_id", "jalali_date", "posted_at_utc", "kind", "kind_fa", "amount_rials", "ticket_id",
                    "visit_id", "reference", "reverses_id", "description")
BOM = "\ufeff"


def statement_download_csv(view: StatementView, *, customer: str = "", customer_facing: bool = False) -> str:
    """The statement as the pages' CSV download: UTF-8 text starting with a byte-order mark (so that Excel
    reads it as UTF-8 and shows the Persian columns), one row per entry in integer rials with its Jalali
    date (Tehran) and its kind in Persian, then the opening, total and closing rows. A customer's copy leaves
    out the ledger's internal descriptions."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(DOWNLOAD_COLUMNS)
    for ln in view.lines:
        date = jdatetime.datetime.fromgregorian(datetime=ln.posted_at.astimezone(TEHRAN)).strftime("%Y/%m/%d")
        w.writerow([ln.entry_id, date, ln.posted_at.isoformat(), ln.kind, KIND_FA.get(ln.kind, ln.kind),
                    ln.amount_rials, ln.ticket_id or "", ln.visit_id or "", ln.reference or "",
                    ln.reverses_id or "", "" if customer_facing else ln.description])
    summary = (("opening", "مانده از پیش", view.opening_rials), ("total", "جمع این ماه", view.total_rials),
               ("closing", "ماندهٔ پایان ماه", view.closing_rials))
    for label, label_fa, value in summary:
        w.writerow([label, "", "", "", label_fa, value, "", "", "", "", customer])
    return BOM + out.getvalue()
