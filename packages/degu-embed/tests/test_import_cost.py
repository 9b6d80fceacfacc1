"""Importing ``degu`` costs almost nothing.

Each check runs in a fresh interpreter of the same venv and compares its
``sys.modules`` with a baseline (``python -c pass``), so whatever ``site`` and
the editable-install hooks load is not counted against us.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import degu

HERE = Path(__file__).resolve().parent

# What an application must not pay for by importing degu.
FORBIDDEN = {
    "socket",
    "_socket",
    "ssl",
    "_ssl",
    "select",
    "selectors",
    "threading",
    "multiprocessing",
    "logging",
    "subprocess",
    "pickle",
}


def modules_after(code: str) -> set[str]:
    """The names in sys.modules after running ``code`` in a fresh interpreter."""
    report = "import json, sys; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return set(json.loads(out))


@pytest.fixture(scope="module")
def baseline() -> set[str]:
    return modules_after("pass")


@pytest.mark.parametrize(
    "code",
    [
        "import degu",
        "from degu import EmbeddedServer, EmbeddedSSLServer, IPv6_LOOPBACK",
        "from degu import start_server, start_sslserver, ADDRESS_CONSTANTS",
    ],
)
def test_importing_degu_loads_one_free_submodule_and_no_network_stack(
    baseline: set[str], code: str
) -> None:
    after = modules_after(code)
    added = after - baseline
    assert "degu" in added
    # degu._lifetime (degu-core) holds what EmbeddedServer shares with
    # TempServer; it imports nothing, so nothing else may appear.
    assert sorted(name for name in after if name.startswith("degu.")) == [
        "degu._lifetime"
    ]
    assert sorted(FORBIDDEN & added) == []
    assert added <= {"degu", "degu._lifetime"}


def test_the_parent_never_imports_the_server_modules() -> None:
    """Starting a server imports degu.server in the child only."""
    code = f"""
import multiprocessing, sys
sys.path.insert(0, {str(HERE)!r})
import degu, embed_apps
multiprocessing.set_start_method("spawn")
with degu.EmbeddedServer(degu.IPv4_LOOPBACK, embed_apps.build_hello, b"x"):
    pass
"""
    after = modules_after(code)
    assert "degu._processes" in after
    for name in ("degu.server", "degu.base", "degu.client", "ssl"):
        assert name not in after


def test_version_is_the_distribution_version() -> None:
    assert degu.__version__ == importlib.metadata.version("degu-embed")
    parts = degu.__version__.split(".")
    assert len(parts) == 3 and all(p.isdigit() for p in parts)


def test_address_constants() -> None:
    assert degu.IPv6_LOOPBACK == ("::1", 0, 0, 0)
    assert degu.IPv6_ANY == ("::", 0, 0, 0)
    assert degu.IPv4_LOOPBACK == ("127.0.0.1", 0)
    assert degu.IPv4_ANY == ("0.0.0.0", 0)
    order = (degu.IPv6_LOOPBACK, degu.IPv6_ANY, degu.IPv4_LOOPBACK, degu.IPv4_ANY)
    assert order == degu.ADDRESS_CONSTANTS
    assert degu.START_TIMEOUT == 60.0


def test_degu_keeps_the_namespace_open(tmp_path: Path) -> None:
    """A portion on a later sys.path entry is importable through degu.__path__."""
    for name in ("first", "second"):
        portion = tmp_path / name / "degu"
        portion.mkdir(parents=True)
        (portion / f"{name}_portion.py").write_text(f"NAME = {name!r}\n")
    code = (
        "import degu, degu.first_portion, degu.second_portion, degu.server\n"
        "print(degu.first_portion.NAME, degu.second_portion.NAME)\n"
        "print(len(degu.__path__) == len(set(degu.__path__)))"
    )
    # The first entry is listed twice: it must still appear once in __path__.
    paths = [tmp_path / "first", tmp_path / "first", tmp_path / "second"]
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["first", "second", "True"]


def test_degu_imports_nothing_to_extend_its_path() -> None:
    """No pkgutil (typing, re, importlib.util): os and sys are loaded already."""
    added = modules_after("import degu") - modules_after("pass")
    assert {"pkgutil", "typing", "re", "importlib.util"} & added == set()
