"""``Range`` and ``ContentRange``: values of the range headers (SPEC §2.9-2.10).

Both use Python slice semantics (``stop`` is exclusive) while their ``str()``
is the inclusive wire form of RFC 9110 §14.  Pure values: no I/O here.
"""

from __future__ import annotations

from degu._common import check_length


class Range:
    """A single ``bytes=START-END`` range, as ``Range(start, stop)``."""

    __slots__ = ("_start", "_stop")

    def __init__(self, start: int, stop: int) -> None:
        check_length("start", start)
        check_length("stop", stop)
        if start >= stop:
            raise ValueError(f"need start < stop; got {start} >= {stop}")
        self._start = start
        self._stop = stop

    @property
    def start(self) -> int:
        """First byte offset (inclusive)."""
        return self._start

    @property
    def stop(self) -> int:
        """End offset (exclusive), like a slice."""
        return self._stop

    def __repr__(self) -> str:
        return f"Range({self._start}, {self._stop})"

    def __str__(self) -> str:
        return f"bytes={self._start}-{self._stop - 1}"

    def __eq__(self, other: object) -> bool:
        if type(other) is Range:
            return self._start == other._start and self._stop == other._stop
        if type(other) is str:
            return str(self) == other
        raise TypeError(f"cannot compare Range() with {type(other)!r}")

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]

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


class ContentRange:
    """A ``bytes START-END/TOTAL`` value, as ``ContentRange(start, stop, total)``."""

    __slots__ = ("_start", "_stop", "_total")

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
    def start(self) -> int:
        """First byte offset (inclusive)."""
        return self._start

    @property
    def stop(self) -> int:
        """End offset (exclusive)."""
        return self._stop

    @property
    def total(self) -> int:
        """Size of the whole resource."""
        return self._total

    def __repr__(self) -> str:
        return f"ContentRange({self._start}, {self._stop}, {self._total})"

    def __str__(self) -> str:
        return f"bytes {self._start}-{self._stop - 1}/{self._total}"

    def __eq__(self, other: object) -> bool:
        if type(other) is ContentRange:
            return (self._start, self._stop, self._total) == (
                other._start,
                other._stop,
                other._total,
            )
        if type(other) is str:
            return str(self) == other
        raise TypeError(f"cannot compare ContentRange() with {type(other)!r}")

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]
