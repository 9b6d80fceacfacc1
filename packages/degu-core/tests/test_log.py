"""degu._log.LazyLogger: logging is imported only when a record could print.

The checks that logging stays unimported run in fresh interpreters, since
pytest itself imports logging.
"""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from degu._log import LazyLogger

TIMEOUT = 60

# A plain server in a fresh interpreter: serve one request, then print which
# of these modules got imported (json is not used: it imports re).
SERVE_ONE = """
import socket, sys, threading
from degu.server import Server

def app(session, request, api):
    return (200, 'OK', {}, b'hi')

server = Server(('127.0.0.1', 0), app)
thread = threading.Thread(target=server.serve_forever, daemon=True)
thread.start()
# Not create_connection(): getaddrinfo() would import the idna codec, and re.
with socket.socket() as sock:
    sock.connect(server.address[:2])
    sock.sendall(b'GET / HTTP/1.1\\r\\nhost: x\\r\\n\\r\\n')
    assert sock.recv(100).startswith(b'HTTP/1.1 200 OK')
server.shutdown()
thread.join()
print(*sorted(name for name in ('logging', 're', 'typing') if name in sys.modules))
"""


def fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    )


def test_a_plain_server_that_served_imports_neither_logging_nor_typing():
    assert fresh(SERVE_ONE).stdout == "\n"


def test_a_warning_still_reaches_stderr_without_any_logging_setup():
    code = (
        "from degu._log import LazyLogger\n"
        "LazyLogger('degu.test').info('not shown')\n"
        "LazyLogger('degu.test').warning('shown %d', 42)\n"
    )
    # logging's last-resort handler prints WARNING and above, as a real
    # logger would without configuration.
    assert fresh(code).stderr == "shown 42\n"


def test_info_reaches_a_configured_logger(caplog: pytest.LogCaptureFixture):
    log = LazyLogger("degu.test.lazy")
    with caplog.at_level(logging.INFO, logger="degu.test.lazy"):
        log.info("hello %s", "there")
    (record,) = caplog.records
    assert record.getMessage() == "hello there"
    assert record.levelno == logging.INFO
    assert record.funcName == "test_info_reaches_a_configured_logger"


def test_warning_and_exception_name_their_caller(caplog: pytest.LogCaptureFixture):
    log = LazyLogger("degu.test.lazy")
    with caplog.at_level(logging.INFO, logger="degu.test.lazy"):
        log.warning("careful")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed: %s", "this")
    warning, error = caplog.records
    assert (warning.levelno, warning.getMessage()) == (logging.WARNING, "careful")
    assert (error.levelno, error.getMessage()) == (logging.ERROR, "failed: this")
    assert error.exc_info is not None and error.exc_info[0] is ValueError
    caller = "test_warning_and_exception_name_their_caller"
    assert warning.funcName == error.funcName == caller


def test_get_returns_the_named_logger():
    log = LazyLogger("degu.test.lazy")
    assert log.get() is logging.getLogger("degu.test.lazy")
    assert repr(log) == "LazyLogger('degu.test.lazy')"
