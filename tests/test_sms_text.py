"""SMS length rules: GSM-7 (160 alone, 153 per concatenated part; extension characters count twice) and
UCS-2 for anything else, Persian included (70 alone, 67 per part); and fitting a notice into one part."""

from __future__ import annotations

import pytest

from incidents.sms_text import fit_sms, sms_length

FA = "س"  # one Persian letter: one UTF-16 unit


@pytest.mark.parametrize(("text", "encoding", "units", "parts"), [
    ("", "gsm7", 0, 0),
    ("a" * 160, "gsm7", 160, 1),
    ("a" * 161, "gsm7", 161, 2),
    ("a" * 306, "gsm7", 306, 2),
    ("a" * 307, "gsm7", 307, 3),
    ("{" * 80, "gsm7", 160, 1),          # extension characters take two septets
    ("{" * 81, "gsm7", 162, 2),
    ("€" + "a" * 159, "gsm7", 161, 2),
    (FA * 70, "ucs2", 70, 1),
    (FA * 71, "ucs2", 71, 2),
    (FA * 134, "ucs2", 134, 2),
    (FA * 135, "ucs2", 135, 3),
    ("a" * 69 + FA, "ucs2", 70, 1),      # one Persian letter makes the whole message UCS-2
    ("a" * 70 + FA, "ucs2", 71, 2),
    ("۱۲۳۴" * 17 + "۱۲", "ucs2", 70, 1),  # Persian digits are not GSM-7
    ("😀" * 35, "ucs2", 70, 1),           # outside the BMP: two UTF-16 units each
    ("😀" * 36, "ucs2", 72, 2),
    ("hello\nworld", "gsm7", 11, 1),
])
def test_it_counts_parts_in_gsm7_or_ucs2(text, encoding, units, parts):
    got = sms_length(text)
    assert (got.encoding, got.units, got.parts) == (encoding, units, parts)


def test_a_body_that_fits_one_part_is_sent_whole():
    assert fit_sms(FA * 70, ["کوتاه"]) == FA * 70


def test_a_long_persian_body_gives_way_to_its_compact_form():
    assert fit_sms(FA * 71, [FA * 71, "اختلال در وب — رخداد ۱۲"], max_parts=3) == "اختلال در وب — رخداد ۱۲"


def test_without_a_one_part_form_the_body_is_sent_within_max_parts():
    assert fit_sms(FA * 130, [FA * 100], max_parts=2) == FA * 130


@pytest.mark.parametrize("max_parts", [1, 2, 3])
def test_a_body_too_long_for_max_parts_is_cut_to_them_with_an_ellipsis(max_parts):
    words = " ".join([FA * 6] * 60)  # 419 units: seven parts
    text = fit_sms(words, [words + " اضافه"], max_parts=max_parts)
    assert sms_length(text).parts == max_parts and text.endswith("…")
    assert words.startswith(text.removesuffix("…")) and not text.removesuffix("…").endswith(" ")


def test_an_ascii_body_is_cut_with_a_gsm7_ellipsis_so_it_stays_gsm7():
    text = fit_sms("word " * 100, max_parts=1)
    assert sms_length(text).encoding == "gsm7" and sms_length(text).parts == 1 and text.endswith("...")


def test_max_parts_must_be_positive():
    with pytest.raises(ValueError, match="max_parts"):
        fit_sms("x", max_parts=0)
