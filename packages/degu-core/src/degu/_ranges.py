"""Values of the ``range`` and ``content-range`` headers (RFC 9110 §14).

``Range`` and ``ContentRange`` use Python slice semantics (``stop`` is
exclusive) while their ``str()`` is the inclusive wire form of RFC 9110 §14.
``OpenRange`` (``bytes=FIRST-``) and ``SuffixRange`` (``bytes=-LENGTH``) are
the other two single byte-range forms of RFC 9110 §14.1.2; all three answer
``content_range(total)`` the same way.  Pure values: no I/O here.
"""

from __future__ import annotations

from degu._checks import check_int, check_length
from degu._limits import MAX_LENGTH


class _Span:
    """What both range values share: read-only offsets, and comparison rules.

    Equal to another value of the very same class with the same fields, or to
    its own wire form as a ``str``; comparing with anything else raises
    ``TypeError`` (docs/reference/base.rst, Ranges); ordering is unsupported and
    values are unhashable.
    """

    __slots__ = ("_start", "_stop")
    _start: int
    _stop: int

    @property
    def start(self) -> int:
        """First byte offset (inclusive)."""
        return self._start

    @property
    def stop(self) -> int:
        """End offset (exclusive), like a slice."""
        return self._stop

    def _fields(self) -> tuple[int, ...]:
        return (self._start, self._stop)

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self._fields()}"

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._fields() == other._fields()
        if type(other) is str:
            return str(self) == other
        raise TypeError(f"cannot compare {type(self).__name__}() with {type(other)!r}")

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]


class Range(_Span):
    """A single ``bytes=START-END`` range, as ``Range(start, stop)``."""

    __slots__ = ()

    def __init__(self, start: int, stop: int) -> None:
        check_length("start", start)
        check_length("stop", stop)
        if start >= stop:
            raise ValueError(f"need start < stop; got {start} >= {stop}")
        self._start = start
        self._stop = stop

    def __str__(self) -> str:
        return f"bytes={self._start}-{self._stop - 1}"

    def _check_total(self, total: int) -> None:
        check_length("total", total)
        if total <= self._start:
            raise ValueError(f"{self!r} out of bounds (total={total})")

    def content_length(self, total: int) -> int:
        """Bytes this range selects from a resource of *total* bytes."""
        self._check_total(total)
        return min(self._stop, total) - self._start

    def content_range(self, total: int) -> ContentRange:
        """The ``ContentRange`` answering this range for *total* bytes.

        A range ending past *total* is clamped to it (RFC 9110 §14.1.1).
        """
        self._check_total(total)
        return ContentRange(self._start, min(self._stop, total), total)


class _OneSided:
    """What ``OpenRange`` and ``SuffixRange`` share: one bound, one wire form.

    The comparison rules are those of ``Range``: equal to a value of the very
    same class with the same bound, or to its own wire form as a ``str``.
    """

    __slots__ = ("_value",)
    _value: int

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._value})"

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._value == other._value
        if type(other) is str:
            return str(self) == other
        raise TypeError(f"cannot compare {type(self).__name__}() with {type(other)!r}")

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def content_range(self, total: int) -> ContentRange:
        """The ``ContentRange`` answering this range for *total* bytes.

        Raises ``ValueError`` when no byte of *total* is selected (the answer
        is then ``416 Range Not Satisfiable``, RFC 9110 §15.5.17).
        """
        check_length("total", total)
        start, stop = self._span(total)
        if start >= stop:
            raise ValueError(f"{self!r} out of bounds (total={total})")
        return ContentRange(start, stop, total)

    def content_length(self, total: int) -> int:
        """Bytes this range selects from a resource of *total* bytes."""
        return self.content_range(total).content_length

    def _span(self, total: int) -> tuple[int, int]:
        raise NotImplementedError


class OpenRange(_OneSided):
    """``bytes=START-``: from *start* to the end of the resource.

    >>> OpenRange(4).content_range(10)
    ContentRange(4, 10, 10)
    """

    __slots__ = ()

    def __init__(self, start: int) -> None:
        check_int("start", start, 0, MAX_LENGTH - 1)
        self._value = start

    @property
    def start(self) -> int:
        """First byte offset (inclusive)."""
        return self._value

    def __str__(self) -> str:
        return f"bytes={self._value}-"

    def _span(self, total: int) -> tuple[int, int]:
        return self._value, total


class SuffixRange(_OneSided):
    """``bytes=-LENGTH``: the last *length* bytes of the resource.

    A suffix longer than the resource selects all of it; ``SuffixRange(0)``
    selects nothing and so is never satisfiable (RFC 9110 §14.1.3).

    >>> str(SuffixRange(2).content_range(10))
    'bytes 8-9/10'
    """

    __slots__ = ()

    def __init__(self, length: int) -> None:
        check_length("length", length)
        self._value = length

    @property
    def length(self) -> int:
        """How many bytes at the end of the resource are asked for."""
        return self._value

    def __str__(self) -> str:
        return f"bytes=-{self._value}"

    def _span(self, total: int) -> tuple[int, int]:
        return max(total - self._value, 0), total


class ContentRange(_Span):
    """A ``bytes START-END/TOTAL`` value, as ``ContentRange(start, stop, total)``."""

    __slots__ = ("_total",)

    def __init__(self, start: int, stop: int, total: int) -> None:
        check_length("start", start)
        check_length("stop", stop)
        check_length("total", total)
        if not start < stop <= total:
            raise ValueError(
                f"need start < stop <= total; got ({start}, {stop}, {total})"
            )
        self._start = start
        self._stop = stop
        self._total = total

    @property
    def total(self) -> int:
        """Size of the whole resource."""
        return self._total

    @property
    def content_length(self) -> int:
        """Bytes in this part of the resource (``stop - start``)."""
        return self._stop - self._start

    def _fields(self) -> tuple[int, ...]:
        return (self._start, self._stop, self._total)

    def __str__(self) -> str:
        return f"bytes {self._start}-{self._stop - 1}/{self._total}"
