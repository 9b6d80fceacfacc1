"""A small REST service: JSON items over RGI, with a client to go with it.

Needs the degu-core distribution: from a clone of the repository,
``python3 -m pip install ./packages/degu-core`` (docs/installation.rst).

The service keeps named JSON values in memory:

    GET    /items          list the names, sorted
    GET    /items/NAME     the value stored under NAME (404 if there is none)
    PUT    /items/NAME     store the JSON request body under NAME
    DELETE /items/NAME     remove NAME (404 if there is none)

Running this file starts the service on a free loopback port, drives it with
``ItemsClient``, prints what happens and stops.  docs/tutorial/rest-service.rst
builds it up step by step.
"""

from __future__ import annotations

import json
import threading
from typing import Any

try:
    from degu.applib import AllowedMethods, Router
    from degu.client import Client
    from degu.server import Server
except ImportError as e:  # say which distribution to install
    raise SystemExit(
        f"{__file__} needs degu-core ({e}): install it with "
        "python3 -m pip install ./packages/degu-core (docs/installation.rst)"
    ) from None

#: Largest JSON document a PUT may carry, in bytes.
MAX_ITEM_SIZE = 65536


# --- step 1: the store --------------------------------------------------------
class Store:
    """Named JSON values, safe to share between connection threads."""

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._items)

    def get(self, name: str) -> Any:
        with self._lock:
            return self._items[name]  # KeyError when missing

    def put(self, name: str, value: Any) -> bool:
        """Store *value*; return True when *name* is new."""
        with self._lock:
            created = name not in self._items
            self._items[name] = value
            return created

    def delete(self, name: str) -> None:
        with self._lock:
            del self._items[name]  # KeyError when missing


# --- end of step 1 ------------------------------------------------------------


# --- step 2: JSON in and out --------------------------------------------------
def json_response(status: int, reason: str, value: Any) -> tuple[Any, ...]:
    """A response whose body is *value* as JSON."""
    body = json.dumps(value).encode()
    return (status, reason, {"content-type": "application/json"}, body)


def read_json(body: Any) -> Any:
    """Read a whole request body and return its JSON value.

    Raises:
        ValueError: no body, a body over MAX_ITEM_SIZE, or not JSON.
    """
    if body is None:
        raise ValueError("a JSON request body is needed")
    # body.read() reads the whole body (Degu refuses single reads over
    # 16 MiB).  Read it even when it is too big for us: the server only
    # answers a request whose body was read.
    data = body.read()
    if len(data) > MAX_ITEM_SIZE:
        raise ValueError(f"body is larger than {MAX_ITEM_SIZE} bytes")
    return json.loads(data)


# --- end of step 2 ------------------------------------------------------------


# --- step 3: the application --------------------------------------------------
def build_app(store: Store) -> Router:
    """The RGI application for *store*: a Router in front of two handlers."""

    @AllowedMethods("GET", "HEAD")
    def list_items(session: Any, request: Any, api: Any) -> Any:
        status, reason, headers, body = json_response(200, "OK", store.names())
        if request.method == "HEAD":
            # HEAD: the headers GET would send, without the body.
            headers["content-length"] = len(body)
            return (status, reason, headers, None)
        return (status, reason, headers, body)

    @AllowedMethods("GET", "PUT", "DELETE")
    def one_item(session: Any, request: Any, api: Any) -> Any:
        name = request.path[0]
        if request.method == "PUT":
            try:
                value = read_json(request.body)
            except ValueError as e:  # json.JSONDecodeError is a ValueError
                return json_response(400, "Bad Request", {"error": str(e)})
            if store.put(name, value):
                # b"" rather than None: the server then sends
                # "content-length: 0", so any client knows the answer is
                # complete (without it, RFC 9112 says read until close).
                return (201, "Created", {}, b"")
            return (204, "No Content", {}, None)
        try:
            if request.method == "DELETE":
                store.delete(name)
                return (204, "No Content", {}, None)
            return json_response(200, "OK", store.get(name))
        except KeyError:
            return (404, "Not Found", {}, b"")

    def items(session: Any, request: Any, api: Any) -> Any:
        # The Router has shifted "items" into request.mount; what is left
        # of the path says which handler answers.
        if request.path in ([], [""]):
            return list_items(session, request, api)
        if len(request.path) == 1:
            return one_item(session, request, api)
        if request.body is not None:
            request.body.read()  # read before answering, as always
        return (404, "Not Found", {}, b"")

    return Router({"items": items})


# --- end of step 3 ------------------------------------------------------------


# --- step 4: the client -------------------------------------------------------
class ItemsClient:
    """Talks to the items service over one keep-alive connection."""

    def __init__(self, address: Any) -> None:
        self.conn = Client(address).connect()

    def close(self) -> None:
        self.conn.close()

    def _call(self, method: str, name: str | None, value: Any = None) -> Any:
        uri = "/items" if name is None else f"/items/{name}"
        body = None if value is None else json.dumps(value).encode()
        response = self.conn.request(method, uri, {}, body)
        data = b"" if response.body is None else response.body.read()
        if response.status == 404:
            raise KeyError(name)
        if response.status >= 400:
            raise ValueError(f"{response.status} {response.reason}: {data!r}")
        return json.loads(data) if data else None

    def names(self) -> list[str]:
        return self._call("GET", None)  # type: ignore[no-any-return]

    def get(self, name: str) -> Any:
        return self._call("GET", name)

    def put(self, name: str, value: Any) -> None:
        self._call("PUT", name, value)

    def delete(self, name: str) -> None:
        self._call("DELETE", name)


# --- end of step 4 ------------------------------------------------------------


#: The application over one module-wide store, for the command line:
#: ``python3 -m degu.server --app rest_service:app``.
app = build_app(Store())


# --- step 5: run it -----------------------------------------------------------
def main() -> None:
    """Serve a fresh store on 127.0.0.1, use it through ItemsClient, stop."""
    server = Server(("127.0.0.1", 0), build_app(Store()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = ItemsClient(server.address)
    try:
        client.put("apple", {"colour": "red", "stock": 3})
        client.put("pear", {"colour": "green", "stock": 0})
        print("names:", client.names())
        print("apple:", client.get("apple"))
        client.delete("pear")
        print("after delete:", client.names())
        try:
            client.get("pear")
        except KeyError:
            print("pear: not found")
    finally:
        client.close()
        server.shutdown()
        thread.join(10)


# --- end of step 5 ------------------------------------------------------------

if __name__ == "__main__":
    main()
