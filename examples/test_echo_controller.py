"""Tests for examples/echo_controller.py, written three ways on purpose.

The same checks appear as a pytest fixture, as a ``unittest.TestCase`` with
``setUp``/``tearDown``, and with the ``degu_controller`` fixture of
degu-controller's pytest plugin: docs/howto/test-asyncio-server.rst includes
each version from this file, so the how-to shows code that is known to pass.
"""

from __future__ import annotations

import socket
import sys
import unittest
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# examples/ is a folder of scripts, not a package: make the example importable.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import echo_controller  # noqa: E402
from echo_controller import MAX_LINE, LineEchoController  # noqa: E402


def talk(address: Any, *lines: bytes) -> list[bytes]:
    """Send each line and read one reply line for it.

    An empty line sends nothing and just reads: b"" there means the server
    has hung up (never send after that: the peer would answer with a reset).
    """
    with (
        socket.create_connection(address, timeout=5) as sock,
        sock.makefile("rb") as replies,
    ):
        answers = []
        for line in lines:
            sock.sendall(line)
            answers.append(replies.readline())
        return answers


# --- pytest version ----------------------------------------------------------
@pytest.fixture
def echo_server() -> Iterator[Any]:
    """Start the line-echo server on a free port; yield its address."""
    controller = LineEchoController("127.0.0.1", 0)
    controller.start()  # returns once the server accepts connections
    try:
        yield controller.address
    finally:
        controller.stop()  # closes the clients too, then joins the thread


def test_echoes_each_line(echo_server: Any) -> None:
    assert talk(echo_server, b"one\n", b"two\n") == [b"one\n", b"two\n"]


def test_says_bye_on_quit(echo_server: Any) -> None:
    assert talk(echo_server, b"QUIT\n", b"") == [b"BYE\n", b""]


# --- end of pytest version ---------------------------------------------------


# --- plugin version ----------------------------------------------------------
# degu-controller's opt-in pytest plugin has that fixture already: opt in once
# (in the top-level conftest.py, or in a test module as here) and hand the
# degu_controller fixture a Controller, or just a protocol factory.
pytest_plugins = ["degu.controller.pytest_plugin"]


def test_echoes_with_the_plugin_fixture(degu_controller: Any) -> None:
    controller = degu_controller(LineEchoController("127.0.0.1", 0))
    assert talk(controller.address, b"three\n", b"QUIT\n") == [b"three\n", b"BYE\n"]


# --- end of plugin version ---------------------------------------------------


def test_accepts_a_line_of_MAX_LINE_bytes(echo_server: Any) -> None:
    longest = b"x" * (MAX_LINE - 1) + b"\n"
    assert talk(echo_server, longest) == [longest]


def test_refuses_a_line_of_MAX_LINE_plus_one_bytes(echo_server: Any) -> None:
    too_long = b"x" * MAX_LINE + b"\n"
    assert talk(echo_server, too_long, b"") == [b"ERROR line too long\n", b""]


def test_refuses_an_endless_line(echo_server: Any) -> None:
    assert talk(echo_server, b"x" * MAX_LINE) == [b"ERROR line too long\n"]


def test_stop_leaves_nothing_listening() -> None:
    with LineEchoController("127.0.0.1", 0) as controller:
        address = controller.address
        assert talk(address, b"hi\n") == [b"hi\n"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5).close()


def test_main_runs_and_exits(capsys: pytest.CaptureFixture[str]) -> None:
    echo_controller.main()
    out = capsys.readouterr().out
    assert "got b'BYE\\n'" in out
    assert out.endswith("stopped; nothing is left listening\n")


# --- unittest version --------------------------------------------------------
class LineEchoTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.controller = LineEchoController("127.0.0.1", 0)
        self.controller.start()  # returns once the server accepts connections
        self.address = self.controller.address

    def tearDown(self) -> None:
        self.controller.stop()  # closes the clients too, then joins the thread

    def test_echoes_each_line(self) -> None:
        self.assertEqual(talk(self.address, b"one\n", b"two\n"), [b"one\n", b"two\n"])

    def test_says_bye_on_quit(self) -> None:
        self.assertEqual(talk(self.address, b"QUIT\n", b""), [b"BYE\n", b""])


# --- end of unittest version -------------------------------------------------


if __name__ == "__main__":
    unittest.main()
