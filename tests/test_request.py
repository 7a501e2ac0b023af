"""The Request object: method, path, query, headers, path params, body, json()."""
import hashlib
import json

import pytest


@pytest.fixture
def srv(server_pool):
    return server_pool.get("request_app:app")


def raw_exchange(srv, data: bytes):
    with srv.raw() as conn:
        conn.send(data)
        return conn.read_reply()


def test_get_without_query_or_body(srv):
    r = srv.get("/req/bob")
    assert r.status == 200
    assert r.json() == {
        "method": "GET",
        "path": "/req/bob",
        "query_string": "",
        "query_params": {},
        "q_first": None,
        "q_missing": None,
        "q_missing_default": "dflt",
        "path_params": {"name": "bob"},
        "body": "",
        "body_is_bytes": True,
    }


def test_query_string_raw_and_params_decoded(srv):
    r = srv.get("/req/amy?q=1&q=2&b=x%20y&c=plus+sign&d=%E2%98%83")
    body = r.json()
    assert body["query_string"] == "q=1&q=2&b=x%20y&c=plus+sign&d=%E2%98%83"
    assert body["query_params"] == {"q": ["1", "2"], "b": ["x y"], "c": ["plus sign"], "d": ["\u2603"]}
    assert body["q_first"] == "1"
    assert body["q_missing"] is None
    assert body["q_missing_default"] == "dflt"
    assert body["path"] == "/req/amy"


def test_post_body_is_raw_bytes(srv):
    payload = bytes(range(256)) * 3
    r = srv.request("POST", "/req/x", body=payload, headers={"Content-Type": "application/octet-stream"})
    body = r.json()
    assert body["method"] == "POST"
    assert body["body"].encode("latin-1") == payload
    assert body["body_is_bytes"] is True


def test_path_params_are_strings_even_when_the_handler_converts(srv):
    assert srv.get("/typed/5").json() == {"n": 5, "path_params": {"n": "5"}}


def test_json(srv):
    doc = {"a": [1, 2.5, {"b": None}], "s": "\u2603", "t": True}
    r = srv.request("POST", "/json", json=doc)
    assert r.status == 200
    assert r.json() == {"parsed": doc}


def test_large_body(srv):
    payload = (b"0123456789abcdef" * 65536)[:1_000_000]  # under the default body limit (1 MiB)
    r = srv.request("POST", "/digest", body=payload)
    assert r.json() == {"len": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}


def test_chunked_body_is_decoded(srv):
    r = raw_exchange(
        srv,
        b"POST /digest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    assert r.status == 200
    assert r.json() == {"len": 11, "sha256": hashlib.sha256(b"hello world").hexdigest()}


def test_chunked_body_with_extensions_and_trailer(srv):
    r = raw_exchange(
        srv,
        b"POST /digest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n",
    )
    assert r.status == 200
    assert r.json() == {"len": 15, "sha256": hashlib.sha256(b"hello0123456789").hexdigest()}


def test_chunked_body_from_http_client(srv):
    conn = srv.connection()
    try:
        conn.request("POST", "/digest", body=iter([b"abc", b"", b"defg" * 1000]), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        resp = conn.getresponse()
        expected = b"abc" + b"defg" * 1000
        assert resp.status == 200
        assert json.loads(resp.read()) == {"len": len(expected), "sha256": hashlib.sha256(expected).hexdigest()}
    finally:
        conn.close()


def test_headers_mapping(srv):
    r = raw_exchange(
        srv,
        b"GET /headers HTTP/1.1\r\nHost: example\r\nX-Custom:   spaced value  \r\nAccept: */*\r\n\r\n",
    )
    assert r.status == 200
    body = r.json()
    assert sorted(body.pop("items")) == [["accept", "*/*"], ["host", "example"], ["x-custom", "spaced value"]]
    assert body == {
        "lower": "spaced value",
        "upper": "spaced value",
        "get": "spaced value",
        "get_default": "dflt",
        "get_none": None,
        "multi": [],
        "multi_absent": [],
        "in_lower": True,
        "in_mixed": True,
        "in_absent": False,
        "keyerror": True,
        "len": 3,
    }


def test_repeated_headers(srv):
    r = raw_exchange(
        srv,
        b"GET /headers HTTP/1.1\r\nHost: x\r\nX-Multi: a\r\nX-Custom: c\r\nx-multi: b\r\nX-MULTI: c, d\r\n\r\n",
    )
    body = r.json()
    assert body["multi"] == ["a", "b", "c, d"]
    assert body["lower"] == "c"


def test_repr_names_method_and_path(srv):
    # repr() once printed "<Request %.*s %.*s>" on CPython 3.11, whose
    # PyUnicode_FromFormat has no "%.*s".
    r = srv.get("/repr/abc?x=1")
    assert r.status == 200
    assert r.json() == {"repr": "<Request GET /repr/abc>"}
