"""The built site works in a real browser: pages load cleanly, search finds things,
every page shows the versions and the source, code blocks have a copy button and
never scroll sideways.

Run by ``nox -s docs`` after the HTML build.  The site is served by Degu itself
(``Server`` + ``FilesApp`` on 127.0.0.1) and driven by Debian's headless
Chromium through Playwright; skipped, with the reason, where either is missing.
"""

from __future__ import annotations

import os
import shutil
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(
    os.environ.get("DEGU_DOCS_HTML", Path(__file__).parent / "_build" / "html")
)
DISTRIBUTIONS = ("degu-core", "degu-embed", "degu-controller")
SOURCE_URL = "https://github.com/degu-project/degu"  # as in docs/conf.py
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


_contexts: list[object] = []


@pytest.fixture(autouse=True)
def _close_contexts() -> Iterator[None]:
    """Each test's pages close after it, so their connections do not pile up."""
    yield
    while _contexts:
        _contexts.pop().close()  # type: ignore[attr-defined]


def _load(browser: object, url: str, **options: object) -> tuple[object, list[str]]:
    """Open *url* in a new context (Playwright's new_context *options*)."""
    context = browser.new_context(**options)  # type: ignore[attr-defined]
    _contexts.append(context)
    page = context.new_page()
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


def _version(dist: str) -> str:
    with (ROOT / "packages" / dist / "pyproject.toml").open("rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert isinstance(version, str)
    return version


@pytest.mark.parametrize("path", ["index.html", "reference/server.html"])
def test_page_shows_the_versions_and_links_to_the_source(
    site: str, browser: object, path: str
) -> None:
    page, problems = _load(
        browser, site + path, viewport={"width": 1280, "height": 800}
    )
    versions = page.locator(".sidebar-drawer .degu-versions")  # type: ignore[attr-defined]
    assert versions.is_visible()
    text = " ".join(versions.inner_text().split())
    for dist in DISTRIBUTIONS:
        assert f"{dist} {_version(dist)}" in text
        link = versions.get_by_role("link", name=f"{dist} {_version(dist)}")
        assert link.get_attribute("title") == f"{dist} changelog"
    source = versions.get_by_role("link", name="Source code")
    assert source.get_attribute("href") == SOURCE_URL
    # Furo's button: this page's own source in the repository.
    view = page.locator('a[title="View this page"]')  # type: ignore[attr-defined]
    rst = path.removesuffix(".html") + ".rst"
    assert view.get_attribute("href").startswith(f"{SOURCE_URL}/blob/main/docs/{rst}")
    assert problems == []


def test_version_link_opens_the_changelog(site: str, browser: object) -> None:
    page, problems = _load(
        browser, site + "index.html", viewport={"width": 1280, "height": 800}
    )
    page.locator(".degu-versions").get_by_role("link", name="degu-core").click()  # type: ignore[attr-defined]
    page.wait_for_url("**/changes/degu-core.html")  # type: ignore[attr-defined]
    assert "changelog" in page.locator("h1").inner_text().lower()  # type: ignore[attr-defined]
    assert problems == []


def test_copy_button_copies_the_code_without_prompts_or_output(
    site: str, browser: object
) -> None:
    page, problems = _load(
        browser,
        site + "index.html",
        permissions=["clipboard-read", "clipboard-write"],
    )
    block = (
        page.locator(
            "div.highlight-pycon, div.highlight-python3, div.highlight-default"
        )
        .filter(  # type: ignore[attr-defined]
            has_text="Hello from Degu"
        )
        .first
    )
    block.hover()
    button = block.locator("button.copybtn")
    assert button.count() == 1
    button.click()
    copied = page.evaluate("navigator.clipboard.readText()")  # type: ignore[attr-defined]
    lines = copied.splitlines()
    assert lines[0] == "import threading"
    assert "server = Server(('127.0.0.1', 0), app)  # port 0: any free port" in lines
    assert not any(line.startswith((">>>", "...")) for line in lines)
    assert "(200, b'Hello from Degu\\n')" not in lines  # output is not copied
    assert problems == []


@pytest.mark.parametrize(
    "path", ["index.html", "installation.html", "reference/server.html", *_tutorials()]
)
def test_code_blocks_do_not_scroll_sideways_on_a_phone(
    site: str, browser: object, path: str
) -> None:
    page, problems = _load(browser, site + path, viewport={"width": 375, "height": 740})
    blocks = page.locator("div.highlight pre")  # type: ignore[attr-defined]
    assert blocks.count() > 0
    wide = page.evaluate(  # type: ignore[attr-defined]
        """() => Array.from(document.querySelectorAll('div.highlight pre'))
            .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
            .map(pre => pre.textContent.slice(0, 60))"""
    )
    assert wide == []
    assert problems == []
