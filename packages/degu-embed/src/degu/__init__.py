"""Degu: run an embedded HTTP/1.1 server in its own process.

This module belongs to the degu-embed distribution and is the only
``__init__.py`` in the shared ``degu`` namespace.  Importing it must stay
cheap: it imports nothing but :mod:`pkgutil` at module level (no socket, ssl,
threading, multiprocessing or logging, and no ``degu.*`` submodule).
"""

# Keep the namespace open: degu-core and degu-controller install their modules
# as PEP 420 portions, possibly on other sys.path entries (editable installs).
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.1.0"

IPv6_LOOPBACK = ("::1", 0, 0, 0)
IPv6_ANY = ("::", 0, 0, 0)
IPv4_LOOPBACK = ("127.0.0.1", 0)
IPv4_ANY = ("0.0.0.0", 0)
ADDRESS_CONSTANTS = (IPv6_LOOPBACK, IPv6_ANY, IPv4_LOOPBACK, IPv4_ANY)
