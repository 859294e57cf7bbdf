"""/docs and /redoc work offline: their scripts and styles are served by voiceloop itself
(issue 20: Swagger UI loaded from a CDN, so the page was blank without internet)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from voiceloop.config import load_settings
from voiceloop.testing.serve import running_server

TOKEN = "a-long-enough-test-token-for-docs"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = load_settings("offline")
    settings.llm.name = "echo"
    settings.log.dir = tmp_path_factory.mktemp("runs")
    settings.serve.token = TOKEN  # type: ignore[assignment]  # pydantic makes it a SecretStr
    with running_server(settings) as url:
        yield url


def assets(html: str) -> list[str]:
    return re.findall(r'<(?:script|link)[^>]*?(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize(("page", "kinds"), [("/docs", {"js", "css", "png"}), ("/redoc", {"js", "png"})])
def test_every_asset_of_the_docs_pages_is_local_and_served(base_url: str, page: str, kinds: set[str]) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        html = client.get(page, params={"token": TOKEN})  # the token becomes a cookie, as for the page
        assert html.status_code == 200, html.text
        urls = assets(html.text)
        assert {url.rsplit(".", 1)[-1] for url in urls} == kinds
        for url in urls:
            assert not urlsplit(url).netloc and url.startswith("/"), url  # no CDN, no other host
            served = client.get(url)
            assert served.status_code == 200, url
            assert len(served.content) > 1000
        assert "cdn.jsdelivr.net" not in html.text and "fonts.googleapis.com" not in html.text
        assert client.get("/openapi.json").json()["info"]["title"] == "voiceloop"


def test_swagger_ui_renders_the_api_with_the_internet_cut_off(base_url: str) -> None:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    local = urlsplit(base_url).netloc
    outside: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()

            def only_local(route) -> None:  # noqa: ANN001
                if urlsplit(route.request.url).netloc == local:
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_local)
            page.goto(f"{base_url}/docs?token={TOKEN}")
            sync_api.expect(page.locator(".swagger-ui .info .title")).to_contain_text(
                "voiceloop", timeout=30_000
            )
            sync_api.expect(page.locator(".opblock-summary-path", has_text="/health").first).to_be_visible()
        finally:
            browser.close()
    assert outside == []
