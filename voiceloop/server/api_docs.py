"""The API's documentation pages (/docs: Swagger UI, /redoc: ReDoc) with their scripts and
styles served by this server, not a CDN: FastAPI's own pages load them from jsdelivr, so on a
machine without internet /docs was a blank page. The assets come from the `fastapi-offline`
wheel (MIT; it bundles Swagger UI, Apache-2.0, and ReDoc, MIT); only its files are used, the
app stays a plain FastAPI."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"


def assets_dir() -> Path | None:
    try:
        import fastapi_offline
    except ImportError:
        return None
    return Path(fastapi_offline.__file__).parent / "static"


MISSING = (
    "<!doctype html><title>voiceloop API</title><p>The API pages need the <code>fastapi-offline</code> "
    "package (<code>pip install fastapi-offline</code>, or rerun <code>scripts/setup.sh</code>). "
    'The schema itself is at <a href="openapi.json">/openapi.json</a>.</p>'
)


def install_api_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Adds the two pages and their assets; create the app with docs_url=None, redoc_url=None."""
    assets = assets_dir()
    if assets is None:  # an environment installed before the dependency: say so, serve the rest

        @app.get(docs_url, include_in_schema=False)
        @app.get(redoc_url, include_in_schema=False)
        async def missing() -> HTMLResponse:
            return HTMLResponse(MISSING, status_code=503)

        return
    app.mount(ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - API",
            oauth2_redirect_url=f"{root}{oauth2_redirect_url}",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - API",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
