"""Degu's middleware classes wrap an app the same way (degu._middleware)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from degu.applib import AllowedMethods, MethodFilter
from degu.misc import AccessLogger, RequestLogger

WRAPPERS: list[Callable[[Any], Any]] = [
    RequestLogger,
    AccessLogger,
    lambda app: MethodFilter(app, AllowedMethods("GET")),
]


def _app(session: Any, request: Any, api: Any) -> Any:
    return (200, "OK", {}, None)


@pytest.mark.parametrize("wrap", WRAPPERS)
def test_middleware_forwards_the_apps_on_connect(wrap: Callable[[Any], Any]) -> None:
    class App:
        def __call__(self, session: Any, request: Any, api: Any) -> Any:
            return _app(session, request, api)

        def on_connect(self, session: Any, sock: Any) -> bool:
            return True

    app = App()
    assert wrap(app).on_connect == app.on_connect


@pytest.mark.parametrize("wrap", WRAPPERS)
def test_middleware_without_an_apps_on_connect_has_none(
    wrap: Callable[[Any], Any],
) -> None:
    assert not hasattr(wrap(_app), "on_connect")


@pytest.mark.parametrize("wrap", WRAPPERS)
def test_middleware_refuses_a_non_callable_app_alike(
    wrap: Callable[[Any], Any],
) -> None:
    with pytest.raises(TypeError) as info:
        wrap(17)
    assert str(info.value) == "app: not callable: 17"
