"""A logger that imports :mod:`logging` only when a record could be printed.

Until something imports :mod:`logging`, nothing can have configured it, so
its defaults hold: the root logger's level is WARNING and records below it go
nowhere.  A server logs one INFO record per connection; dropping those while
:mod:`logging` is absent keeps it, and what it imports (re, traceback,
string...), out of a server nobody asked to log: about 1.5 MiB of an idle
server's RSS (bench/bench_http.py, idle server row).
"""

from __future__ import annotations

import sys

from degu._common import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

__all__ = ["LazyLogger"]


class LazyLogger:
    """The parts of a :class:`logging.Logger` the server uses, imported late."""

    __slots__ = ("_logger", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: logging.Logger | None = None

    def __repr__(self) -> str:
        return f"LazyLogger({self.name!r})"

    def get(self) -> logging.Logger:
        """The real logger, importing :mod:`logging` if need be."""
        logger = self._logger
        if logger is None:
            import logging

            logger = self._logger = logging.getLogger(self.name)
        return logger

    def info(self, msg: str, *args: object) -> None:
        """``Logger.info``, skipped while :mod:`logging` was never imported."""
        if self._logger is not None or "logging" in sys.modules:
            # stacklevel: the record names our caller, not this method.
            self.get().info(msg, *args, stacklevel=2)

    def warning(self, msg: str, *args: object) -> None:
        """``Logger.warning`` (imports :mod:`logging`: WARNING is printed)."""
        self.get().warning(msg, *args, stacklevel=2)

    def exception(self, msg: str, *args: object) -> None:
        """``Logger.exception``, to be called from an exception handler."""
        self.get().exception(msg, *args, stacklevel=2)
