"""The six endpoints, what each must answer, and the check run before any measurement.

The expected answers are written out here independently of bench/apps/common.py, so a
change to the apps that alters a response is caught rather than silently benchmarked.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass

POST_BODY = b'{"name":"Widget","price":9.99,"tags":["a","b"]}'

EXPECTED_JSON = {
    "message": "Hello, World!",
    "items": [{"id": i, "value": i * 10} for i in range(20)],
    "nested": {"level1": {"level2": "deep value"}, "another": {"key": "value"}},
}


def _cpu_result() -> int:
    return sum(i * i for i in range(100000))


@dataclass(frozen=True)
class Endpoint:
    key: str            # stable id: results, targets, chart labels
    label: str          # what the tables show
    method: str
    path: str           # the exact request target wrk sends
    media_type: str     # expected Content-Type, parameters ignored
    expected: object    # bytes for text, a parsed JSON value for JSON
    body: bytes | None = None


ENDPOINTS = [
    Endpoint("plaintext", "GET /plaintext", "GET", "/plaintext", "text/plain",
             b"Hello, World!"),
    Endpoint("json", "GET /json", "GET", "/json", "application/json", EXPECTED_JSON),
    Endpoint("items-get", "GET /items/{id}", "GET", "/items/42?q=hello&limit=5",
             "application/json", {"id": 42, "q": "hello", "limit": 5}),
    Endpoint("items-post", "POST /items", "POST", "/items", "application/json",
             {"name": "Widget", "price": 9.99, "tags": ["a", "b"]}, POST_BODY),
    Endpoint("db", "GET /db", "GET", "/db", "application/json",
             [{"id": i + 1, "name": f"User {i}", "email": f"user{i}@example.com"}
              for i in range(10)]),
    Endpoint("cpu", "GET /cpu", "GET", "/cpu", "application/json",
             {"result": _cpu_result(), "iterations": 100000}),
]
BY_KEY = {e.key: e for e in ENDPOINTS}

# Not measured, only recorded: does the app really convert /items/{id}? A server that
# echoed strings would do less work than one that converts and validates.
INVALID_ITEM = "/items/abc?q=hello&limit=5"


def fetch(port: int, method: str, target: str, body: bytes | None = None
          ) -> tuple[int, str, bytes]:
    """One request on a fresh connection: (status, content-type, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), resp.read()
    finally:
        conn.close()


def check(port: int, ep: Endpoint) -> str | None:
    """None when the server answers `ep` as every app must; else what differs."""
    try:
        status, ctype, body = fetch(port, ep.method, ep.path, ep.body)
    except OSError as e:
        return f"request failed: {e}"
    if status != 200:
        return f"status {status}, want 200"
    media = ctype.split(";")[0].strip().lower()
    if media != ep.media_type:
        return f"content-type {ctype!r}, want {ep.media_type}"
    if isinstance(ep.expected, bytes):
        if body != ep.expected:
            return f"body {body[:80]!r}, want {ep.expected!r}"
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return f"body is not JSON: {body[:80]!r}"
    if value != ep.expected:
        return f"JSON differs: {body[:120]!r}"
    return None


def check_invalid_item(port: int) -> str:
    """The status a server gives to a non-integer id (recorded, not enforced)."""
    try:
        status, _ctype, _body = fetch(port, "GET", INVALID_ITEM)
    except OSError as e:
        return f"error: {e}"
    return str(status)
