"""degu._common refuses to run on top of PyPI's unrelated ``degu``."""

from __future__ import annotations

import sys
import types

import pytest

from degu import _common


def _fake_degu(monkeypatch: pytest.MonkeyPatch, **attrs: object) -> None:
    package = types.ModuleType("degu")
    for name, value in attrs.items():
        setattr(package, name, value)
    monkeypatch.setitem(sys.modules, "degu", package)


def test_check_namespace_owner_accepts_a_namespace_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_degu(monkeypatch, __file__=None)
    _common._check_namespace_owner()


def test_check_namespace_owner_accepts_degu_embed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_degu(monkeypatch, __file__="/x/degu/__init__.py", _DISTRIBUTION="degu-embed")
    _common._check_namespace_owner()


def test_check_namespace_owner_refuses_the_old_pypi_degu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_degu(monkeypatch, __file__="/x/degu/__init__.py", __version__="0.18.0")
    with pytest.raises(ImportError) as info:
        _common._check_namespace_owner()
    message = str(info.value)
    assert "'/x/degu/__init__.py'" in message
    assert "version '0.18.0'" in message
    assert "pip uninstall degu" in message
