"""Tests for examples/rest_service.py over a real loopback socket."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# examples/ is a folder of scripts, not a package: make the example importable.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import rest_service  # noqa: E402
from rest_service import MAX_ITEM_SIZE, ItemsClient, Store, build_app  # noqa: E402

from degu.client import Client  # noqa: E402

# The server fixtures come from Degu's opt-in pytest plugin
# (docs/howto/pytest-fixtures.rst); the tests below only name the app.
pytest_plugins = ["degu.pytest_plugin"]


# --- fixtures
@pytest.fixture
def degu_app() -> Any:
    """The app under test: a fresh, empty store for every test."""
    return build_app(Store())


@pytest.fixture
def degu_server_options() -> dict[str, Any]:
    return {"timeout": 10}


@pytest.fixture
def address(degu_server: Any) -> Any:
    """Where degu_server (the plugin's) serves degu_app on 127.0.0.1."""
    return degu_server.address


# --- end of fixtures


@pytest.fixture
def client(address: Any) -> Iterator[ItemsClient]:
    items = ItemsClient(address)
    try:
        yield items
    finally:
        items.close()


def request(address: Any, method: str, uri: str, body: bytes | None = None) -> Any:
    """One request on a new connection; return (status, headers, body bytes)."""
    with Client(address, timeout=10).connect() as conn:
        r = conn.request(method, uri, {}, body)
        return r.status, r.headers, (None if r.body is None else r.body.read())


def test_put_get_list_delete(client: ItemsClient) -> None:
    assert client.names() == []
    client.put("b", [1, 2])
    client.put("a", {"x": None})
    assert client.names() == ["a", "b"]
    assert client.get("a") == {"x": None}
    client.put("a", "replaced")
    assert client.get("a") == "replaced"
    client.delete("a")
    assert client.names() == ["b"]
    with pytest.raises(KeyError):
        client.get("a")
    with pytest.raises(KeyError):
        client.delete("a")


def test_put_answers_201_then_204(address: Any) -> None:
    assert request(address, "PUT", "/items/x", b"1")[0] == 201
    assert request(address, "PUT", "/items/x", b"2")[0] == 204
    status, headers, body = request(address, "GET", "/items/x")
    assert (status, headers["content-type"], body) == (200, "application/json", b"2")


def test_list_with_and_without_trailing_slash(address: Any) -> None:
    request(address, "PUT", "/items/x", b"1")
    assert request(address, "GET", "/items")[2] == b'["x"]'
    assert request(address, "GET", "/items/")[2] == b'["x"]'


def test_head_gives_the_length_without_a_body(address: Any) -> None:
    status, headers, body = request(address, "HEAD", "/items")
    assert (status, headers["content-length"], body) == (200, 2, None)


def test_item_of_MAX_ITEM_SIZE_bytes_is_stored(address: Any) -> None:
    value = "x" * (MAX_ITEM_SIZE - 2)  # plus two quotes
    body = json.dumps(value).encode()
    assert len(body) == MAX_ITEM_SIZE
    assert request(address, "PUT", "/items/big", body)[0] == 201
    assert request(address, "GET", "/items/big")[2] == body


def test_item_of_MAX_ITEM_SIZE_plus_one_bytes_is_refused(address: Any) -> None:
    body = json.dumps("x" * (MAX_ITEM_SIZE - 1)).encode()
    assert len(body) == MAX_ITEM_SIZE + 1
    status, _, answer = request(address, "PUT", "/items/big", body)
    assert status == 400
    assert b"larger than 65536" in answer
    assert request(address, "GET", "/items/big")[0] == 404


def test_bad_json_and_missing_body_are_400(address: Any) -> None:
    assert request(address, "PUT", "/items/x", b"{nope")[0] == 400
    status, _, answer = request(address, "PUT", "/items/x")
    assert (status, json.loads(answer)) == (
        400,
        {"error": "a JSON request body is needed"},
    )


def test_chunked_upload_from_http_client(address: Any) -> None:
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request(
            "PUT", "/items/c", body=iter([b"[1, ", b"2]"]), encode_chunked=True
        )
        assert conn.getresponse().read() == b""
        conn.request("GET", "/items/c")
        assert json.loads(conn.getresponse().read()) == [1, 2]
    finally:
        conn.close()


def test_wrong_method_path_or_prefix(address: Any) -> None:
    assert request(address, "POST", "/items/x", b"1")[0] == 405
    assert request(address, "DELETE", "/items")[0] == 405
    assert request(address, "PUT", "/items/a/b", b"1")[0] == 404
    assert request(address, "GET", "/other")[0] == 410


def test_main_prints_the_session(capsys: pytest.CaptureFixture[str]) -> None:
    rest_service.main()
    assert capsys.readouterr().out == (
        "names: ['apple', 'pear']\n"
        "apple: {'colour': 'red', 'stock': 3}\n"
        "after delete: ['apple']\n"
        "pear: not found\n"
    )


def test_404_keeps_an_http_client_connection_usable(address: Any) -> None:
    # The 404 carries content-length: 0, so http.client neither waits for
    # the connection to close nor loses the connection.
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        for _ in range(2):
            conn.request("GET", "/items/missing")
            response = conn.getresponse()
            assert (response.status, response.read()) == (404, b"")
    finally:
        conn.close()


def test_app_under_the_cli() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "degu.server",
            "--app",
            "rest_service:app",
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
        url = proc.stdout.readline().split(" at ", 1)[1].strip()
        put = urllib.request.Request(url + "items/banana", b'{"n": 1}', method="PUT")
        with urllib.request.urlopen(put, timeout=10) as r:
            assert r.status == 201
        with urllib.request.urlopen(url + "items", timeout=10) as r:
            assert r.read() == b'["banana"]'
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
