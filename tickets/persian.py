"""Rule 1: requests are written in Persian, in Persian script.

The judgement itself (normalisation and the scored verdict, documented there) is ``monitor.persian``, shared
with the incidents' public updates; this module says what the desk answers when a request is not Persian.
"""

from __future__ import annotations

from monitor.persian import Verdict, fa_digits, judge, normalise, strip_ignorable
from tickets.errors import TextRefused

__all__ = ["normalise", "strip_ignorable", "judge", "Verdict", "require_persian", "MESSAGES", "fa_digits"]

MESSAGES = {
    "empty": "این بخش خالی است. لطفاً درخواست خود را به زبان فارسی بنویسید.",
    "finglish": ("متن باید به زبان فارسی و با حروف فارسی نوشته شود؛ فارسی با حروف لاتین (فینگلیش) یا متن "
                 "انگلیسی پذیرفته نمی‌شود. لطفاً صفحه‌کلید را فارسی کنید و متن را دوباره بنویسید. لاگ‌ها، "
                 "پیام‌های خطا، نشانی‌ها و نشانی‌های آی‌پی را می‌توانید همان‌طور که هست بچسبانید."),
    "other_script": ("متن به زبانی جز فارسی (مانند اردو، کردی یا پشتو) به نظر می‌رسد. درخواست‌ها فقط به زبان "
                     "فارسی پذیرفته می‌شوند؛ لطفاً متن را به فارسی بنویسید. لاگ‌ها و پیام‌های خطا را می‌توانید "
                     "همان‌طور که هست بچسبانید."),
    "cyrillic": ("متن با حروف سیریلیک (مانند فارسی تاجیکی) نوشته شده است. درخواست‌ها فقط با حروف فارسی "
                 "پذیرفته می‌شوند؛ لطفاً صفحه‌کلید را فارسی کنید و متن را با حروف فارسی بنویسید."),
    "arabic": ("متن به زبان عربی به نظر می‌رسد. درخواست‌ها فقط به زبان فارسی پذیرفته می‌شوند؛ لطفاً متن را به "
               "فارسی بنویسید. لاگ‌ها و پیام‌های خطا را می‌توانید همان‌طور که هست بچسبانید."),
}


def require_persian(text: str, field: str) -> str:
    """Return ``text`` normalised, or raise :class:`TextRefused` naming ``field`` (code ``text_<language>``)."""
    verdict = judge(text)
    if verdict.language != "persian":
        raise TextRefused(f"text_{verdict.language}", field, MESSAGES[verdict.language],
                          extra={"persian_score": verdict.persian_score, "arabic_score": verdict.arabic_score})
    return normalise(text)
