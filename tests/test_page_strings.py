"""The web page's word tables (static/js/lang-*.js): every language has every key, and every
key the page asks for (t("...") in the scripts, data-i18n* in index.html) is in them."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).parents[1] / "voiceloop" / "server" / "static"
KEY_LINE = re.compile(r'^\s+"?([\w.]+)"?:', re.MULTILINE)


def keys(language: str) -> set[str]:
    return set(KEY_LINE.findall((STATIC / "js" / f"lang-{language}.js").read_text(encoding="utf-8")))


def test_every_language_has_every_key_the_page_uses() -> None:
    english, chinese = keys("en"), keys("zh")
    assert english == chinese
    used = set(
        re.findall(r'data-i18n(?:-\w+)?="([\w.]+)"', (STATIC / "index.html").read_text(encoding="utf-8"))
    )
    for script in [STATIC / "app.js", *(STATIC / "js").glob("*.js")]:
        used |= set(re.findall(r'\bt\(\s*"([\w.]+)"', script.read_text(encoding="utf-8")))
    assert len(used) > 50 and used - english == set()
