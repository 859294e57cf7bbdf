"""The small page a browser gets instead of a JSON 401: a field for the access token.

Sent only to a GET that accepts text/html (a person opening the page); API clients, scripts and
websockets keep OpenAI's JSON error. The form sends the token as `?token=` to the address that
was asked for, which is the one way in that sets the HttpOnly cookie (see auth.py); the page
then takes it out of the address bar. Self-contained (no script or style from elsewhere: the
server may be offline), in English or Chinese as the browser's Accept-Language prefers.
"""

from __future__ import annotations

import html

TEXTS = {
    "en": {
        "title": "voiceloop: token needed",
        "heading": "This voiceloop server needs its access token",
        "explain": "Enter the token it was started with (serve.token, or VOICELOOP_SERVE__TOKEN).",
        "wrong": "That token is not the right one. Try again.",
        "label": "Access token",
        "button": "Open",
    },
    "zh": {
        "title": "voiceloop：需要访问令牌",
        "heading": "此 voiceloop 服务器需要访问令牌",
        "explain": "请输入启动时设置的令牌（serve.token 或 VOICELOOP_SERVE__TOKEN）。",
        "wrong": "令牌不正确，请重试。",
        "label": "访问令牌",
        "button": "打开",
    },
}


def wants_html(method: str, accept: str | None) -> bool:
    """A browser's navigation: a GET whose Accept names text/html (fetch and SDKs do not)."""
    return method in ("GET", "HEAD") and accept is not None and "text/html" in accept.lower()


def language(accept_language: str | None) -> str:
    """ "zh" when the browser ranks Chinese above English, else "en"."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in TEXTS:
            ranked.append((-quality, index, primary))
    return min(ranked)[2] if ranked else "en"


def token_page(path: str, *, wrong: bool, accept_language: str | None) -> bytes:
    lang = language(accept_language)
    text = TEXTS[lang]
    wrong_line = f'<p class="wrong" role="alert">{html.escape(text["wrong"])}</p>' if wrong else ""
    page = f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{html.escape(text["title"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 28rem; margin: 12vh auto; padding: 0 1rem; line-height: 1.45; }}
h1 {{ font-size: 1.3rem; }}
input, button {{ font: inherit; padding: 0.5rem 0.7rem; border-radius: 8px; border: 1px solid #8886; }}
input {{ width: 100%; box-sizing: border-box; margin: 0.3rem 0 0.8rem; }}
.wrong {{ color: #c62828; font-weight: 600; }}
</style>
</head>
<body>
<h1>{html.escape(text["heading"])}</h1>
<p>{html.escape(text["explain"])}</p>
{wrong_line}
<form id="token-form" method="get" action="{html.escape(path, quote=True)}">
<label for="token">{html.escape(text["label"])}</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">{html.escape(text["button"])}</button>
</form>
<script>
// Keep the tab named in the address (#info) across the form's round trip.
document.getElementById("token-form").action += location.hash;
</script>
</body>
</html>
"""
    return page.encode("utf-8")
