"""A line-echo server written with asyncio, run in a thread by a Controller.

Needs the degu-controller distribution: from a clone of the repository,
``python3 -m pip install ./packages/degu-controller`` (docs/installation.rst).

The server answers every line it receives with the same line, says ``BYE``
and hangs up on ``QUIT``, and refuses lines longer than ``MAX_LINE`` bytes.
``main()`` starts it on a free loopback port, talks to it with a plain
blocking socket, and stops it again: the pattern a test suite uses, shown
in docs/howto/test-asyncio-server.rst and tested in test_echo_controller.py.

Run it with ``python examples/echo_controller.py``; it exits by itself.
"""

from __future__ import annotations

import asyncio
import socket
from typing import cast

try:
    from degu.controller import Controller
except ImportError as e:  # say which distribution to install
    raise SystemExit(
        f"{__file__} needs degu-controller ({e}): install it with "
        "python3 -m pip install ./packages/degu-controller (docs/installation.rst)"
    ) from None

#: Longest line accepted, in bytes, including its b"\n".
MAX_LINE = 1024
TOO_LONG = b"ERROR line too long\n"


class LineEcho(asyncio.Protocol):
    """One connection: echo each complete line back."""

    def __init__(self) -> None:
        self.pending = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.pending += data
        while (end := self.pending.find(b"\n")) >= 0:
            line = bytes(self.pending[: end + 1])
            del self.pending[: end + 1]
            if len(line) > MAX_LINE:
                return self.hang_up(TOO_LONG)
            if line.rstrip(b"\r\n") == b"QUIT":
                return self.hang_up(b"BYE\n")
            self.transport.write(line)
        if len(self.pending) >= MAX_LINE:  # no b"\n" can arrive in time
            self.hang_up(TOO_LONG)

    def hang_up(self, last_words: bytes) -> None:
        assert self.transport is not None
        self.transport.write(last_words)
        self.transport.close()  # sends what was written, then closes


class LineEchoController(Controller):
    """Runs the line-echo server; ``factory()`` is all a Controller needs."""

    def factory(self) -> asyncio.BaseProtocol:
        return LineEcho()


def main() -> None:
    with LineEchoController("127.0.0.1", 0) as controller:
        host, port = controller.address
        print(f"serving on {host}:{port}")
        with socket.create_connection(controller.address, timeout=5) as sock:
            replies = sock.makefile("rb")
            for line in (b"hello\n", b"asyncio in a thread\n", b"QUIT\n"):
                sock.sendall(line)
                print(f"sent {line!r}, got {replies.readline()!r}")
            replies.close()
    print("stopped; nothing is left listening")


if __name__ == "__main__":
    main()
