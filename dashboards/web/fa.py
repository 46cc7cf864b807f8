"""Persian words the customer pages share."""

from __future__ import annotations

from datetime import timedelta

from dashboards.web.html import fa_digits, fa_number

__all__ = ["STATE_FA", "PRIORITY_FA", "percent", "duration_fa", "MONTHS_FA"]

STATE_FA = {"UP": "برقرار", "DOWN": "قطع", "DEGRADED": "کُند", "UNREACHABLE": "دسترس‌ناپذیر",
            "MAINTENANCE": "در حال نگهداری", "UNKNOWN": "نامشخص"}
# Rule 14's three words, the same on every page a customer reads.
PRIORITY_FA = {"urgent": "ضروری", "important": "مهم", "normal": "معمولی"}
MONTHS_FA = ("فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور", "مهر", "آبان", "آذر", "دی", "بهمن",
             "اسفند")


def percent(ratio: float | None, digits: int = 2) -> str:
    return "—" if ratio is None else fa_number(ratio * 100, digits) + "٪"


def duration_fa(seconds: float) -> str:
    """``۲ ساعت و ۵ دقیقه``; under a minute, seconds."""
    td = timedelta(seconds=round(seconds))
    days, rest = divmod(int(td.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{fa_digits(v)} {w}" for v, w in ((days, "روز"), (hours, "ساعت"), (minutes, "دقیقه")) if v]
    return " و ".join(parts) if parts else f"{fa_digits(secs)} ثانیه"
