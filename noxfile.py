"""Build, test and check the three Degu distributions together.

`nox` runs every default session (what CI needs); `nox -l` lists them.
Each test session installs one distribution (plus its declared local
dependencies) into its own venv, so a missing dependency shows up here first.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
# The oldest supported Python runs every session.  Newer ones also run the
# tests, but only where they really run here: with CI=true nox fails on a
# missing interpreter, and a pyenv shim can exist without its version.
PYTHON = "3.11"
NEWER_PYTHONS = ["3.12", "3.13"]


def _runs(version: str) -> bool:
    try:
        proc = subprocess.run([f"python{version}", "-c", "pass"], capture_output=True)
    except OSError:
        return False
    return proc.returncode == 0


TEST_PYTHONS = [PYTHON, *(v for v in NEWER_PYTHONS if _runs(v))]

# distribution -> the local distributions it depends on
PACKAGES: dict[str, list[str]] = {
    "degu-core": [],
    "degu-embed": ["degu-core"],
    "degu-controller": [],
}
# requests: a real client for the range, OPTIONS and percent-encoding tests.
TEST_TOOLS = [
    "pytest", "pytest-timeout", "coverage[toml]", "hypothesis", "h11", "requests"
]  # fmt: skip
# Optional peers a distribution's tests exercise when present (skipped otherwise).
TEST_EXTRAS: dict[str, list[str]] = {
    # requests: TempPKI certificates verify in a client that checks host names.
    # mypy: test_typing checks programs using degu-core with mypy --strict.
    "degu-core": ["requests", "mypy"],
    "degu-controller": ["uvloop"],
}
# Pinned in one file that the docs host (.readthedocs.yaml) installs too.
DOCS_REQUIREMENTS = "docs/requirements.txt"
DOCS_TEST_TOOLS = ["pytest", "pytest-timeout", "playwright", "pyyaml"]
COVERAGE_FAIL_UNDER = 92
# Debian ships the Python inventory, so intersphinx works offline.
PYTHON_DOC_PACKAGE = "python3-doc"

nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = False
nox.options.sessions = ["lint", "tests", "coverage", "build", "docs", "examples"]


def _install_local(session: nox.Session, *packages: str) -> None:
    """Install local distributions (regular, not editable) and their local deps."""
    wanted: list[str] = []
    for package in packages:
        for dep in [*PACKAGES[package], package]:
            if dep not in wanted:
                wanted.append(dep)
    session.install(*(str(ROOT / "packages" / name) for name in wanted))


def _apt(*args: str) -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(
            ["apt-get", *args], check=True, env=env, capture_output=True, timeout=600
        )
    except (subprocess.SubprocessError, OSError):
        return False
    return True


def _apt_install(session: nox.Session, *debs: str) -> bool:
    """Install Debian packages when we are root on a Debian machine; say why not."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        session.log(f"not root or no apt-get: cannot install {', '.join(debs)}")
        return False
    install = ("install", "-y", "-qq", "--no-install-recommends", *debs)
    # A fresh machine may have no package lists yet: update once, then retry.
    if _apt(*install) or (_apt("update", "-qq") and _apt(*install)):
        return True
    session.log(f"could not install {', '.join(debs)}; the tests that need them skip")
    return False


@nox.session(python=TEST_PYTHONS)
@nox.parametrize("package", list(PACKAGES), ids=list(PACKAGES))
def tests(session: nox.Session, package: str) -> None:
    """Test one distribution in its own venv, installed from its source."""
    session.install(*TEST_TOOLS, *TEST_EXTRAS.get(package, []))
    _install_local(session, package)
    coverage_file = ROOT / f".coverage.{package}.{session.python}"
    session.run(
        "coverage",
        "run",
        "--rcfile",
        str(ROOT / "pyproject.toml"),
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"packages/{package}/tests",
        *session.posargs,
        env={"COVERAGE_FILE": str(coverage_file)},
    )


@nox.session(requires=[f"tests-{py}({pkg})" for py in TEST_PYTHONS for pkg in PACKAGES])
def coverage(session: nox.Session) -> None:
    """Combine the test sessions' coverage onto the source tree and report it."""
    session.install("coverage[toml]")
    files = glob.glob(str(ROOT / ".coverage.*"))
    if not files:
        session.error("no coverage data: run the tests sessions first")
    session.run(
        "coverage", "combine", "--keep", *files, env={"COVERAGE_FILE": ".coverage"}
    )
    session.run(
        "coverage",
        "report",
        f"--fail-under={COVERAGE_FAIL_UNDER}",
        env={"COVERAGE_FILE": ".coverage"},
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, mypy --strict on the three src trees, and the repository rules."""
    # pytest: the opt-in pytest plugins of degu-core and degu-controller use it.
    session.install("ruff", "mypy", "pytest")
    # Editable installs let mypy follow imports across the namespace portions
    # (degu-embed's __init__ imports degu-core's process machinery lazily).
    for package in PACKAGES:
        session.install("-e", str(ROOT / "packages" / package))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # Comments cite RFCs and docs pages, never a document outside the repository.
    session.run("pytest", "-p", "no:cacheprovider", "tests/test_repository.py")
    for package in PACKAGES:
        # One src tree at a time: each is a namespace portion (not `-p degu`).
        src = f"packages/{package}/src"
        session.run("mypy", src, env={"MYPYPATH": src})


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Build sdist + wheel per distribution, twine check, and guard the namespace."""
    session.install("build", "twine", "pytest", "pytest-timeout", "mypy")
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    for package in PACKAGES:
        session.run(
            "python", "-m", "build", "--outdir", str(dist), f"packages/{package}"
        )
    session.run("twine", "check", "--strict", *glob.glob(str(dist / "*")))
    # Wheels installed alone, together, editable and mixed in throw-away venvs;
    # licence files and metadata; mypy --strict on each installed mix.
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "tests/test_namespace.py",
        *session.posargs,
        env={"DEGU_DIST_DIR": str(dist)},
    )


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Sphinx HTML (-W -n --keep-going), doctests, then the site's own tests."""
    _apt_install_docs(session)
    session.install("-r", DOCS_REQUIREMENTS, *DOCS_TEST_TOOLS)
    _install_local(session, *PACKAGES)
    out = ROOT / "docs" / "_build"
    common = ["-W", "-n", "--keep-going", "-q"]
    session.run("sphinx-build", *common, "-b", "html", "docs", str(out / "html"))
    session.run("sphinx-build", *common, "-b", "doctest", "docs", str(out / "doctest"))
    # Every public name documented; the built pages render in a real browser,
    # and so does `python -m degu.server` (screenshots under _build/screenshots);
    # the docs host's build (.readthedocs.yaml, replayed in a clean venv with
    # no Debian extras) also passes and has no broken internal links.
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "docs/test_reference.py",
        "docs/test_browser.py",
        "docs/test_hosted.py",
        "docs/test_server_browser.py",
        *session.posargs,
        env={
            "DEGU_DOCS_HTML": str(out / "html"),
            "DEGU_SCREENSHOTS": str(out / "screenshots"),
        },
    )


def _apt_install_docs(session: nox.Session) -> None:
    """The offline Python inventory, and a browser for the rendering test."""
    inventory = Path("/usr/share/doc/python3-doc/html/objects.inv")
    if not inventory.exists():
        _apt_install(session, PYTHON_DOC_PACKAGE)
    if not shutil.which("chromium"):
        _apt_install(session, "chromium")


@nox.session(python=PYTHON)
def examples(session: nox.Session) -> None:
    """Run every example (loopback only, each exits by itself), then their tests."""
    session.install("pytest", "pytest-timeout")
    _install_local(session, *PACKAGES)
    if not shutil.which("nginx"):  # for the behind-nginx how-to's test
        _apt_install(session, "nginx")
    scripts = sorted(
        p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("test_")
    )
    for script in scripts:
        # Each example exits by itself; the bound turns a hang into a failure.
        session.run("timeout", "120", "python", str(script), external=True)
    session.run("pytest", "-p", "no:cacheprovider", "examples")


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Bounded loopback benchmarks; prints figures as ratios to same-run baselines."""
    # Baselines: uvicorn (with httptools and uvloop), the wrk load generator,
    # and trustme for TempPKI creation.
    session.install("uvicorn", "httptools", "uvloop", "trustme")
    if not shutil.which("wrk"):
        _apt_install(session, "wrk")
    _install_local(session, *PACKAGES)
    scripts = sorted((ROOT / "bench").glob("bench_*.py"))
    selected = [s for s in scripts if not session.posargs or s.stem in session.posargs]
    for script in selected:
        session.run("python", str(script))


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run this file with nox")
