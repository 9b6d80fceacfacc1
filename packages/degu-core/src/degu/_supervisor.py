"""Worker processes for ``python -m degu.server --workers N``.

The supervisor (the process the user started) binds the listening socket
once, then forks N workers that inherit it; each runs its own
``Server.serve_forever()`` and the kernel gives each new connection to one
of them.  Because the socket is inherited, Unix sockets and TLS work as they
do with one process.  The supervisor serves nothing itself: it waits for
signals, restarts a worker that dies, and on SIGINT or SIGTERM passes
SIGTERM on and waits for every worker to stop
(docs/howto/serve-directory.rst, "Using more than one core").

Signals are taken with ``sigtimedwait()`` while blocked, so a SIGCHLD or a
Ctrl-C arriving at any moment is seen at the next wait, never lost.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from time import monotonic

__all__ = (
    "BACKOFF_FIRST",
    "MAX_STARTUP_FAILURES",
    "MAX_WORKERS",
    "STARTUP_WINDOW",
    "Supervisor",
)

#: A worker that exits within this many seconds of being forked died at
#: start-up: it is restarted only after a back-off.
STARTUP_WINDOW = 1.0
#: The first back-off; it doubles with each start-up death in a row.
BACKOFF_FIRST = 0.1
#: Start-up deaths in a row (of one worker slot) after which we give up.
MAX_STARTUP_FAILURES = 5
#: Most ``--workers`` accepted: far beyond any core count we would see.
MAX_WORKERS = 128
#: How often the supervisor looks for dead workers even without SIGCHLD.
_POLL = 1.0

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)

log = logging.getLogger("degu.supervisor")


def describe_status(status: int) -> str:
    """``exit status 3`` or ``killed by SIGKILL``, from a ``waitpid`` status."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return f"killed by {signal.Signals(sig).name}"
        except ValueError:
            return f"killed by signal {sig}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _stop_with_parent(supervisor: int) -> None:
    """Have the kernel send us SIGTERM when the supervisor dies (Linux).

    A supervisor killed with SIGKILL cannot stop its workers; without this
    they would go on serving, holding the port, with no one to stop them.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG, prctl(2)
    except (OSError, AttributeError):
        return  # not Linux: the supervisor's own stop is all there is
    if os.getppid() != supervisor:
        os._exit(0)  # it died before prctl() took effect


class _Slot:
    """One worker position: the live pid, and how its recent starts went."""

    __slots__ = ("failures", "pid", "restart_at", "started")

    def __init__(self) -> None:
        self.pid = 0
        self.started = 0.0
        self.failures = 0
        self.restart_at: float | None = None


class Supervisor:
    """Run *serve* in *workers* forked processes until SIGINT or SIGTERM.

    *serve(ready)* runs in each worker: it must install its own signal
    handlers, then call ``ready()`` (which unblocks signals there), then
    serve until a signal stops it and return the exit status.
    *stop_bound* is how long workers get to stop before SIGKILL.
    """

    def __init__(
        self,
        serve: Callable[[Callable[[], None]], int],
        workers: int,
        stop_bound: float,
    ) -> None:
        if type(workers) is not int or not 1 <= workers <= MAX_WORKERS:
            raise ValueError(f"need 1 <= workers <= {MAX_WORKERS}; got {workers!r}")
        self._serve = serve
        self._slots = [_Slot() for _ in range(workers)]
        self._stop_bound = stop_bound
        self._mask: set[int] = set()

    @property
    def pids(self) -> list[int]:
        """The pids of the workers alive now."""
        return [slot.pid for slot in self._slots if slot.pid]

    def run(self) -> int:
        """Start the workers, keep them running; return the exit status."""
        self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for slot in self._slots:
                self._start(slot)
            return self._supervise()
        except BaseException:
            self._stop_all()  # a failed fork() must not leave workers behind
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)

    # -- the worker side -------------------------------------------------------

    def _start(self, slot: _Slot) -> None:
        # Whatever is buffered would otherwise be written by both processes.
        sys.stdout.flush()
        sys.stderr.flush()
        supervisor = os.getpid()
        pid = os.fork()
        if pid == 0:
            _stop_with_parent(supervisor)
            self._in_worker()
        slot.pid = pid
        slot.started = monotonic()
        slot.restart_at = None
        log.info("worker started: pid %d", pid)

    def _in_worker(self) -> None:
        code = 1
        try:
            for sig in _SIGNALS:
                # The supervisor's pending-signal bookkeeping is not ours.
                signal.signal(sig, signal.SIG_DFL)
            code = self._serve(self._unblock)
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    def _unblock(self) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)

    # -- the supervisor side ---------------------------------------------------

    def _supervise(self) -> int:
        while True:
            info = signal.sigtimedwait(_SIGNALS, self._wait_time())
            if info is not None and info.si_signo != signal.SIGCHLD:
                self._stop_all()
                return 0
            gave_up = self._reap()
            if gave_up is not None:
                log.error(
                    "a worker died at start-up %d times in a row (last: %s); giving up",
                    MAX_STARTUP_FAILURES,
                    gave_up,
                )
                self._stop_all()
                return 1
            now = monotonic()
            for slot in self._slots:
                if slot.restart_at is not None and slot.restart_at <= now:
                    self._start(slot)

    def _wait_time(self) -> float:
        due = [s.restart_at for s in self._slots if s.restart_at is not None]
        if not due:
            return _POLL
        return min(max(min(due) - monotonic(), 0.0), _POLL)

    def _reap(self) -> str | None:
        """Collect dead workers and schedule restarts; say why if giving up."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid == 0:
                return None
            slot = next((s for s in self._slots if s.pid == pid), None)
            if slot is None:
                continue  # not a worker (the app forked something)
            slot.pid = 0
            how = describe_status(status)
            now = monotonic()
            if now - slot.started >= STARTUP_WINDOW:
                slot.failures = 0
                slot.restart_at = now
                log.warning("worker %d died (%s); restarting it", pid, how)
                continue
            slot.failures += 1
            if slot.failures >= MAX_STARTUP_FAILURES:
                return how
            delay = BACKOFF_FIRST * 2 ** (slot.failures - 1)
            slot.restart_at = now + delay
            log.warning(
                "worker %d died %.2f s after it started (%s); restarting it in %.1f s",
                pid,
                now - slot.started,
                how,
                delay,
            )

    def _stop_all(self) -> None:
        """SIGTERM every worker; SIGKILL what is left after the bound."""
        self._signal_all(signal.SIGTERM)
        deadline = monotonic() + self._stop_bound
        while self.pids and (left := deadline - monotonic()) > 0:
            info = signal.sigtimedwait(_SIGNALS, min(left, _POLL))
            if info is not None and info.si_signo != signal.SIGCHLD:
                break  # a second Ctrl-C: stop waiting
            self._reap_quietly()
        if self.pids:
            log.warning(
                "workers %s still running: killing them",
                ", ".join(map(str, self.pids)),
            )
            self._signal_all(signal.SIGKILL)
            for slot in self._slots:
                if slot.pid:
                    os.waitpid(slot.pid, 0)
                    slot.pid = 0

    def _signal_all(self, sig: int) -> None:
        for slot in self._slots:
            if slot.pid:
                try:
                    os.kill(slot.pid, sig)
                except ProcessLookupError:
                    pass

    def _reap_quietly(self) -> None:
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for slot in self._slots:
                if slot.pid == pid:
                    slot.pid = 0
