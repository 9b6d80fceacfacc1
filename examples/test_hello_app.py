"""Tests for examples/hello_app.py: the app itself, main(), and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import hello_app  # noqa: E402

from degu.base import Request, Session, api  # noqa: E402


def call(method: str, path: list[str]) -> tuple[object, ...]:
    request = Request(method, "/" + "/".join(path), {}, None, [], path, None)
    return hello_app.app(Session(("127.0.0.1", 1)), request, api)  # type: ignore[no-any-return]


def test_app_greets() -> None:
    assert call("GET", []) == (
        200,
        "OK",
        {"content-length": 14, "content-type": "text/plain"},
        b"Hello, world!\n",
    )
    assert call("GET", ["Ada"])[3] == b"Hello, Ada!\n"
    assert call("HEAD", ["Ada"])[3] is None
    assert call("GET", ["a", "b"])[0] == 404
    assert call("DELETE", [])[0] == 405


def test_main_prints_two_answers(capsys: pytest.CaptureFixture[str]) -> None:
    hello_app.main()
    assert capsys.readouterr().out == "/ 200 Hello, world!\n/Degu 200 Hello, Degu!\n"


def test_hello_app_under_the_cli() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "degu.server",
            "--app",
            "hello_app:app",
            "--address",
            "127.0.0.1:0",
        ],
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(" at ", 1)[1].strip()
        with urllib.request.urlopen(url + "CLI", timeout=10) as r:
            assert r.read() == b"Hello, CLI!\n"
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
