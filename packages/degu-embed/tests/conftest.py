"""Fixtures for the degu-embed tests: start methods, helper apps, process checks.

The helper apps live in ``embed_apps.py``, a plain module on ``sys.path``: under
spawn and forkserver the child imports ``build_func`` by module and name, so it
must be importable there (multiprocessing copies the parent's ``sys.path``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

START_METHODS = ("fork", "spawn", "forkserver")


@pytest.fixture(scope="session", autouse=True)
def helper_processes() -> None:
    """Start the long-lived multiprocessing helpers once, before any test.

    The resource tracker (spawn, forkserver) and the fork server outlive the
    test that first needs them; started here, they never look like a leak
    to ``no_leftover_children``.
    """
    multiprocessing.resource_tracker.ensure_running()
    if "forkserver" in multiprocessing.get_all_start_methods():
        multiprocessing.forkserver.ensure_running()


@pytest.fixture(params=START_METHODS)
def start_method(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Make the code under test use this start method.

    The public API follows the current default context; tests pin it through
    the machinery's private override rather than changing the global default
    of the pytest process.
    """
    method: str = request.param
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {method!r} not available here")
    import degu._processes

    monkeypatch.setattr(degu._processes, "_START_METHOD", method)
    return method


@pytest.fixture
def start_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    """A start-up bound short enough that waiting for it would fail the test."""
    import degu

    monkeypatch.setattr(degu, "START_TIMEOUT", 20.0)
    return 20.0


def child_pids() -> set[int]:
    """Pids of this process's children, zombies included (Linux /proc)."""
    me = os.getpid()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # it exited while we looked
            continue
        # The command name may hold spaces or parens: fields follow the last ')'.
        fields = stat[stat.rindex(b")") + 2 :].split()
        if int(fields[1]) == me:
            found.add(int(entry))
    return found


@pytest.fixture
def no_leftover_children() -> Iterator[None]:
    """Fail the test if it leaves a child behind, running or unreaped."""
    import degu._processes

    before = child_pids()
    yield
    # Zombies first: asking a process for its exitcode would reap it.
    left = child_pids() - before
    assert left == set(), f"children left behind (running or zombie): {left}"
    # Under forkserver the server is the fork server's child, not ours.
    running = [p for p in degu._processes._STARTED if p.exitcode is None]
    assert running == []
