"""Every public name of every public module has a reference entry in the docs.

Run by ``nox -s docs`` after the HTML build: reads the ``objects.inv`` that
Sphinx wrote and compares it with what the installed modules expose.
"""

from __future__ import annotations

import importlib
import os
import types
import zlib
from pathlib import Path

import pytest

BUILD = Path(
    os.environ.get("DEGU_DOCS_HTML", Path(__file__).parent / "_build" / "html")
)

MODULES = (
    "degu",
    "degu.base",
    "degu.server",
    "degu.client",
    "degu.sslhelpers",
    "degu.rgi",
    "degu.misc",
    "degu.applib",
    "degu.util",
    "degu.typehints",
    "degu.controller",
    "degu.pytest_plugin",
    "degu.controller.pytest_plugin",
)

# Public beyond __all__, as the reference pages name them.
EXTRA_PUBLIC = {
    "degu.server": ("build_server_sslctx",),
    "degu.client": ("build_client_sslctx",),
    "degu.applib": ("FilesApp",),
}


def _documented() -> set[str]:
    """The Python-domain names in the built inventory (format version 2)."""
    raw = (BUILD / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four text header lines, then zlib-compressed body
        header_end = raw.index(b"\n", header_end) + 1
    names = set()
    for line in zlib.decompress(raw[header_end:]).decode().splitlines():
        name, role = line.split(" ", 2)[:2]
        if role.startswith("py:"):
            names.add(name)
    return names


def _is_public_value(module: types.ModuleType, name: str) -> bool:
    obj = getattr(module, name)
    if isinstance(obj, types.ModuleType):
        return False
    origin = getattr(obj, "__module__", None)
    if isinstance(obj, type) or callable(obj):
        return isinstance(origin, str) and origin.split(".")[0] == "degu"
    # Constants: documented when the module's own namespace defines them in
    # upper case (e.g. sslhelpers.DAYS, the address constants of degu).
    return name.isupper() or name[:1].isupper()


def _public_names(modname: str) -> list[str]:
    module = importlib.import_module(modname)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n
            for n in vars(module)
            if not n.startswith("_") and _is_public_value(module, n)
        ]
    return sorted({*names, *EXTRA_PUBLIC.get(modname, ())})


def _resolve(fullname: str) -> object:
    parts = fullname.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise LookupError(fullname)


@pytest.fixture(scope="module")
def documented() -> set[str]:
    if not (BUILD / "objects.inv").exists():
        pytest.fail(f"build the HTML docs first: no {BUILD / 'objects.inv'}")
    return _documented()


@pytest.mark.parametrize("modname", MODULES)
def test_every_public_name_is_documented(modname: str, documented: set[str]) -> None:
    assert modname in documented, f"no `.. module:: {modname}` page"
    # A re-export (degu.server.Request is degu.base.Request) counts as documented
    # when the object itself is documented under any module.
    documented_ids = set()
    for fullname in documented:
        if fullname.startswith("degu"):
            try:
                documented_ids.add(id(_resolve(fullname)))
            except (LookupError, AttributeError):
                pass
    module = importlib.import_module(modname)
    missing = [
        name
        for name in _public_names(modname)
        if f"{modname}.{name}" not in documented
        and id(getattr(module, name)) not in documented_ids
    ]
    assert missing == [], f"{modname}: public names without a reference entry"


def test_documented_names_exist(documented: set[str]) -> None:
    """The reference never documents a name the code does not have."""
    stale = []
    for fullname in sorted(documented):
        if fullname.split(".")[0] != "degu":
            continue
        try:
            _resolve(fullname)
        except (LookupError, AttributeError):
            # Instance attributes (``.. attribute::`` under a class) are set in
            # __init__, so only their class can be checked here.
            parent = fullname.rpartition(".")[0]
            try:
                if isinstance(_resolve(parent), type):
                    continue
            except (LookupError, AttributeError):
                pass
            stale.append(fullname)
    assert stale == []
