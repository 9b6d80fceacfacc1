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
import tarfile
import tomllib
import venv
import zipfile
from collections.abc import Iterator
from email.parser import HeaderParser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

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


def _built(dist_dir: Path, dist: str, suffix: str) -> Path:
    name = dist.replace("-", "_")
    found = sorted(dist_dir.glob(f"{name}-*{suffix}"))
    if len(found) != 1:
        pytest.fail(f"need exactly one {name} {suffix} in {dist_dir}; got {found}")
    return found[0]


def _wheel(dist_dir: Path, dist: str) -> Path:
    return _built(dist_dir, dist, ".whl")


def _sdist(dist_dir: Path, dist: str) -> Path:
    return _built(dist_dir, dist, ".tar.gz")


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
    """Only degu-embed ships degu/__init__.py; no two wheels share a file."""
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
    # degu.controller is a package so that its own marker types it alone.
    assert names["degu-controller"] == {
        "degu/controller/__init__.py",
        "degu/controller/py.typed",
        "degu/controller/pytest_plugin.py",
    }
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


# --- licence and metadata ---------------------------------------------------

LICENCE_FILES = ("COPYING", "COPYING.LESSER")


def _metadata(dist_dir: Path, dist: str) -> tuple[object, str]:
    with zipfile.ZipFile(_wheel(dist_dir, dist)) as whl:
        name = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        text = whl.read(name).decode()
    return HeaderParser().parsestr(text), name.rsplit("/", 1)[0]


@pytest.mark.parametrize("dist", DISTS)
def test_each_distribution_directory_carries_both_licence_texts(dist: str) -> None:
    """The sources of each distribution hold the root's GPL-3 and LGPL-3 texts."""
    for name in LICENCE_FILES:
        assert (PACKAGES / dist / name).read_bytes() == (ROOT / name).read_bytes()
    assert (
        b"GNU LESSER GENERAL PUBLIC LICENSE" in (ROOT / "COPYING.LESSER").read_bytes()
    )
    assert b"GNU GENERAL PUBLIC LICENSE" in (ROOT / "COPYING").read_bytes()


@pytest.mark.parametrize("dist", DISTS)
def test_every_wheel_carries_the_licence(dist_dir: Path, dist: str) -> None:
    meta, info_dir = _metadata(dist_dir, dist)
    assert meta["License-Expression"] == "LGPL-3.0-or-later"  # type: ignore[index]
    assert sorted(meta.get_all("License-File")) == list(LICENCE_FILES)  # type: ignore[attr-defined]
    with zipfile.ZipFile(_wheel(dist_dir, dist)) as whl:
        for name in LICENCE_FILES:
            text = whl.read(f"{info_dir}/licenses/{name}")
            assert text == (ROOT / name).read_bytes()


@pytest.mark.parametrize("dist", DISTS)
def test_every_sdist_carries_the_licence(dist_dir: Path, dist: str) -> None:
    sdist = _sdist(dist_dir, dist)
    top = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as tar:
        for name in LICENCE_FILES:
            member = tar.extractfile(f"{top}/{name}")
            assert member is not None
            assert member.read() == (ROOT / name).read_bytes()


@pytest.mark.parametrize("dist", DISTS)
def test_every_wheel_names_its_urls_status_and_typing(
    dist_dir: Path, dist: str
) -> None:
    meta, _ = _metadata(dist_dir, dist)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))  # type: ignore[attr-defined]
    assert {"Documentation", "Source", "Changelog"} <= set(urls)
    assert urls["Changelog"].endswith(f"/packages/{dist}/CHANGELOG.md")
    classifiers = meta.get_all("Classifier")  # type: ignore[attr-defined]
    assert "Typing :: Typed" in classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)


# --- degu-embed rests on degu-core's private process interface --------------


def _core_requirement(requirements: list[str]) -> Requirement:
    found = [Requirement(r) for r in requirements]
    (core,) = [r for r in found if r.name == "degu-core"]
    return core


def _assert_one_series(core: Requirement, version: Version) -> None:
    """*core* admits *version* and nothing outside its minor release series."""
    assert core.specifier.contains(version), (str(core), str(version))
    series = (version.major, version.minor)
    next_series = Version(f"{series[0]}.{series[1] + 1}.0")
    assert not core.specifier.contains(next_series), str(core)
    assert not core.specifier.contains(Version(f"{series[0] + 1}.0.0")), str(core)
    if series[1]:
        earlier = Version(f"{series[0]}.{series[1] - 1}.99")
        assert not core.specifier.contains(earlier), str(core)


def _project(dist: str) -> dict[str, object]:
    text = (PACKAGES / dist / "pyproject.toml").read_text()
    project: dict[str, object] = tomllib.loads(text)["project"]
    return project


def test_embed_pins_core_to_the_series_of_the_core_beside_it() -> None:
    """degu-embed imports degu._lifetime and degu._processes (private to
    degu-core), so it names exactly the degu-core series it was built with."""
    core = _core_requirement(_project("degu-embed")["dependencies"])  # type: ignore[arg-type]
    _assert_one_series(core, Version(str(_project("degu-core")["version"])))


def test_the_series_check_refuses_an_open_or_a_wrong_pin() -> None:
    version = Version("0.3.0")
    _assert_one_series(Requirement("degu-core>=0.3.0,<0.4"), version)
    for loose in ("degu-core>=0.2", "degu-core>=0.2,<0.4", "degu-core<1"):
        with pytest.raises(AssertionError):
            _assert_one_series(Requirement(loose), version)
    with pytest.raises(AssertionError):
        _assert_one_series(Requirement("degu-core>=0.4,<0.5"), version)


def test_embed_wheel_requires_the_core_wheel_series(dist_dir: Path) -> None:
    embed, _ = _metadata(dist_dir, "degu-embed")
    core_meta, _ = _metadata(dist_dir, "degu-core")
    core = _core_requirement(embed.get_all("Requires-Dist"))  # type: ignore[attr-defined]
    _assert_one_series(core, Version(core_meta["Version"]))  # type: ignore[index]


def test_embed_and_core_share_one_lifetime_mixin(dist_dir: Path, make_venv) -> None:
    """EmbeddedServer and TempServer stop their process the same way, once."""
    python = make_venv()
    _install_wheels(python, dist_dir, "degu-embed")
    code = (
        "import degu, degu._lifetime as lt, degu.misc as misc\n"
        "owner = lt.ServerProcessOwner\n"
        "assert issubclass(degu.EmbeddedServer, owner)\n"
        "assert issubclass(degu.EmbeddedSSLServer, owner)\n"
        "assert issubclass(misc.TempServer, owner)\n"
        "assert degu.START_TIMEOUT is lt.START_TIMEOUT\n"
        "for cls in (degu.EmbeddedServer, misc.TempServer):\n"
        "    for name in ('terminate', '__del__', '__enter__', '__exit__'):\n"
        "        assert name not in vars(cls), (cls, name)\n"
    )
    proc = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=python.parent,
    )
    assert proc.returncode == 0, proc.stderr


# --- every distribution type-checks when installed alone ---------------------

# One program per distribution: the first half is correct, the marked line
# is a deliberate mistake mypy must report (so the types are really seen).
TYPED_PROGRAMS = {
    "degu-core": (
        "from degu.sslhelpers import random_id\nident: str = random_id(15)\n",
        "random_id('15')\n",
    ),
    "degu-embed": (
        "import degu\nbound: float = degu.START_TIMEOUT\n",
        "wrong: str = degu.START_TIMEOUT\n",
    ),
    "degu-controller": (
        "import asyncio\n"
        "from degu.controller import Controller\n"
        "class Echo(Controller):\n"
        "    def factory(self) -> asyncio.BaseProtocol:\n"
        "        return asyncio.Protocol()\n"
        "Echo('127.0.0.1', 0).stop()\n",
        "Echo('127.0.0.1', 0).stop(1)\n",
    ),
}


def _mypy(
    python: Path, tmp_path: Path, source: str
) -> subprocess.CompletedProcess[str]:
    program = tmp_path / "program.py"
    program.write_text(source)
    return subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict", "--no-incremental",
            "--python-executable", str(python), str(program),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )  # fmt: skip


def _assert_typed(python: Path, tmp_path: Path, dist: str) -> None:
    good, bad = TYPED_PROGRAMS[dist]
    ok = _mypy(python, tmp_path, good)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong = _mypy(python, tmp_path, good + bad)
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "import-untyped" not in wrong.stdout
    assert "program.py:" in wrong.stdout and "1 error" in wrong.stdout


MIXES = [
    # (installed, uninstalled afterwards, distributions that must type-check)
    (("degu-core",), (), ("degu-core",)),
    (("degu-controller",), (), ("degu-controller",)),
    (("degu-embed",), (), ("degu-core", "degu-embed")),
    (DISTS, (), DISTS),
    (DISTS, ("degu-core",), ("degu-controller",)),
    (DISTS, ("degu-controller",), ("degu-core", "degu-embed")),
    (DISTS, ("degu-embed",), ("degu-core", "degu-controller")),
]


@pytest.mark.parametrize(
    ("installed", "removed", "typed"),
    MIXES,
    ids=[f"{'+'.join(i)}{''.join('-' + r for r in rm)}" for i, rm, _ in MIXES],
)
def test_each_installed_distribution_type_checks(
    dist_dir: Path,
    make_venv,
    tmp_path: Path,
    installed: tuple[str, ...],
    removed: tuple[str, ...],
    typed: tuple[str, ...],
) -> None:
    """mypy --strict sees real types, never import-untyped, in every mix."""
    python = make_venv()
    _install_wheels(python, dist_dir, *installed)
    if removed:
        _pip(python, "uninstall", "--yes", *removed)
    for dist in typed:
        _assert_typed(python, tmp_path, dist)


# --- PyPI's unrelated "degu" -------------------------------------------------

OLD_DEGU_INIT = '''"""Stands in for PyPI's unrelated degu 0.18 (a regular package)."""
__version__ = "0.18.0"
'''


@pytest.mark.parametrize("module", ["degu.server", "degu.client", "degu.base"])
def test_core_refuses_to_import_over_the_old_pypi_degu(
    dist_dir: Path, make_venv, module: str
) -> None:
    """Installing PyPI's degu leaves its degu/__init__.py beside degu-core's files."""
    python = make_venv()
    _install_wheels(python, dist_dir, "degu-embed")
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    init = Path(site) / "degu" / "__init__.py"
    init.write_text(OLD_DEGU_INIT)  # what `pip install degu` would leave there
    proc = subprocess.run(
        [str(python), "-c", f"import {module}"],
        capture_output=True, text=True, timeout=60, cwd=python.parent,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "ImportError" in proc.stderr
    assert "version '0.18.0'" in proc.stderr
    assert "pip uninstall degu" in proc.stderr


# --- the documented install forms --------------------------------------------


@pytest.mark.skipif(
    subprocess.run(["git", "--version"], capture_output=True).returncode != 0,
    reason="needs git",
)
def test_a_vcs_url_with_subdirectory_installs_core_and_embed(make_venv) -> None:
    """docs/installation.rst's Git form, against this checkout's committed HEAD."""
    python = make_venv()
    # file://localhost/...: pip reads file:/// (no host) as a local path.
    repo = f"git+file://localhost{ROOT}"
    _pip(
        python,
        "install",
        f"degu-core @ {repo}#subdirectory=packages/degu-core",
        f"degu-embed @ {repo}#subdirectory=packages/degu-embed",
    )
    _assert_complete_without_controller(_probe(python))


def _assert_complete_without_controller(report: dict[str, object]) -> None:
    assert report["has_constants"] is True
    assert report["found"]["degu.server"] is True  # type: ignore[index]
    assert report["found"]["degu.controller"] is False  # type: ignore[index]
