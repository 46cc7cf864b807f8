"""Keep the web catalogs in step with the pages: ``python tools/catalogs.py`` adds every message id the
templates and web modules use to ``dashboards/web/locale/{fa,en}.po`` (English gets the id itself, Persian an
empty text to fill in) and lists the ids still without a Persian text. ``tests/test_templates.py`` fails
while any id is missing or untranslated."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dashboards.web.templating import LOCALE, message_ids  # noqa: E402


def update(lang: str, ids: set[str]) -> list[str]:
    path = LOCALE / f"{lang}.po"
    if path.exists():
        with path.open("rb") as fh:
            cat = read_po(fh, locale=lang)
    else:
        cat = Catalog(locale=lang, project="Negahban")
    for mid in sorted(ids):
        if mid not in cat:
            cat.add(mid, mid if lang == "en" else "")
    for message in list(cat):
        if message.id and message.id not in ids:
            cat.delete(message.id)
    with path.open("wb") as fh:
        write_po(fh, cat, width=0, omit_header=False, sort_output=True)
    return [m.id for m in cat if m.id and not m.string]


if __name__ == "__main__":
    used = message_ids()
    update("en", used)
    missing = update("fa", used)
    for mid in missing:
        print(f"fa.po: no Persian text for {mid!r}")
    sys.exit(1 if missing else 0)
