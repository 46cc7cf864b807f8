"""What a status-page subscriber reads: Persian, Jalali dates in Tehran time, Persian digits, the services'
public names, and never an internal name or reason code. Pure functions of their arguments.

Every notice ends with the status page's address and the one-click unsubscribe link; ``public_name`` and
``public_title`` are the only ways a service's or a window's name reaches a subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from incidents.messages import jalali, persian_digits, persian_duration
from monitor.persian import judge

__all__ = ["Notice", "public_name", "public_title", "names_fa", "incident_notice", "update_notice",
           "maintenance_notice", "confirm_notice", "SEVERITY_FA"]

SEVERITY_FA = {"urgent": "ضروری", "important": "مهم"}
_STATUS_FA = {"investigating": "در حال بررسی", "identified": "شناسایی شد", "monitoring": "در حال پایش",
              "resolved": "برطرف شد"}


@dataclass(frozen=True, slots=True)
class Notice:
    subject: str
    body: str


def public_name(display_name: str) -> str:
    """A service as everyone may read it: its Persian display name, else a neutral word (its internal name
    is never shown)."""
    name = (display_name or "").strip()
    return name if name and judge(name).language == "persian" else "یکی از سرویس‌ها"


def public_title(title: str) -> str:
    """A maintenance window's title when staff wrote it in Persian, else the plain word."""
    title = (title or "").strip()
    return title if title and judge(title).language == "persian" else "نگهداری برنامه‌ریزی‌شده"


def names_fa(names: list[str]) -> str:
    if not names:
        return "سرویس‌ها"
    if len(names) <= 3:
        return "، ".join(names)
    return f"{'، '.join(names[:2])} و {persian_digits(str(len(names) - 2))} سرویس دیگر"


def _footer(status_url: str, unsubscribe_url: str) -> str:
    return (f"\n\nوضعیت لحظه‌ای: {status_url}\n"
            f"برای لغو اشتراک با یک کلیک: {unsubscribe_url}")


def incident_notice(kind: str, severity: str, names: list[str], opened_at: datetime,
                    resolved_at: datetime | None, duration_s: float | None, status_url: str,
                    unsubscribe_url: str) -> Notice:
    what = names_fa(names)
    if kind == "resolved":
        end = resolved_at or opened_at
        return Notice(f"برطرف شد: اختلال {what}",
                      f"اختلال {what} در {jalali(end)} برطرف شد. مدت اختلال: "
                      f"{persian_duration(duration_s or 0)}." + _footer(status_url, unsubscribe_url))
    return Notice(f"اختلال در {what}",
                  f"از {jalali(opened_at)} اختلالی ({SEVERITY_FA.get(severity, 'مهم')}) در {what} شناسایی شد. "
                  f"کارشناسان ما در حال رسیدگی هستند." + _footer(status_url, unsubscribe_url))


def update_notice(status: str | None, text: str, at: datetime, names: list[str], status_url: str,
                  unsubscribe_url: str) -> Notice:
    word = _STATUS_FA.get(status or "", "به‌روزرسانی")
    return Notice(f"{word}: {names_fa(names)}",
                  f"{word} — {jalali(at)}\n{text}" + _footer(status_url, unsubscribe_url))


def _other_ways(channels: list[tuple[str, str]]) -> str:
    """Rule 18: while the portal may be unavailable, the other ways to reach support."""
    if not channels:
        return ""
    lines = "\n".join(f"- {label}: {persian_digits(value)}" for label, value in channels)
    return f"\n\nدر این مدت از این راه‌ها با پشتیبانی در تماس باشید:\n{lines}"


def maintenance_notice(kind: str, title: str, start: datetime, end: datetime, names: list[str],
                       status_url: str, unsubscribe_url: str,
                       channels: list[tuple[str, str]] | None = None) -> Notice:
    """``scheduled``, ``starting`` or ``ended``; the first two name the other ways to reach support."""
    what, title = names_fa(names), public_title(title)
    if kind == "ended":
        return Notice(f"پایان نگهداری: {what}",
                      f"{title} روی {what} در {jalali(end)} به پایان رسید."
                      + _footer(status_url, unsubscribe_url))
    other = _other_ways(channels or [])
    if kind == "starting":
        return Notice(f"آغاز نگهداری: {what}",
                      f"{title} روی {what} آغاز شد و تا {jalali(end)} ادامه دارد." + other
                      + _footer(status_url, unsubscribe_url))
    return Notice(f"نگهداری برنامه‌ریزی‌شده: {what}",
                  f"{title} روی {what} از {jalali(start)} تا {jalali(end)} انجام می‌شود." + other
                  + _footer(status_url, unsubscribe_url))


def confirm_notice(confirm_url: str, expires_at: datetime, names: list[str]) -> Notice:
    """The double opt-in mail: nothing else is sent until its link is followed."""
    return Notice("تأیید اشتراک اطلاع‌رسانی وضعیت سرویس‌ها",
                  f"درخواست اشتراک اطلاع‌رسانی وضعیت {names_fa(names)} برای این نشانی ثبت شد.\n"
                  f"برای تأیید، این پیوند را باز کنید (تا {jalali(expires_at)} معتبر است):\n{confirm_url}\n\n"
                  f"اگر شما این درخواست را نداده‌اید، این نامه را نادیده بگیرید؛ تا تأیید نکنید نامه‌ای "
                  f"دریافت نمی‌کنید.")
