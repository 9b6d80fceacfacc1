"""The main job in a real browser: ``python -m degu.server`` driven by Chromium.

Run by ``nox -s docs`` (which installs Debian's ``chromium`` and Playwright);
skipped, with the reason, where either is missing.  The server is started as
a user starts it, in a directory of ordinary files, and the browser checks
what docs/howto/serve-directory.rst promises: the root shows a listing, a
sub-directory opens, a file named ``my file é.txt`` opens, a page whose
script stores JSON with ``!``, ``$`` and ``{`` in a cookie still loads its
next resource, an ``<audio>`` element plays a WAV over Range requests, and a
reload is answered ``304``.  Screenshots are written to ``$DEGU_SCREENSHOTS``
(the docs session sets it to ``docs/_build/screenshots``), or to a temporary
directory whose path the test prints.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Media may load without a user gesture in a test.
    "--autoplay-policy=no-user-gesture-required",
]

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed"
)
if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium package is not installed", allow_module_level=True)

COOKIE_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>cookie</title></head>
<body><p id="result">waiting</p>
<script>
document.cookie = 'prefs={"theme":"dark!","price":"$5"}; path=/';
fetch("next.txt").then(r => r.text().then(t => {
  document.getElementById("result").textContent = r.status + " " + t;
}));
</script></body></html>
"""

MEDIA_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>media</title></head>
<body><audio id="a" controls preload="auto" src="tone.wav"></audio></body></html>
"""


def write_wav(path: Path, seconds: float = 2.0, rate: int = 8000) -> None:
    """A quiet 440 Hz tone, 16-bit mono PCM, written with the stdlib."""
    frames = b"".join(
        struct.pack("<h", int(3000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = os.environ.get("DEGU_SCREENSHOTS")
    path = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="degu-shots-"))
    path.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {path}")
    return path


class DeguServer:
    """``python -m degu.server`` in *cwd*; its access log is collected."""

    def __init__(self, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "degu.server", "--address", "127.0.0.1:0"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self._logged = threading.Condition()
        self._drain = threading.Thread(target=self._read_log, daemon=True)
        self._drain.start()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r" at (http://\S+/)", line)
        assert match, (line, self.log)
        self.url = match.group(1)

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._logged:
                self.log.append(line.rstrip("\n"))
                self._logged.notify_all()

    def statuses(self, target: str) -> list[int]:
        """Statuses in the access log for ``GET target``."""
        found = []
        for line in list(self.log):
            match = re.search(r'"GET (\S+) HTTP/1\.1" (\d{3}) ', line)
            if match and match.group(1) == target:
                found.append(int(match.group(2)))
        return found

    def wait_for_status(self, target: str, status: int, timeout: float = 10) -> None:
        """Wait until the access log has *status* for ``GET target``.

        The server writes the line after the response, and a thread reads it
        from the pipe: a browser can be done before the line is here.
        """
        with self._logged:
            self._logged.wait_for(lambda: status in self.statuses(target), timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()
        self._drain.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeguServer]:
    www = tmp_path_factory.mktemp("www")
    (www / "sub").mkdir()
    (www / "sub" / "inner.txt").write_text("inside the sub-directory\n")
    (www / "my file é.txt").write_text("an accented name\n")
    (www / "cookie.html").write_text(COOKIE_PAGE)
    (www / "next.txt").write_text("next loaded")
    (www / "media.html").write_text(MEDIA_PAGE)
    (www / "page.txt").write_text("reload me\n")
    (www / ".env").write_text("SECRET=1\n")
    write_wav(www / "tone.wav")
    degu = DeguServer(www)
    try:
        yield degu
    finally:
        degu.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()  # a fresh profile: no cache, no cookies
    try:
        yield context.new_page()
    finally:
        context.close()


def test_root_shows_a_listing_and_a_sub_directory_opens(
    server: DeguServer, page: Any, shots: Path
) -> None:
    response = page.goto(server.url, wait_until="load", timeout=20_000)
    assert response.status == 200
    assert page.locator("h1").inner_text() == "Index of /"
    names = page.locator("td.name a").all_inner_texts()
    assert names[0] == "sub/"  # directories first
    assert "my file é.txt" in names and "tone.wav" in names
    assert ".env" not in names
    page.screenshot(path=str(shots / "listing-root.png"), full_page=True)
    page.click("text=sub/")
    page.wait_for_url(server.url + "sub/")
    assert page.locator("h1").inner_text() == "Index of /sub/"
    assert page.locator("td.name a").all_inner_texts() == ["../", "inner.txt"]
    page.screenshot(path=str(shots / "listing-sub.png"), full_page=True)


def test_a_file_with_a_space_and_an_accent_opens(
    server: DeguServer, page: Any, shots: Path
) -> None:
    page.goto(server.url, wait_until="load", timeout=20_000)
    with page.expect_navigation():
        page.click("text=my file é.txt")
    assert page.url == server.url + "my%20file%20%C3%A9.txt"
    assert page.locator("body").inner_text().strip() == "an accented name"
    page.screenshot(path=str(shots / "accented-file.png"))


def test_a_json_cookie_does_not_break_the_next_request(
    server: DeguServer, page: Any, shots: Path
) -> None:
    page.goto(server.url + "cookie.html", wait_until="load", timeout=20_000)
    result = page.locator("#result")
    page.wait_for_function(
        "document.getElementById('result').textContent !== 'waiting'",
        timeout=20_000,
    )
    assert result.inner_text() == "200 next loaded"
    assert 'prefs={"theme":"dark!","price":"$5"}' in page.evaluate("document.cookie")
    page.screenshot(path=str(shots / "cookie-page.png"))


def test_audio_reaches_have_current_data_over_range_requests(
    server: DeguServer, page: Any, shots: Path
) -> None:
    page.goto(server.url + "media.html", wait_until="load", timeout=20_000)
    page.wait_for_function(
        "document.getElementById('a').readyState >= 2", timeout=20_000
    )
    duration = page.evaluate("document.getElementById('a').duration")
    assert 1.9 < duration < 2.1
    # Chromium asks media for 'bytes=0-': the server's log shows 206 for it.
    server.wait_for_status("/tone.wav", 206)
    assert 206 in server.statuses("/tone.wav"), server.log
    page.screenshot(path=str(shots / "media-page.png"))


def test_a_reload_is_answered_304(server: DeguServer, page: Any) -> None:
    first = page.goto(server.url + "page.txt", wait_until="load", timeout=20_000)
    assert first.status == 200
    page.reload(wait_until="load", timeout=20_000)
    server.wait_for_status("/page.txt", 304)
    assert server.statuses("/page.txt")[:2] == [200, 304], server.log
