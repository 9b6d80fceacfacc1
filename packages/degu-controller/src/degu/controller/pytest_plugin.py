"""A pytest fixture running asyncio servers with Controller (opt-in plugin).

Nothing registers this module with pytest: a test suite opts in with one
line in its top-level ``conftest.py`` (or in a test module)::

    pytest_plugins = ["degu.controller.pytest_plugin"]

The how-to is docs/howto/pytest-fixtures.rst.  This module imports pytest,
so only test suites import it; degu-controller does not depend on pytest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from degu.controller import Controller

__all__ = ["FactoryController", "degu_controller"]


class FactoryController(Controller):
    """A :class:`~degu.controller.Controller` whose protocols come from a callable.

    Args:
        protocol_factory: called with no arguments once per connection; it
            returns the :class:`asyncio.BaseProtocol` serving it.
        hostname, port, ready_timeout, loop: as for ``Controller``.
    """

    def __init__(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        hostname: str | None = "127.0.0.1",
        port: int = 0,
        **options: Any,
    ) -> None:
        if not callable(protocol_factory):
            raise TypeError(f"protocol_factory: not callable: {protocol_factory!r}")
        super().__init__(hostname, port, **options)
        self.protocol_factory = protocol_factory

    def factory(self) -> asyncio.BaseProtocol:
        """A new protocol from :attr:`protocol_factory`."""
        return self.protocol_factory()


@pytest.fixture
def degu_controller() -> Iterator[Callable[..., Controller]]:
    """Start asyncio servers for one test; each is stopped after it.

    Call it with a started-or-not :class:`~degu.controller.Controller`, or
    with a protocol factory and :class:`FactoryController`'s other arguments
    (by default 127.0.0.1 on a free port).  It returns the running
    controller; ``controller.address`` is where it listens.
    """
    started: list[Controller] = []

    def start(
        controller_or_factory: Controller | Callable[[], asyncio.BaseProtocol],
        *args: Any,
        **kwargs: Any,
    ) -> Controller:
        if isinstance(controller_or_factory, Controller):
            if args or kwargs:
                raise TypeError(
                    "degu_controller(controller): a Controller takes no other "
                    f"arguments; got {args!r}, {kwargs!r}"
                )
            controller = controller_or_factory
        else:
            controller = FactoryController(controller_or_factory, *args, **kwargs)
        started.append(controller)
        controller.start()  # returns at once if it is already running
        return controller

    yield start
    errors = []
    for controller in reversed(started):
        try:
            controller.stop()  # bounded; TimeoutError if the loop is blocked
        except Exception as e:  # stop the others before reporting
            errors.append(e)
    if errors:
        raise errors[0]
