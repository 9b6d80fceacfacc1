"""The argument rules servers and clients share are written once, and agree."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from degu._checks import address_family, check_positive
from degu.client import Client
from degu.server import Server


def _app(session: Any, request: Any, api: Any) -> Any:
    return (200, "OK", {}, None)


@pytest.mark.parametrize(
    ("address", "family"),
    [
        (("127.0.0.1", 0), socket.AF_INET),
        (("::1", 0, 0, 0), socket.AF_INET6),
        ("/tmp/x.sock", socket.AF_UNIX),
        (b"\x00abstract", socket.AF_UNIX),
        (b"", socket.AF_UNIX),
    ],
)
def test_address_family_follows_the_address_shape(address: Any, family: int) -> None:
    assert address_family(address) == family


BAD_ADDRESSES = [
    (
        ("127.0.0.1", 0, 0),
        ValueError,
        "address: must have 2 or 4 items; got ('127.0.0.1', 0, 0)",
    ),
    ((), ValueError, "address: must have 2 or 4 items; got ()"),
    ("rel.sock", ValueError, "address: bad socket filename: 'rel.sock'"),
    (
        "/tmp/../tmp/x.sock",
        ValueError,
        "address: bad socket filename: '/tmp/../tmp/x.sock'",
    ),
    (
        (b"127.0.0.1", 0),
        TypeError,
        "host: need a <class 'str'>; got a <class 'bytes'>: b'127.0.0.1'",
    ),
    (
        ("127.0.0.1", "80"),
        TypeError,
        "port: need a <class 'int'>; got a <class 'str'>: '80'",
    ),
    (
        ["127.0.0.1", 0],
        TypeError,
        "address: need a (<class 'tuple'>, <class 'str'>, <class 'bytes'>); "
        "got a <class 'list'>: ['127.0.0.1', 0]",
    ),
]


@pytest.mark.parametrize(("address", "exc", "message"), BAD_ADDRESSES)
def test_address_family_names_what_is_wrong(
    address: Any, exc: type, message: str
) -> None:
    with pytest.raises(exc) as info:
        address_family(address)
    assert str(info.value) == message


@pytest.mark.parametrize(("address", "exc", "message"), BAD_ADDRESSES)
def test_server_and_client_refuse_an_address_alike(
    address: Any, exc: type, message: str
) -> None:
    with pytest.raises(exc) as info:
        Server(address, _app)
    assert str(info.value) == message
    with pytest.raises(exc) as info:
        Client(address)
    assert str(info.value) == message


@pytest.mark.parametrize("value", [1, 0.001, 30, 1e300])
def test_check_positive_returns_a_finite_positive_number(value: float) -> None:
    assert check_positive("timeout", value) is value


@pytest.mark.parametrize(
    ("value", "exc", "message"),
    [
        (0, ValueError, "need 0 < min_rate < inf; got 0"),
        (-1.5, ValueError, "need 0 < min_rate < inf; got -1.5"),
        (float("inf"), ValueError, "need 0 < min_rate < inf; got inf"),
        (float("nan"), ValueError, "need 0 < min_rate < inf; got nan"),
        (
            True,
            TypeError,
            "min_rate: need a (<class 'int'>, <class 'float'>); got a <class 'bool'>: True",
        ),
        (
            "5",
            TypeError,
            "min_rate: need a (<class 'int'>, <class 'float'>); got a <class 'str'>: '5'",
        ),
    ],
)
def test_check_positive_names_the_option_and_value(
    value: Any, exc: type, message: str
) -> None:
    with pytest.raises(exc) as info:
        check_positive("min_rate", value)
    assert str(info.value) == message


@pytest.mark.parametrize("name", ["timeout", "min_rate"])
@pytest.mark.parametrize("value", [0, float("inf"), True, "5"])
def test_server_and_client_refuse_a_bad_rate_or_timeout_alike(
    name: str, value: Any
) -> None:
    with pytest.raises((TypeError, ValueError)) as server_info:
        Server(("127.0.0.1", 0), _app, **{name: value})
    with pytest.raises((TypeError, ValueError)) as client_info:
        Client(("127.0.0.1", 0), **{name: value})
    assert type(server_info.value) is type(client_info.value)
    assert str(server_info.value) == str(client_info.value)


def test_server_and_client_default_to_the_same_min_rate() -> None:
    with Server(("127.0.0.1", 0), _app) as server:
        assert server.min_rate == Client(server.address).min_rate == 16384


@pytest.mark.parametrize(
    "name",
    [
        "x-a",
        "x" * 32,
        "x" * 33,
        "x_y",
        "x y",
        "x.y",
        "\u00e9t\u00e9",
        "x\u0660",  # an Arabic-Indic digit: str.isdigit(), but not ASCII
        "x\x00",
    ],
)
def test_client_base_headers_and_rendering_agree_on_header_names(name: str) -> None:
    """A base header the Client takes is one every request can send."""
    from degu._rendering import render_request

    try:
        render_request("GET", "/", {name: "1"})
    except ValueError:
        renders = False
    else:
        renders = True
    client = Client(("127.0.0.1", 80))
    try:
        client.set_base_header(name, "1")
    except ValueError:
        accepted = False
    else:
        accepted = True
    assert accepted == renders


@pytest.mark.parametrize(
    ("method", "exc", "message"),
    [
        ("get", ValueError, "bad method: 'get'"),
        ("TRACE", ValueError, "bad method: 'TRACE'"),
        (
            b"GET",
            TypeError,
            "method: need a <class 'str'>; got a <class 'bytes'>: b'GET'",
        ),
    ],
)
def test_connection_and_request_refuse_a_method_alike(
    method: Any, exc: type, message: str
) -> None:
    from degu._checks import refuse_method
    from degu.base import Connection, Request

    with pytest.raises(exc) as info:
        refuse_method(method)
    assert str(info.value) == message
    a, b = socket.socketpair()
    with a, b:
        with pytest.raises(exc) as info:
            Connection(a, None).request(method, "/", {}, None)
        assert str(info.value) == message
    with pytest.raises(exc) as info:
        Request(method, "/", {}, None, [], [], None)
    assert str(info.value) == message
