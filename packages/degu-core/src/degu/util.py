"""Deprecated request helpers, kept for code written against older Degu.

New code should call :meth:`degu.base.Request.shift_path` and
:meth:`degu.base.Request.build_proxy_uri` instead.  These functions are
duck-typed: they work on any object with ``mount``, ``path`` and ``query``
attributes, which is what made them useful before ``Request`` was a class.
"""

from __future__ import annotations

from typing import Any

__all__ = ("absolute_uri", "relative_uri", "shift_path")


def shift_path(request: Any) -> str:
    """Move the first ``request.path`` component to the end of ``request.mount``.

    Raises:
        IndexError: when ``request.path`` is empty (unlike
            ``Request.shift_path()``, which returns ``None``).
    """
    component: str = request.path.pop(0)
    request.mount.append(component)
    return component


def _join(components: list[str], query: str | None) -> str:
    uri = "/" + "/".join(components)
    return uri if query is None else f"{uri}?{query}"


def relative_uri(request: Any) -> str:
    """Return the URI of what is left to route: ``path`` and ``query``, no mount."""
    return _join(request.path, request.query)


def absolute_uri(request: Any) -> str:
    """Return the full URI rebuilt from ``mount``, ``path`` and ``query``."""
    return _join(request.mount + request.path, request.query)
