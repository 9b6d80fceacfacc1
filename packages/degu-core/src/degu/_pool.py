"""A bounded pool of worker threads, started as work arrives.

The server hands it connections that have a request to run and that its
loop's leader does not run itself (every slot taken, shutting down); nothing
here knows about sockets or HTTP.  Threads are created lazily, up to ``size``, and
leave after ``IDLE_EXIT`` seconds without work: a server that never sees
concurrency never pays for threads, and a burst leaves none behind for long.
"""

from __future__ import annotations

import threading
from queue import Empty, SimpleQueue

from degu._common import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["IDLE_EXIT", "WorkerPool"]

#: A worker thread with nothing to do for this many seconds exits.
IDLE_EXIT = 30.0

_STOP = object()


class WorkerPool:
    """At most *size* threads, each calling ``run(item)`` for submitted items."""

    __slots__ = ("_idle", "_lock", "_queue", "_run", "_threads", "name", "size")

    def __init__(self, size: int, run: Callable[[Any], None], name: str) -> None:
        self.size = size
        self.name = name
        self._run = run
        self._queue: SimpleQueue[Any] = SimpleQueue()
        self._lock = threading.Lock()
        #: Threads blocked waiting for an item.
        self._idle = 0
        self._threads: list[threading.Thread] = []

    def submit(self, item: Any) -> None:
        """Queue *item*; start a thread when the idle ones are all spoken for."""
        thread = None
        with self._lock:
            if self._queue.qsize() >= self._idle and len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{id(item):x}", daemon=True
                )
                self._threads.append(thread)
            self._queue.put(item)
        if thread is not None:
            try:
                thread.start()
            except RuntimeError:
                # No thread could be started (a process limit): the queued
                # item waits for a running worker, if there is one.
                with self._lock:
                    self._threads.remove(thread)
                    if not self._threads:
                        raise

    def _work(self) -> None:
        get = self._queue.get
        run = self._run
        lock = self._lock
        while True:
            with lock:
                self._idle += 1
            try:
                item = get(timeout=IDLE_EXIT)
            except Empty:
                with lock:
                    self._idle -= 1
                    if self._queue.empty():
                        self._threads.remove(threading.current_thread())
                        return
                continue
            with lock:
                self._idle -= 1
            if item is _STOP:
                with lock:
                    self._threads.remove(threading.current_thread())
                return
            run(item)

    def stop(self) -> None:
        """Let every thread finish its current item, then exit (no wait)."""
        with self._lock:
            for _ in range(len(self._threads)):
                self._queue.put(_STOP)
