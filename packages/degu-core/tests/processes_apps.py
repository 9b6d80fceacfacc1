"""Apps and process targets for test_processes.py.

A plain module (not a test file) so that spawn and forkserver children can
import what the parent pickles by reference; test_processes.py puts this
directory on sys.path, which multiprocessing copies into its children.
"""

from __future__ import annotations

import signal
import time
from multiprocessing.connection import Connection
from typing import Any


class Hello:
    """A picklable RGI app answering every request with ``body``."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __call__(self, session: Any, request: Any, api: Any) -> Any:
        return (200, "OK", {}, self.body)

    def __repr__(self) -> str:
        return f"Hello({self.body!r})"


def ignore_sigterm(ready: Connection) -> None:
    """Process target: ignore SIGTERM, say so, then idle until killed."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready.send("ignoring")
    while True:
        time.sleep(60)


def report_lifelines(conn: Connection) -> None:
    """Process target: send whether every inherited lifeline copy is closed."""
    from degu import _processes

    conn.send([owned.lifeline.closed for owned in _processes._STARTED.values()])
