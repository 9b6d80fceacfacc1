"""TempPKI: a complete throw-away PKI in a temporary directory.

degu.misc re-exports :class:`TempPKI`; it lives here so that degu.misc does
not have to import the thread pool used to make it fast.

Speed matters because test modules make one each.  The default keys are
ECDSA P-256, which take milliseconds to make where a 2048-bit RSA key takes
a large fraction of a second; either way the keys are independent of each
other, so they are made concurrently, then the CA certificates and CSRs, then
the two signatures: three rounds of parallel ``openssl`` runs instead of a
chain of about fourteen.  ``bench/bench_temppki.py`` measures it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from degu._checks import type_error
from degu.sslhelpers import PKI, check_bits, checked_hostnames

__all__ = ["TempPKI"]

_T = TypeVar("_T")
_R = TypeVar("_R")

#: Most ``openssl`` processes TempPKI runs at once (4 keys with client_pki).
MAX_WORKERS = 4

#: Names the server certificate is valid for besides its id: the loopback
#: interface, where a throw-away PKI's servers listen.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def _check_bool(name: str, value: object) -> None:
    if type(value) is not bool:
        type_error(name, bool, value)


class TempPKI(PKI):
    """A server CA and certificate, and optionally a client CA and certificate.

    Args:
        client_pki: also make a client CA and a client certificate it signs
            (needed for :attr:`server_sslconfig` and :attr:`client_sslconfig`).
        bits: ``None`` (the default) for ECDSA P-256 keys, fast to make; or an
            RSA key size for every key (see :func:`degu.sslhelpers.create_key`).
        hostnames: host names and IP addresses the server certificate is also
            valid for, after its id (see :meth:`degu.sslhelpers.PKI.issue_cert`);
            by default the loopback names, so that curl or requests can verify
            ``https://127.0.0.1:<port>/`` against :attr:`server_ca_file`.

    The directory (``TempPKI.*`` under the system temp dir) is removed when the
    object is garbage collected.
    """

    client_ca_id: str | None
    client_id: str | None

    def __init__(
        self,
        client_pki: bool = True,
        bits: int | None = None,
        *,
        hostnames: Iterable[str] = LOOPBACK_NAMES,
    ) -> None:
        # Every argument is checked before the first openssl run.
        _check_bool("client_pki", client_pki)
        if bits is not None:
            check_bits(bits)
        names = checked_hostnames(hostnames)
        super().__init__(tempfile.mkdtemp(prefix="TempPKI."))
        self.client_pki = client_pki
        self.bits = bits
        self.hostnames = names
        count = 4 if client_pki else 2
        with ThreadPoolExecutor(MAX_WORKERS) as pool:

            def each(fn: Callable[[_T], _R], items: list[_T]) -> list[_R]:
                return list(pool.map(fn, items))

            def make_key(_: int) -> str:
                return self.create_ec_key() if bits is None else self.create_key(bits)

            ids = each(make_key, list(range(count)))
            ca_ids, cert_ids = ids[0::2], ids[1::2]
            # CA certificates and CSRs need only the keys: one round for all.
            requests = [(self.create_ca, i) for i in ca_ids]
            requests += [(self.create_csr, i) for i in cert_ids]
            each(lambda job: job[0](job[1]), requests)
            # Each signature uses its own CA and serial file: safe in parallel.
            # Only the server certificate is meant to be reached by host name.
            signings = [(cert_ids[0], ca_ids[0], names)]
            if client_pki:
                signings.append((cert_ids[1], ca_ids[1], ()))
            each(lambda job: self.issue_cert(*job), signings)
        self.server_ca_id, self.server_id = ids[0], ids[1]
        if client_pki:
            self.client_ca_id, self.client_id = ids[2], ids[3]
        else:
            self.client_ca_id = self.client_id = None

    def __del__(self) -> None:
        # getattr: __init__ may have failed before ssldir was set.
        ssldir = getattr(self, "ssldir", None)
        if ssldir is not None:
            shutil.rmtree(ssldir, ignore_errors=True)

    def _need_client_pki(self, name: str) -> tuple[str, str]:
        if self.client_ca_id is None or self.client_id is None:
            raise ValueError(f"{name} needs TempPKI(client_pki=True)")
        return self.client_ca_id, self.client_id

    @property
    def server_ca_file(self) -> str:
        """The path of the server CA certificate: what a client verifies against."""
        return self.path(self.server_ca_id, "ca")

    @property
    def server_sslconfig(self) -> dict[str, str]:
        """A new server sslconfig requiring client certificates from the client CA."""
        client_ca_id = self._need_client_pki("server_sslconfig")[0]
        return self.get_server_sslconfig(self.server_id, client_ca_id)

    @property
    def client_sslconfig(self) -> dict[str, object]:
        """A new client sslconfig presenting the client certificate."""
        client_id = self._need_client_pki("client_sslconfig")[1]
        return self.get_client_sslconfig(self.server_ca_id, client_id)

    @property
    def anonymous_server_sslconfig(self) -> dict[str, object]:
        """A new server sslconfig that accepts clients without a certificate."""
        return self.get_anonymous_server_sslconfig(self.server_id)

    @property
    def anonymous_client_sslconfig(self) -> dict[str, object]:
        """A new client sslconfig that verifies the server but has no certificate."""
        return self.get_anonymous_client_sslconfig(self.server_ca_id)
