"""The shared ``degu`` namespace works however the three distributions are installed.

Run by ``nox -s build`` after the wheels are built (``DEGU_DIST_DIR``).  Each
test makes a throw-away venv without pip and drives the outer pip into it with
``pip --python``, so nothing but the wheels (or the source trees, for editable
installs) reaches the venv.  These tests are slow by nature (seconds each).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"
DISTS = ("degu-core", "degu-embed", "degu-controller")

# What the child reports about the namespace it sees.
PROBE = """
import importlib, json, sys
import degu
found = {}
for name in ("degu.server", "degu.client", "degu.base", "degu.controller"):
    try:
        importlib.import_module(name)
        found[name] = True
    except ImportError:
        found[name] = False
print(json.dumps({
    "file": getattr(degu, "__file__", None),
    "version": getattr(degu, "__version__", None),
    "has_constants": hasattr(degu, "IPv6_LOOPBACK"),
    "found": found,
}))
"""


def _wheel(dist_dir: Path, dist: str) -> Path:
    name = dist.replace("-", "_")
    wheels = sorted(dist_dir.glob(f"{name}-*.whl"))
    if len(wheels) != 1:
        pytest.fail(f"need exactly one {name} wheel in {dist_dir}; got {wheels}")
    return wheels[0]


@pytest.fixture(scope="session")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("DEGU_DIST_DIR")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("dist")
    for dist in DISTS:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "build",
                "--wheel",
                "--outdir",
                str(out),
                str(PACKAGES / dist),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return out


@pytest.fixture
def make_venv(tmp_path: Path) -> Iterator[object]:
    def make() -> Path:
        env_dir = tmp_path / f"venv{len(list(tmp_path.iterdir()))}"
        venv.EnvBuilder(with_pip=False).create(env_dir)
        return env_dir / "bin" / "python"

    yield make


def _pip(python: Path, *args: str) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "--quiet",
        "--disable-pip-version-check",
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr


def _install_wheels(python: Path, dist_dir: Path, *dists: str) -> None:
    _pip(
        python,
        "install",
        "--no-index",
        "--find-links",
        str(dist_dir),
        *(str(_wheel(dist_dir, d)) for d in dists),
    )


def _install_editable(python: Path, *dists: str) -> None:
    args: list[str] = []
    for dist in dists:
        args += ["-e", str(PACKAGES / dist)]
    _pip(python, "install", "--no-deps", *args)


def _probe(python: Path) -> dict[str, object]:
    # Run from an empty directory so the checkout can never shadow anything.
    proc = subprocess.run(
        [str(python), "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=python.parent,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def _assert_complete(report: dict[str, object]) -> None:
    assert report["has_constants"] is True
    assert report["version"] is not None
    assert str(report["file"]).endswith(os.path.join("degu", "__init__.py"))
    assert report["found"] == dict.fromkeys(
        ("degu.server", "degu.client", "degu.base", "degu.controller"), True
    )


def test_wheels_own_their_paths(dist_dir: Path) -> None:
    """Only degu-embed ships degu/__init__.py; only degu-core ships py.typed."""
    names = {
        dist: {
            n
            for n in zipfile.ZipFile(_wheel(dist_dir, dist)).namelist()
            if n.startswith("degu/")
        }
        for dist in DISTS
    }
    assert "degu/__init__.py" not in names["degu-core"]
    assert "degu/__init__.py" not in names["degu-controller"]
    assert names["degu-embed"] == {"degu/__init__.py"}
    assert "degu/py.typed" in names["degu-core"]
    assert "degu/py.typed" not in names["degu-controller"]
    assert names["degu-controller"] == {"degu/controller.py"}
    assert not names["degu-core"] & names["degu-controller"]


def test_all_three_wheels_in_one_venv(dist_dir: Path, make_venv) -> None:
    python = make_venv()
    _install_wheels(python, dist_dir, *DISTS)
    _assert_complete(_probe(python))


def test_all_three_editable(make_venv) -> None:
    python = make_venv()
    _install_editable(python, *DISTS)
    report = _probe(python)
    _assert_complete(report)
    assert str(report["file"]).startswith(str(PACKAGES / "degu-embed" / "src"))


@pytest.mark.parametrize("editable", DISTS)
def test_one_editable_the_others_regular(
    dist_dir: Path, make_venv, editable: str
) -> None:
    python = make_venv()
    _install_wheels(python, dist_dir, *(d for d in DISTS if d != editable))
    _install_editable(python, editable)
    _assert_complete(_probe(python))


def test_core_alone_is_a_plain_namespace(dist_dir: Path, make_venv) -> None:
    python = make_venv()
    _install_wheels(python, dist_dir, "degu-core")
    report = _probe(python)
    assert report["file"] is None  # a PEP 420 namespace package
    assert report["has_constants"] is False
    assert report["found"]["degu.server"] is True  # type: ignore[index]
    assert report["found"]["degu.controller"] is False  # type: ignore[index]


def test_controller_alone_needs_nothing_else(dist_dir: Path, make_venv) -> None:
    python = make_venv()
    _install_wheels(python, dist_dir, "degu-controller")
    report = _probe(python)
    assert report["file"] is None
    assert report["found"]["degu.controller"] is True  # type: ignore[index]
    assert report["found"]["degu.server"] is False  # type: ignore[index]


def test_embed_pulls_in_core(dist_dir: Path, make_venv) -> None:
    python = make_venv()
    # Name only degu-embed: its declared dependency must bring degu-core.
    _install_wheels(python, dist_dir, "degu-embed")
    report = _probe(python)
    assert report["has_constants"] is True
    assert report["found"]["degu.server"] is True  # type: ignore[index]


def test_uninstalling_embed_leaves_a_working_namespace(
    dist_dir: Path, make_venv
) -> None:
    python = make_venv()
    _install_wheels(python, dist_dir, *DISTS)
    _pip(python, "uninstall", "--yes", "degu-embed")
    report = _probe(python)
    assert report["file"] is None
    assert report["found"]["degu.server"] is True  # type: ignore[index]
    assert report["found"]["degu.controller"] is True  # type: ignore[index]
