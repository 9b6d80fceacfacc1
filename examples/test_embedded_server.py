"""Tests for examples/embedded_server.py: the app, and the program per start method."""

from __future__ import annotations

import multiprocessing
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import embedded_server  # noqa: E402

from degu.base import Request, Session, api  # noqa: E402


def call(method: str, path: list[str]) -> object:
    request = Request(method, "/" + "/".join(path), {}, None, [], path, None)
    app = embedded_server.build_app("Hi")
    return app(Session(("127.0.0.1", 1)), request, api)


def test_build_app_greets_and_refuses_other_methods() -> None:
    assert call("GET", []) == (
        200,
        "OK",
        {"content-type": "text/plain"},
        b"Hi, world!\n",
    )
    assert call("GET", ["a", "b"]) == (
        200,
        "OK",
        {"content-type": "text/plain"},
        b"Hi, a/b!\n",
    )
    assert call("PUT", []) == (405, "Method Not Allowed", {}, None)


@pytest.mark.parametrize("method", multiprocessing.get_all_start_methods())
def test_program_serves_then_stops_its_server(method: str) -> None:
    result = subprocess.run(
        [sys.executable, str(HERE / "embedded_server.py"), "--start-method", method],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"serving on \('127\.0\.0\.1', \d+\) \(pid \d+\)", lines[0])
    assert lines[1:] == [
        "/ 200 Hello, world!",
        "/Degu 200 Hello, Degu!",
        "DELETE / 405 Method Not Allowed",
        "server exit code -15",
    ]
    assert result.stderr == ""
