"""Which language a text is written in, and the folding of Persian typed on other keyboards (rule 1).

Shared by the desk (``tickets.persian``: requests must be Persian) and by the incidents' public updates
(``incidents.statuspage``): the pure judgement lives here, the lowest layer both may import; each caller
raises its own error in its own words.

Two steps, both pure.

**Normalisation** (:func:`normalise`, applied before anything is stored): characters of the Arabic
presentation-form blocks (U+FB50-U+FDFF, U+FE70-U+FEFF) are folded with NFKC to their base letters; the
Arabic-keyboard letters ``ي`` and ``ك`` become Persian ``ی`` and ``ک``; every non-ASCII decimal digit
(Arabic-Indic ``٠-٩``, full-width, ...) becomes a Persian digit ``۰-۹``. ASCII digits are left alone: they
live in IPs, ports and pasted logs. ``ى`` (alef maksura) is *not* folded, because it is evidence of Arabic.

**Judgement** (:func:`judge`) runs on the text with its ignorable parts removed: fenced (```) and indented
code/log blocks, URLs, e-mail addresses, IPv4/IPv6 addresses, and Latin-only lines that look like logs or
error messages (a timestamp, a log level, ``Error:``/``Exception``/``Traceback``, ``key=value``, a path, an
HTTP status line, ...) or shell commands (``sudo ...``, ``systemctl ...``, ``curl ...``). What remains is
split into words:

* no word at all -> ``empty``;
* no Arabic-script word, or more Latin words than Arabic-script words -> ``finglish`` (Persian written in
  Latin letters, or an English request);
* otherwise the Arabic-script words are scored, word by word:

  ==================================================================  ==========
  evidence                                                            score
  ==================================================================  ==========
  a Persian-only letter ``پ چ ژ گ`` in the word                       Persian +2
  a Persian function word (``است``, ``را``, ``که``, ``می``, ...)      Persian +1
  a verb with the ``می``/``نمی`` prefix (``می‌کند``, ``نمیشود``)        Persian +1
  ``ة`` (teh marbuta) in the word                                     Arabic +2
  ``ى`` (alef maksura) at the end of the word                         Arabic +1
  ``أ``/``إ`` at the start of the word                                Arabic +1
  an Arabic function word (``في``, ``هذا``, ``التي``, ``الى``, ...)    Arabic +1
  the article ``ال`` on a word with no Persian letter and not in a
  short list of Persian words that start with it (``البته``, ``الان``) Arabic +1
  ==================================================================  ==========

  The text is ``arabic`` when the Arabic score is at least 2 and greater than the Persian score; otherwise
  it is ``persian``. Arabic-script text with no evidence either way is taken as Persian (the customer is
  typing in the right script), which keeps short real Persian such as "سرور قطع است" accepted. ``ي``/``ك``
  count for neither side: Persian typed on an Arabic keyboard is still Persian.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["normalise", "strip_ignorable", "judge", "Verdict", "fa_digits"]

_PRESENTATION = ((0xFB50, 0xFDFF), (0xFE70, 0xFEFF))
_LETTERS = str.maketrans({"ي": "ی", "ك": "ک"})
_PERSIAN_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
_HARAKAT = re.compile("[\u064B-\u065F\u0670\u0640]")  # short vowels, superscript alef, tatweel


def _fold_char(ch: str) -> str:
    code = ord(ch)
    if any(lo <= code <= hi for lo, hi in _PRESENTATION):
        return unicodedata.normalize("NFKC", ch)
    if ch.isdecimal() and not ch.isascii() and ch not in _PERSIAN_DIGITS:
        return _PERSIAN_DIGITS[unicodedata.decimal(ch)]
    return ch


def fa_digits(value: object) -> str:
    """``value`` as text with ASCII digits shown as Persian digits (for customer-facing messages)."""
    return str(value).translate(str.maketrans("0123456789", _PERSIAN_DIGITS))


def normalise(text: str) -> str:
    """Fold presentation forms, Arabic-keyboard letters and foreign digits to Persian (see module doc)."""
    return "".join(_fold_char(ch) for ch in text).translate(_LETTERS)


# --- what the judgement ignores -------------------------------------------------------------------------

_FENCED = re.compile(r"```.*?(?:```|\Z)", re.S)
_URL = re.compile(r"\b(?:[a-z][a-z0-9+.-]*://|www\.)\S+", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?(?:/\d+)?\b")
_IPV6 = re.compile(r"\b(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\b", re.I)
_LOGGY = re.compile(
    r"\d{1,4}[-/:]\d{1,2}[-/:]\d{1,4}"                       # dates and times
    r"|\b(?:error|err|errno|warn(?:ing)?|fatal|critical|info|debug|exception|traceback|failed|failure"
    r"|denied|refused|timeout|timed out|unreachable|segfault|panic|killed|not found|forbidden)\b"
    r"|\w+(?:Error|Exception)\b|\bHTTP/\d|\b[1-5]\d\d\b|\w+=\S+|[/\\][\w.-]+[/\\]|\[[^\]]*\]"
    r"|\bat [\w.$]+\(|File \"|\w+\(\)|[{};<>]|::|->|\$ "
    r"|^\s*(?:sudo|systemctl|apt-get|apt|yum|dnf|curl|wget|traceroute|mtr|ssh|scp|dig|nslookup|netstat"
    r"|ifconfig|iptables|nft|grep|mysql|docker|kubectl)\b",                  # shell commands
    re.I,
)
_PERSIAN_SCRIPT = re.compile(r"[\u0600-\u06FF\uFB50-\uFDFF\uFE70-\uFEFF]")
_WORD = re.compile(r"[^\W\d_]+", re.U)


def _is_log_line(line: str) -> bool:
    return not _PERSIAN_SCRIPT.search(line) and bool(_LOGGY.search(line))


def strip_ignorable(text: str) -> str:
    """Remove code/log blocks, URLs, e-mails, IPs and Latin log lines: what the judgement must not see."""
    text = _FENCED.sub(" ", text)
    lines = [ln for ln in text.splitlines() if not ln.startswith(("    ", "\t"))]
    lines = [ln for ln in lines if not _is_log_line(ln)]
    text = "\n".join(lines)
    for pattern in (_URL, _EMAIL, _IPV4, _IPV6):
        text = pattern.sub(" ", text)
    return text


# --- the scored judgement --------------------------------------------------------------------------------

PERSIAN_WORDS = frozenset(
    "است هست نیست هستم هستند بود بودم شد شده شدم شود نشد را که می نمی این آن من ما شما ایشان برای از با به "
    "در تا هم یا اگر ولی اما چه کرد کنم کنید کند کرده دارد ندارد دارم داریم باشد نیز هیچ همه خیلی لطفا "
    "لطفاً سلام ممنون مرسی".split())
ARABIC_WORDS = frozenset(
    "فی في هذا هذه ذلک ذلك تلک تلك التی التي الذی الذي الذين الذین الى إلى على عن مع لا لم لن قد هل هناک هناك "
    "کان كان کانت كانت لیس ليس أن إن أو ثم لکن لكن منذ عند ماذا کیف كيف لماذا نحن أنا حتى متى".split())
PERSIAN_AL_WORDS = frozenset("البته الان الآن الهام الماس الزام الزامی الوند الویه".split())
_PERSIAN_LETTERS = set("پچژگ")
# Letters of other languages written in Arabic script that Persian never uses: Urdu (ٹ ڈ ڑ ں ھ ہ ے ۓ),
# Kurdish Sorani (ە ێ ۆ ڵ ڕ ڤ), Pashto (ښ ږ ګ ځ څ ډ ړ ڼ ۍ ې), Sindhi (ڄ ڃ ڇ ڊ ڏ ڙ ڦ ڻ ٻ ٺ ٽ ٿ), Uyghur
# (ۇ ۈ ۋ ۉ ې).
_OTHER_SCRIPT_LETTERS = set("ٹڈڑںےۓێۆڵڕڤښږګځڅډړڼۍېڄڃڇڊڏڙڦڻٻٺٽٿۇۈۋۉ")
# Forms of heh that some keyboards and pasted text give Persian too: evidence only beside a letter above.
_WEAK_OTHER_LETTERS = set("ھہە")
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")


@dataclass(frozen=True, slots=True)
class Verdict:
    language: str  # "persian" | "arabic" | "other_script" | "cyrillic" | "finglish" | "empty"
    persian_score: int
    arabic_score: int
    script_words: int
    latin_words: int


def _word_scores(word: str) -> tuple[int, int]:
    """(persian, arabic) evidence of one Arabic-script word, scored as the module doc's table says."""
    bare = _HARAKAT.sub("", word).translate(_LETTERS)
    persian = 2 * bool(_PERSIAN_LETTERS & set(bare)) + (bare in PERSIAN_WORDS)
    persian += bare.startswith(("می", "نمی")) and len(bare) > 4 and bare not in PERSIAN_WORDS
    arabic = 2 * ("ة" in bare) + bare.endswith("ى") + bare.startswith(("أ", "إ")) + (bare in ARABIC_WORDS)
    if bare.startswith("ال") and len(bare) > 3 and not persian and bare not in PERSIAN_AL_WORDS:
        arabic += bare not in ARABIC_WORDS
    return int(persian), int(arabic)


def judge(text: str) -> Verdict:
    """Say which language ``text`` is written in, ignoring what :func:`strip_ignorable` removes."""
    words = _WORD.findall(strip_ignorable(normalise(text)).replace("\u200c", ""))
    script = [w for w in words if _PERSIAN_SCRIPT.search(w)]
    latin = len(words) - len(script)
    cyrillic = sum(bool(_CYRILLIC.search(w)) for w in words)
    other = sum(bool(_OTHER_SCRIPT_LETTERS & set(w)) for w in script)
    if other:
        other += sum(bool(_WEAK_OTHER_LETTERS & set(w)) and not _OTHER_SCRIPT_LETTERS & set(w) for w in script)
    scores = [_word_scores(w) for w in script]
    p, a = sum(s[0] for s in scores), sum(s[1] for s in scores)
    if not words:
        language = "empty"
    elif cyrillic and cyrillic * 2 >= latin and cyrillic > len(script):
        language = "cyrillic"  # e.g. Tajik: Persian, but not in Persian letters
    elif not script or latin > len(script):
        language = "finglish"
    elif other and other * 5 >= len(script):
        language = "other_script"  # Urdu, Kurdish, Pashto, ... in Arabic script
    elif a >= 2 and a > p:
        language = "arabic"
    else:
        language = "persian"
    return Verdict(language, p, a, len(script), latin)
