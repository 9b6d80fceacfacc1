"""What every Degu middleware does with the app it wraps.

Middleware forwards the wrapped app's ``on_connect`` (docs/reference/server.rst,
The RGI contract), so the server still calls it once per connection.
"""

from __future__ import annotations

from degu._common import TYPE_CHECKING

if TYPE_CHECKING:
    from degu.typehints import RGIApp

__all__ = ["Middleware"]


class Middleware:
    """Holds the wrapped ``app`` and forwards its ``on_connect``, if any.

    Internal base of degu.misc's and degu.applib's middleware classes.
    """

    def __init__(self, app: RGIApp) -> None:
        if not callable(app):
            raise TypeError(f"app: not callable: {app!r}")
        self.app = app
        on_connect = getattr(app, "on_connect", None)
        if on_connect is not None:
            self.on_connect = on_connect

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.app!r})"
