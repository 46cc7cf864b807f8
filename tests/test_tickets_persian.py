"""Rule 1: Persian in Persian script; Arabic-keyboard Persian normalised; Finglish and Arabic refused."""

import pytest

from tickets.errors import TextRefused
from tickets.persian import judge, normalise, require_persian

LOG = """سلام، سایت ما از ساعت ۱۰ صبح بالا نمی‌آید. خطای زیر در لاگ هست:
```
2026-11-20 10:02:11 [error] 1234#0: *5 connect() failed (111: Connection refused) while connecting to upstream
```
nginx: [emerg] bind() to 0.0.0.0:80 failed (98: Address already in use)
    Traceback (most recent call last):
      File "app.py", line 3, in <module>
لطفاً بررسی کنید."""


@pytest.mark.parametrize("text, expected", [
    ("سرور قطع است", "سرور قطع است"),
    ("سرور من كار نمي كند", "سرور من کار نمی کند"),  # Arabic-keyboard ي ك
    ("از ساعت ١٠ صبح قطع است", "از ساعت ۱۰ صبح قطع است"),  # Arabic-Indic digits
    ("پورت ８０ بسته است", "پورت ۸۰ بسته است"),  # full-width digits
    ("ﺳﺮﻭﺭ ﻗﻄﻊ ﺍﺳﺖ", "سرور قطع است"),  # presentation forms
    ("ping 10.0.0.1 جواب نمی‌دهد", "ping 10.0.0.1 جواب نمی‌دهد"),  # ASCII digits of an IP kept
])
def test_it_accepts_persian_and_normalises_arabic_keyboard_forms(text, expected):
    assert require_persian(text, "body") == expected


@pytest.mark.parametrize("text", [
    "سرور قطع است",
    "سلام",
    LOG,
    "سایت https://shop.example.com/cart?id=3 از دیروز خطای 502 می‌دهد، ایمیل admin@example.com",
    "وردپرس روی cPanel بالا نمی‌آید",
    "IP سرور 192.0.2.10 و 2001:db8::1 پینگ نمی‌شود",
    "البته الان سرور وصل شد ولی کند است",
    "تأخیر در پاسخ سرور زیاد است",
    "این دستور کار نمی‌کند:\nsudo systemctl restart nginx\ncurl -I https://example.com",
    "سرور قطع است. Please check ASAP",
])
def test_it_accepts_persian_with_logs_urls_and_english_terms(text):
    assert judge(text).language == "persian"


@pytest.mark.parametrize("text, language", [
    ("salam, server man kar nemikone", "finglish"),
    ("Hello, my server is down since morning, please help", "finglish"),
    ("server ghat shode\n```\nERROR connection refused\n```", "finglish"),
    ("service man kar nemikone\nsudo systemctl status nginx", "finglish"),
    ("مرحبا، الموقع لا يعمل", "arabic"),
    ("سلام this is my problem with the server and it is not working at all", "finglish"),
    ("الخادم لا يعمل منذ الصباح", "arabic"),
    ("هذه المشكلة في الخادم التي حدثت على الموقع", "arabic"),
    ("أرجو المساعدة في حل مشكلة الاتصال", "arabic"),
    ("", "empty"),
    ("```\nERROR 2026-01-01 refused\n```", "empty"),
])
def test_it_refuses_finglish_arabic_and_empty_text_in_persian(text, language):
    with pytest.raises(TextRefused) as caught:
        require_persian(text, "body")
    assert caught.value.code == f"text_{language}"
    assert caught.value.field == "body"
    assert "فارسی" in caught.value.message


def test_normalise_leaves_alef_maksura_as_evidence_of_arabic():
    assert normalise("على") == "على"
