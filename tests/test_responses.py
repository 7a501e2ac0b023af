"""Return values and Response objects: JSON encoding, status codes, headers, framing."""
import pytest

from karak import Response


@pytest.fixture
def srv(server_pool):
    return server_pool.get("responses_app:app")


def media_type(reply) -> str:
    return (reply.header("Content-Type") or "").split(";")[0].strip()


def assert_json(reply, expected, status=200):
    assert reply.status == status, reply
    assert media_type(reply) == "application/json"
    assert reply.header("Content-Length") == str(len(reply.body))
    assert reply.json() == expected


# --------------------------------------------------------------------------- plain values


def test_dict(srv):
    assert_json(srv.get("/dict"), {"a": 1, "b": [1, 2], "c": {"d": None}})


def test_list(srv):
    assert_json(srv.get("/list"), [1, "two", 3.5, None, True, {"k": "v"}])


def test_str_is_a_json_string(srv):
    r = srv.get("/str")
    assert_json(r, "hello")
    assert r.body == b'"hello"'


def test_unicode_and_escapes_round_trip(srv):
    assert_json(srv.get("/unicode"), {"text": "h\u00e9llo \u2603 \U0001f600 \u2028 \"q\" \\ \n\t\x01"})


def test_int(srv):
    r = srv.get("/int")
    assert_json(r, 42)
    assert r.body == b"42"


def test_big_ints(srv):
    assert_json(srv.get("/bigint"), {"big": 2**70, "neg": -(2**64)})


def test_float(srv):
    r = srv.get("/float")
    assert_json(r, 1.5)
    assert r.body == b"1.5"


def test_bools(srv):
    assert srv.get("/true").body == b"true"
    assert srv.get("/false").body == b"false"
    assert_json(srv.get("/true"), True)


@pytest.mark.parametrize("path", ["/none", "/none-annotated"])
def test_none_is_204_without_body_or_length(srv, path):
    r = srv.get(path)
    assert r.status == 204
    assert r.body == b""
    assert r.header("Content-Length") is None


def test_model(srv):
    assert_json(srv.get("/model"), {"name": "widget", "price": 2.5})


def test_list_of_models(srv):
    assert_json(srv.get("/model-list"), [{"name": "a", "price": 1.0}, {"name": "b", "price": 2.0}])


def test_return_annotation_model_drops_extra_keys(srv):
    assert_json(srv.get("/annotated"), {"name": "widget", "price": 2.5})


def test_return_annotation_list_of_models(srv):
    assert_json(srv.get("/annotated-list"), [{"name": "a", "price": 1.0}, {"name": "b", "price": 2.0}])


def test_return_value_failing_its_annotation_is_500(srv):
    r = srv.get("/annotated-invalid")
    assert r.status == 500
    assert r.json() == {"detail": "Internal Server Error"}


@pytest.mark.parametrize("n", [0, 1, 65_000, 1_000_000, 4_000_000])
def test_large_bodies_arrive_whole(srv, n):
    r = srv.get(f"/big?n={n}")
    assert r.status == 200
    assert r.header("Content-Length") == str(n + 2)
    assert r.body == b'"' + b"x" * n + b'"'


# --------------------------------------------------------------------------- status_code=


@pytest.mark.parametrize("code, line", [
    (200, b"HTTP/1.1 200 OK\r\n"),
    (418, b"HTTP/1.1 418 I'm a teapot\r\n"),
    (299, b"HTTP/1.1 299 \r\n"),   # no reason phrase: the space stays (RFC 9112 4)
    (599, b"HTTP/1.1 599 \r\n"),   # the highest valid code (RFC 9110 15); 600+ is refused
])
def test_status_line_on_the_wire(srv, code, line):
    with srv.raw() as conn:
        conn.send(f"GET /resp/code/{code} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        r = conn.read_reply()
        assert r.head.startswith(line), r.head
        assert r.header_all("Content-Length") == ["1"]
        assert r.body == b"c"


def test_decorator_status_code(srv):
    assert_json(srv.request("POST", "/created"), {"created": True}, status=201)


def test_http_exception_overrides_decorator_status(srv):
    assert_json(srv.request("POST", "/created-error"), {"detail": "conflict"}, status=409)


def test_returned_response_keeps_its_own_status(srv):
    assert_json(srv.request("POST", "/created-response"), {"ok": True}, status=200)


# --------------------------------------------------------------------------- Response


def test_response_bytes(srv):
    r = srv.get("/resp/bytes")
    assert r.status == 200
    assert r.body == b"\x00\x01binary\xff"
    assert media_type(r) == "application/octet-stream"
    assert r.header("Content-Length") == str(len(r.body))


def test_response_str_is_utf8(srv):
    r = srv.get("/resp/str")
    assert r.status == 200
    assert r.body == "<p>caf\u00e9</p>".encode()
    assert media_type(r) == "text/html"


def test_response_status_and_headers(srv):
    r = srv.get("/resp/status-headers")
    assert r.status == 418
    assert r.header("X-Custom") == "1"
    assert r.body == b"teapot"
    assert media_type(r) == "text/plain"


def test_response_json(srv):
    r = srv.get("/resp/json")
    assert_json(r, {"x": [1, 2]}, status=202)
    assert r.header("X-J") == "j"


def test_response_text(srv):
    r = srv.get("/resp/text")
    assert r.status == 201
    assert r.header("Content-Type") == "text/plain; charset=utf-8"
    assert r.header("X-T") == "t"
    assert r.body == "hi \u2603".encode()


def test_response_empty(srv):
    r = srv.get("/resp/empty")
    assert r.status == 204
    assert r.body == b""
    assert r.header("Content-Length") is None


def test_response_empty_with_status_and_headers(srv):
    r = srv.get("/resp/empty-headers")
    assert r.status == 202
    assert r.header("X-E") == "e"
    assert r.body == b""
    assert r.header("Content-Length") == "0"


# --------------------------------------------------------------------------- in process


def lower_keys(headers) -> dict:
    return {k.lower(): v for k, v in headers.items()}


def test_response_object_attributes():
    r = Response(content=b"abc", status_code=201, headers={"X-A": "1"}, media_type="text/plain")
    assert r.status_code == 201
    assert r.body == b"abc"
    assert isinstance(r.headers, dict)
    assert lower_keys(r.headers)["x-a"] == "1"


def test_response_str_content_is_encoded():
    assert Response(content="caf\u00e9").body == "caf\u00e9".encode()


def test_response_json_attributes():
    import json

    r = Response.json({"a": [1, None]}, status_code=202, headers={"X-J": "2"})
    assert r.status_code == 202
    assert json.loads(r.body) == {"a": [1, None]}
    assert lower_keys(r.headers)["x-j"] == "2"


def test_response_text_attributes():
    r = Response.text("hi")
    assert r.status_code == 200
    assert r.body == b"hi"


def test_response_empty_attributes():
    r = Response.empty()
    assert r.status_code == 204
    assert r.body == b""
    assert Response.empty(status_code=202, headers={"X-E": "1"}).status_code == 202
