"""What every degu-core module imports first: ``TYPE_CHECKING``, and a guard.

The guard refuses to run over PyPI's unrelated ``degu`` distribution.  The
limits are in ``degu._limits``, the argument checks in ``degu._checks``.
"""

from __future__ import annotations

# Every module a plain server or client loads imports this TYPE_CHECKING
# instead of typing's (mypy honours any name TYPE_CHECKING), so typing is never
# imported at run time: it would add ~4 ms to the ~10 ms of
# ``import degu.server`` and ~0.5 MiB to an idle server's RSS (measured with
# bench/bench_import.py and bench/bench_http.py).  One typing import anywhere
# on those paths undoes the gain for all.
TYPE_CHECKING = False


def _check_namespace_owner() -> None:
    """Refuse to run on top of the unrelated ``degu`` distribution from PyPI.

    PyPI's ``degu`` (0.18 and older) is a different, older project whose files
    have the same paths as degu-core's (``degu/server.py``, ``degu/base.py``...)
    plus a regular ``degu/__init__.py``; installed alongside, the two overwrite
    each other (docs/installation.rst).  Here ``degu`` must be either a PEP 420
    namespace (no ``__file__``) or degu-embed's package, which carries the
    ``_DISTRIBUTION`` marker.  A look at ``sys.modules`` costs nothing, unlike
    reading the installed metadata.
    """
    import sys  # already loaded by every interpreter

    package = sys.modules.get("degu")
    origin = getattr(package, "__file__", None)
    if origin is None or getattr(package, "_DISTRIBUTION", None) == "degu-embed":
        return
    version = getattr(package, "__version__", "unknown")
    raise ImportError(
        f"degu/__init__.py at {origin!r} (version {version!r}) is not degu-embed's: "
        "the unrelated 'degu' distribution from PyPI seems to be installed "
        "alongside degu-core, and the two overwrite each other's files. "
        "Run 'python -m pip uninstall degu', then reinstall degu-core "
        "(and degu-embed if you use it)."
    )


_check_namespace_owner()
