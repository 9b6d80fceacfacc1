"""Tests for examples/route_requests.py, and the Router limits it relies on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# examples/ is a folder of scripts, not a package: make the example importable.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import route_requests  # noqa: E402
from route_requests import build_app, home  # noqa: E402

from degu.applib import ROUTER_MAX_DEPTH, Router  # noqa: E402
from degu.client import Client  # noqa: E402

# The server fixtures come from Degu's opt-in pytest plugin
# (docs/howto/pytest-fixtures.rst); the tests below only name the app.
pytest_plugins = ["degu.pytest_plugin"]


@pytest.fixture
def degu_app() -> Any:
    return build_app()


@pytest.fixture
def degu_server_options() -> dict[str, Any]:
    return {"timeout": 10}


@pytest.fixture
def address(degu_server: Any) -> Any:
    return degu_server.address


def call(address: Any, method: str, uri: str, body: bytes | None = None) -> Any:
    with Client(address, timeout=10).connect() as conn:
        r = conn.request(method, uri, {}, body)
        return r.status, (None if r.body is None else r.body.read())


def test_main_prints_every_answer(capsys: pytest.CaptureFixture[str]) -> None:
    route_requests.main()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(route_requests.URIS)
    assert lines[4] == (
        "GET /api/v1/users/ada/keys?limit=2 -> 200 OK "
        "b'mount=api/v1/users path=ada/keys query=limit=2\\n'"
    )


def test_head_on_home_has_the_get_length(address: Any) -> None:
    with Client(address, timeout=10).connect() as conn:
        r = conn.head("/", {})
        assert (r.status, r.headers["content-length"], r.body) == (200, 5, None)
        assert conn.get("/", {}).body.read() == b"home\n"


def test_refused_method_with_a_body_still_gets_405(address: Any) -> None:
    # MethodFilter reads and drops a small body, so the client sees the 405
    # rather than a closed connection.
    assert call(address, "PUT", "/api/v1/status", b"x" * 1000) == (405, None)


def test_unknown_paths_get_410(address: Any) -> None:
    assert call(address, "GET", "/api") == (410, None)
    assert call(address, "GET", "/api/v2/status") == (410, None)
    assert call(address, "GET", "/api/v1/status/more")[0] == 200  # leaf takes the rest
    assert call(address, "POST", "/nowhere", b"data") == (410, None)


def test_410_answer_reaches_curl(degu_server: Any) -> None:
    """curl sees the Gone answer; degu_server is the plugin's, a URL included."""
    out = subprocess.run(
        ["curl", "-sS", "-i", "--max-time", "10", degu_server.url + "nowhere"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    if out.returncode == 127:
        pytest.skip("curl is not installed")
    assert out.stdout.startswith("HTTP/1.1 410 Gone\n")


def nested(depth: int) -> dict[Any, Any]:
    appmap: dict[Any, Any] = {None: home}
    for _ in range(depth - 1):
        appmap = {"x": appmap}
    return appmap


def test_router_accepts_ROUTER_MAX_DEPTH_levels() -> None:
    assert ROUTER_MAX_DEPTH == 10
    Router(nested(ROUTER_MAX_DEPTH))


def test_router_refuses_ROUTER_MAX_DEPTH_plus_one_levels() -> None:
    with pytest.raises(ValueError, match="max appmap depth 10 exceeded"):
        Router(nested(ROUTER_MAX_DEPTH + 1))


def test_router_refuses_a_value_that_is_not_an_app() -> None:
    with pytest.raises(TypeError, match=r"appmap\['api'\]: value not callable: 42"):
        Router({"api": 42})
