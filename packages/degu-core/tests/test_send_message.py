"""Requests and responses go out through one rule: degu._rendering.send_message."""

from __future__ import annotations

import io
from typing import Any

from degu._limits import JOIN_BODY_MAX
from degu._rendering import send_message
from degu._stream import Budget
from degu.base import Body, BodyIter


class RecordingStream:
    def __init__(self) -> None:
        self.sends: list[bytes] = []
        self.budgets: list[Budget] = []

    def send_all(self, buf: Any, budget: Budget) -> None:
        self.sends.append(bytes(buf))
        self.budgets.append(budget)


PREAMBLE = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n"


def _send(body: Any) -> tuple[list[bytes], RecordingStream, Budget]:
    stream = RecordingStream()
    budget = Budget(5, 16384)
    send_message(stream, PREAMBLE, body, budget)  # type: ignore[arg-type]
    return stream.sends, stream, budget


def test_send_message_without_a_body_sends_the_preamble_alone() -> None:
    sends, _, _ = _send(None)
    assert sends == [PREAMBLE]


def test_send_message_joins_a_small_bytes_body_to_its_preamble() -> None:
    assert _send(b"abc")[0] == [PREAMBLE + b"abc"]
    largest = b"x" * JOIN_BODY_MAX
    assert _send(largest)[0] == [PREAMBLE + largest]


def test_send_message_sends_a_large_bytes_body_apart() -> None:
    body = b"x" * (JOIN_BODY_MAX + 1)
    assert _send(body)[0] == [PREAMBLE, body]


def test_send_message_writes_a_body_object_after_its_preamble() -> None:
    sends, _, _ = _send(BodyIter([b"ab", b"c"], 3))
    assert sends == [PREAMBLE, b"ab", b"c"]


def test_send_message_spends_one_budget_on_every_send() -> None:
    sends, stream, budget = _send(Body(io.BytesIO(b"abc"), 3))
    assert b"".join(sends) == PREAMBLE + b"abc"
    assert len(sends) >= 2
    assert all(b is budget for b in stream.budgets)
