"""``Range`` and ``ContentRange``: values of the range headers (SPEC §2.9-2.10).

Both use Python slice semantics (``stop`` is exclusive) while their ``str()``
is the inclusive wire form of RFC 9110 §14.  Pure values: no I/O here.
"""

from __future__ import annotations

from degu._common import check_length


class _Span:
    """What both range values share: read-only offsets, and comparison rules.

    Equal to another value of the very same class with the same fields, or to
    its own wire form as a ``str``; comparing with anything else raises
    ``TypeError`` (SPEC §2.9); ordering is unsupported and values are unhashable.
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
        """The ``ContentRange`` answering this range for *total* bytes."""
        self._check_total(total)
        return ContentRange(self._start, min(self._stop, total), total)


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

    def _fields(self) -> tuple[int, ...]:
        return (self._start, self._stop, self._total)

    def __str__(self) -> str:
        return f"bytes {self._start}-{self._stop - 1}/{self._total}"
