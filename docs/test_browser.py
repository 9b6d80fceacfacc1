"""The built site works in a real browser: pages load cleanly and search finds things.

Run by ``nox -s docs`` after the HTML build.  The site is served by Degu itself
(``Server`` + ``FilesApp`` on 127.0.0.1) and driven by Debian's headless
Chromium through Playwright; skipped, with the reason, where either is missing.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

BUILD = Path(
    os.environ.get("DEGU_DOCS_HTML", Path(__file__).parent / "_build" / "html")
)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The flags that keep Chromium quiet on a machine without internet access.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed"
)
if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium package is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    from degu.applib import FilesApp
    from degu.server import Server

    if not (BUILD / "index.html").exists():
        pytest.fail(f"build the HTML docs first: no {BUILD / 'index.html'}")
    server = Server(("127.0.0.1", 0), FilesApp(str(BUILD.resolve())))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.address
        yield f"http://{host}:{port}/"
    finally:
        server.shutdown()
        thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def _load(browser: object, url: str) -> tuple[object, list[str]]:
    page = browser.new_page()  # type: ignore[attr-defined]
    problems: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("requestfailed", lambda req: problems.append(f"failed: {req.url}"))
    page.on(
        "response",
        lambda resp: (
            resp.status >= 400 and problems.append(f"{resp.status}: {resp.url}")
        ),
    )
    response = page.goto(url, wait_until="load", timeout=20_000)
    assert response is not None and response.status == 200, url
    return page, problems


def _tutorials() -> list[str]:
    return sorted(
        p.relative_to(BUILD).as_posix() for p in (BUILD / "tutorial").glob("*.html")
    )


def test_index_loads_without_console_errors(site: str, browser: object) -> None:
    page, problems = _load(browser, site + "index.html")
    assert "Degu" in page.title()  # type: ignore[attr-defined]
    assert problems == []


@pytest.mark.parametrize("path", _tutorials())
def test_tutorial_loads_without_console_errors(
    site: str, browser: object, path: str
) -> None:
    page, problems = _load(browser, site + path)
    assert page.locator("h1").count() == 1  # type: ignore[attr-defined]
    assert problems == []


def test_search_page_finds_the_server_reference(site: str, browser: object) -> None:
    page, problems = _load(browser, site + "search.html?q=serve_forever")
    results = page.locator("#search-results ul.search li")  # type: ignore[attr-defined]
    results.first.wait_for(timeout=20_000)
    assert "server" in results.first.inner_text().lower()
    assert problems == []
