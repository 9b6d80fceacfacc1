"""Build functions and exceptions for the degu-embed tests.

A plain module (not a test file) so that spawn and forkserver children can
import what the parent pickles by reference.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any


def build_hello(body: bytes) -> Any:
    """An RGI app answering every request with ``body``."""

    def app(
        session: Any, request: Any, api: Any
    ) -> tuple[int, str, dict[str, Any], bytes]:
        return (200, "OK", {}, body)

    return app


def build_hello_ignoring_sigterm(body: bytes) -> Any:
    """Like build_hello, in a process that shrugs off SIGTERM."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return build_hello(body)


class TwoArgError(Exception):
    """Pickles, but cannot be rebuilt from its args (two are required)."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what} failed: {why}")


class LockedError(Exception):
    """Cannot be pickled at all: it holds a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def raise_plain() -> None:
    raise ValueError("no app for you")


def raise_two_args() -> None:
    raise TwoArgError("build", "bad config")


def raise_unpicklable() -> None:
    raise LockedError("locked out")


def call_sys_exit() -> None:
    sys.exit(3)


def call_os_exit() -> None:
    os._exit(7)


def stay_silent() -> None:
    """Never return (the parent's start-up bound must end this)."""
    while True:
        time.sleep(60)
