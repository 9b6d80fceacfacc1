"""How long a server process may take to start, and the object that stops it.

Shared by degu-core's ``degu.misc.TempServer`` and degu-embed's
``degu.EmbeddedServer`` (docs/reference/degu.rst, docs/reference/misc.rst).
degu-embed imports this module when ``degu`` itself is imported, so it must
stay free: it imports nothing at module level (docs/explanation/namespace.rst).
The process machinery, ``degu._processes``, is imported on first use.
"""

# mypy treats any name TYPE_CHECKING as true; importing typing here would
# cost an importer of ``degu`` time at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess
    from typing import Self

__all__ = ["START_TIMEOUT", "ServerProcessOwner"]

#: Seconds to wait for a live but silent server process to report its address.
START_TIMEOUT = 60.0


class ServerProcessOwner:
    """Mixin for an object that owns a server process in ``self.process``.

    It stops the process when asked (``terminate()``), when used as a context
    manager, and when it is garbage-collected.
    """

    process: "BaseProcess"

    def terminate(self) -> None:
        """Stop the server process; safe to call again, bounded in time.

        SIGTERM first, SIGKILL if it has not exited a few seconds later;
        ``self.process.exitcode`` is set afterwards.
        """
        # Not set when the constructor failed before the process started.
        process = self.__dict__.get("process")
        if process is not None:
            from degu._processes import stop_process

            stop_process(process)

    def __del__(self) -> None:
        try:
            self.terminate()
        except Exception:  # never raise from a finalizer (e.g. at exit)
            pass

    def __enter__(self) -> "Self":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.terminate()
