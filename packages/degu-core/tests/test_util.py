"""Tests for degu.util, the deprecated duck-typed request helpers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from degu import util


def req(mount: list[str], path: list[str], query: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(mount=mount, path=path, query=query)


def test_shift_path_moves_one_component() -> None:
    r = req([], ["foo", "bar"])
    assert util.shift_path(r) == "foo"
    assert (r.mount, r.path) == (["foo"], ["bar"])
    assert util.shift_path(r) == "bar"
    assert (r.mount, r.path) == (["foo", "bar"], [])


def test_shift_path_raises_IndexError_on_empty_path() -> None:
    r = req(["foo"], [])
    with pytest.raises(IndexError):
        util.shift_path(r)
    assert (r.mount, r.path) == (["foo"], [])


@pytest.mark.parametrize(
    ("mount", "path", "query", "relative", "absolute"),
    [
        ([], [], None, "/", "/"),
        ([], [], "", "/?", "/?"),
        (["a"], [], None, "/", "/a"),
        (["a"], ["b", ""], None, "/b/", "/a/b/"),
        (["a", "b"], ["c"], "k=v&x", "/c?k=v&x", "/a/b/c?k=v&x"),
    ],
)
def test_relative_and_absolute_uri(
    mount: list[str], path: list[str], query: str | None, relative: str, absolute: str
) -> None:
    r = req(mount, path, query)
    assert util.relative_uri(r) == relative
    assert util.absolute_uri(r) == absolute
    assert (r.mount, r.path) == (mount, path)  # nothing modified


def test_helpers_need_the_attributes() -> None:
    with pytest.raises(AttributeError):
        util.relative_uri(object())
