"""The benchmark endpoints as bare Granian callables: no framework at all.

Two callables with the same behaviour, so the driver can use whichever interface is
fastest for Granian on this machine (docs/BENCHMARKS.md says which one won and why):

    rsgi_app   Granian's own interface (async, Rust-side response objects)
    wsgi_app   plain WSGI (sync, Granian's blocking threads)

Routing is a short `if` chain and one prefix test: the least a Python app can do. The
per-request work (pydantic models, the SQLite query, the CPU loop) is common.py's,
the same as in every other app.

The suite uses wsgi_app (measured faster here, mostly on POST; docs/BENCHMARKS.md).

Run: <granian311 venv>/bin/granian --interface wsgi --runtime-mode st \
        --working-dir bench/apps granian_app:wsgi_app --host 127.0.0.1 --port 8003
"""

import os
import sys
from urllib.parse import parse_qs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pydantic import TypeAdapter, ValidationError  # noqa: E402

import common  # noqa: E402
from common import CpuResponse, Item, JsonResponse, UserResponse  # noqa: E402

TEXT = [("content-type", "text/plain")]
JSON = [("content-type", "application/json")]
PLAINTEXT = common.PLAINTEXT.encode()
NOT_FOUND = b'{"detail":"Not Found"}'

_json_bytes = JsonResponse.__pydantic_serializer__.to_json
_cpu_bytes = CpuResponse.__pydantic_serializer__.to_json
_item_bytes = Item.__pydantic_serializer__.to_json
_item_parse = Item.model_validate_json
_users_bytes = TypeAdapter(list[UserResponse]).dump_json
_dict_bytes = TypeAdapter(dict).dump_json


def _item_get(path: str, query: str) -> tuple[int, bytes]:
    """GET /items/{id}?q=str&limit=int: the converted parameters, or 422."""
    try:
        item_id = int(path[7:])
        params = parse_qs(query)
        q = params["q"][0]
        limit = int(params["limit"][0])
    except (KeyError, ValueError):
        return 422, b'{"detail":"invalid parameters"}'
    return 200, _dict_bytes({"id": item_id, "q": q, "limit": limit})


def _item_post(body: bytes) -> tuple[int, bytes]:
    """POST /items: the body parsed into Item and echoed, or 422."""
    try:
        return 200, _item_bytes(_item_parse(body))
    except ValidationError:
        return 422, b'{"detail":"invalid body"}'


def _simple(path: str) -> bytes | None:
    """The endpoints that take no input; None when the path is not one of them."""
    if path == "/json":
        return _json_bytes(common.make_json())
    if path == "/db":
        return _users_bytes(common.query_users(common.get_db()))
    if path == "/cpu":
        return _cpu_bytes(common.cpu())
    return None


async def rsgi_app(scope, proto):
    path = scope.path
    if scope.method == "GET":
        if path == "/plaintext":
            proto.response_bytes(200, TEXT, PLAINTEXT)
            return
        if path.startswith("/items/"):
            status, body = _item_get(path, scope.query_string)
            proto.response_bytes(status, JSON, body)
            return
        body = _simple(path)
        if body is not None:
            proto.response_bytes(200, JSON, body)
            return
    elif scope.method == "POST" and path == "/items":
        status, body = _item_post(await proto())
        proto.response_bytes(status, JSON, body)
        return
    proto.response_bytes(404, JSON, NOT_FOUND)


_STATUS = {200: "200 OK", 404: "404 Not Found", 422: "422 Unprocessable Entity"}


def wsgi_app(environ, start_response):
    path = environ["PATH_INFO"]
    method = environ["REQUEST_METHOD"]
    status, headers, body = 404, JSON, NOT_FOUND
    if method == "GET":
        if path == "/plaintext":
            status, headers, body = 200, TEXT, PLAINTEXT
        elif path.startswith("/items/"):
            status, body = _item_get(path, environ.get("QUERY_STRING", ""))
        else:
            simple = _simple(path)
            if simple is not None:
                status, body = 200, simple
    elif method == "POST" and path == "/items":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        status, body = _item_post(environ["wsgi.input"].read(length))
    start_response(_STATUS[status], headers + [("content-length", str(len(body)))])
    return [body]


common.gil_report("granian")
