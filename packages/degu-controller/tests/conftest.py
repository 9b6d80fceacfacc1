"""Fixtures shared by the degu-controller tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from degu.controller import TIMEOUT_ENV

THREAD_DEADLINE = 5.0  # seconds a test waits for threads to wind down


@pytest.fixture(autouse=True)
def _no_timeout_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a PYTHONASYNCIOCONTROLLERTIMEOUT from the caller's shell out."""
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)


@pytest.fixture
def wait_thread_baseline() -> Iterator[Callable[[], None]]:
    """Return a check that the thread count is back where the test began.

    The check polls with a deadline (threads end asynchronously), and it
    also runs after the test, so every test leaves no thread behind.
    """
    baseline = threading.active_count()

    def check() -> None:
        deadline = time.monotonic() + THREAD_DEADLINE
        while threading.active_count() != baseline:
            if time.monotonic() > deadline:
                names = [t.name for t in threading.enumerate()]
                pytest.fail(f"threads: {names}; expected {baseline} in all")
            time.sleep(0.005)

    yield check
    check()
