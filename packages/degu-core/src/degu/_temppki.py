"""TempPKI: a complete throw-away PKI in a temporary directory (SPEC §9).

degu.misc re-exports :class:`TempPKI`; it lives here so that degu.misc does
not have to import the thread pool used to make it fast.

Speed matters because test modules make one each. RSA key generation
dominates and the keys are independent of each other, so the keys are made
concurrently, then the CA certificates and CSRs, then the two signatures:
three rounds of parallel ``openssl`` runs instead of a chain of about fourteen.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from degu.sslhelpers import PKI, _check_bits

__all__ = ["TempPKI"]

_T = TypeVar("_T")
_R = TypeVar("_R")

#: Most ``openssl`` processes TempPKI runs at once (4 keys with client_pki).
MAX_WORKERS = 4


def _check_bool(name: str, value: object) -> None:
    if type(value) is not bool:
        got = f"{type(value)!r}: {value!r}"
        raise TypeError(f"{name}: need a {bool!r}; got a {got}")


class TempPKI(PKI):
    """A server CA and certificate, and optionally a client CA and certificate.

    Args:
        client_pki: also make a client CA and a client certificate it signs
            (needed for :attr:`server_sslconfig` and :attr:`client_sslconfig`).
        bits: RSA key size for every key (see :func:`degu.sslhelpers.create_key`).

    The directory (``TempPKI.*`` under the system temp dir) is removed when the
    object is garbage collected.
    """

    client_ca_id: str | None
    client_id: str | None

    def __init__(self, client_pki: bool = True, bits: int = 2048) -> None:
        _check_bool("client_pki", client_pki)
        _check_bits(bits)  # before starting four openssl runs
        super().__init__(tempfile.mkdtemp(prefix="TempPKI."))
        self.client_pki = client_pki
        count = 4 if client_pki else 2
        with ThreadPoolExecutor(MAX_WORKERS) as pool:

            def each(fn: Callable[[_T], _R], items: list[_T]) -> list[_R]:
                return list(pool.map(fn, items))

            ids = each(self.create_key, [bits] * count)
            ca_ids, cert_ids = ids[0::2], ids[1::2]
            each(self.create_ca, ca_ids)
            each(self.create_csr, cert_ids)
            # Each signature uses its own CA and serial file: safe in parallel.
            each(
                lambda pair: self.issue_cert(*pair),
                list(zip(cert_ids, ca_ids, strict=True)),
            )
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
