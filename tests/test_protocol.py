"""HTTP/1.1 on the wire: Date/Content-Length/Connection, keep-alive, HTTP/1.0, pipelining,
HEAD, and malformed requests (400 and close, while other clients are still served)."""
import email.utils
import json
import socket

import pytest


@pytest.fixture
def srv(server_pool):
    return server_pool.get("protocol_app:app")


def get(path: str, extra: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    return b"GET " + path.encode() + b" " + version + b"\r\nHost: test\r\n" + extra + b"\r\n"


def assert_server_still_serves(srv):
    r = srv.get("/")
    assert r.status == 200
    assert r.json() == {"hello": "world"}


# --------------------------------------------------------------------------- standard headers


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (get("/"), 200),
        (get("/nope"), 404),
        (get("/n/x"), 422),
        (get("/error"), 500),
        (get("/only-post"), 405),
        (get("/empty"), 204),
    ],
    ids=["200", "404", "422", "500", "405", "204"],
)
def test_every_response_has_date_and_framing(srv, request_bytes, status):
    with srv.raw() as conn:
        conn.send(request_bytes)
        r = conn.read_reply()
        assert r.status == status
        assert r.version == "HTTP/1.1"
        assert email.utils.parsedate_to_datetime(r.header("Date")) is not None
        assert r.header("Date").endswith(" GMT")
        assert len(r.header_all("Date")) == 1
        if status == 204:
            assert not r.has("Content-Length")
            assert r.body == b""
        else:
            assert r.header_all("Content-Length") == [str(len(r.body))]
        assert (r.header("Connection") or "").lower() != "close"
        # The connection stays usable after any of these.
        conn.send(get("/n/1"))
        assert conn.read_reply().json() == {"n": 1}


def test_status_line(srv):
    with srv.raw() as conn:
        conn.send(get("/"))
        r = conn.read_reply()
        assert r.head.startswith(b"HTTP/1.1 200 OK\r\n")


# --------------------------------------------------------------------------- keep-alive


def test_http11_keep_alive_by_default(srv):
    conn = srv.connection()
    try:
        srv.send(conn, "GET", "/n/0")
        sock = conn.sock
        for i in range(1, 50):
            r = srv.send(conn, "GET", f"/n/{i}")
            assert r.json() == {"n": i}
            assert conn.sock is sock, "http.client reconnected: the server closed a keep-alive connection"
    finally:
        conn.close()


@pytest.mark.parametrize("value", [b"close", b"Close", b"CLOSE"])
def test_http11_connection_close(srv, value):
    with srv.raw() as conn:
        conn.send(get("/", b"Connection: " + value + b"\r\n"))
        r = conn.read_reply()
        assert r.status == 200
        assert r.header("Connection").lower() == "close"
        assert conn.closed_by_server()


def test_http10_closes_by_default(srv):
    with srv.raw() as conn:
        conn.send(get("/", version=b"HTTP/1.0"))
        r = conn.read_reply()
        assert r.status == 200
        assert r.json() == {"hello": "world"}
        assert r.header("Connection").lower() == "close"
        assert conn.closed_by_server()


def test_http10_keep_alive_when_asked(srv):
    with srv.raw() as conn:
        conn.send(get("/n/1", b"Connection: keep-alive\r\n", version=b"HTTP/1.0"))
        r = conn.read_reply()
        assert r.json() == {"n": 1}
        # An HTTP/1.0 client assumes close unless the response says keep-alive.
        assert (r.header("Connection") or "").lower() == "keep-alive"
        conn.send(get("/n/2", b"Connection: Keep-Alive\r\n", version=b"HTTP/1.0"))
        assert conn.read_reply().json() == {"n": 2}


# --------------------------------------------------------------------------- pipelining


def test_pipelined_requests_are_answered_in_order(srv):
    body = b'{"x": "y"}'
    batch = (
        get("/n/1")
        + b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        + get("/nope")
        + b"HEAD /n/4 HTTP/1.1\r\nHost: t\r\n\r\n"
        + get("/empty")
        + get("/n/6")
    )
    with srv.raw() as conn:
        conn.send(batch)
        r1 = conn.read_reply()
        r2 = conn.read_reply()
        r3 = conn.read_reply()
        r4 = conn.read_reply(head_request=True)
        r5 = conn.read_reply()
        r6 = conn.read_reply()
        assert (r1.status, r1.json()) == (200, {"n": 1})
        assert (r2.status, r2.body) == (200, body)
        assert (r3.status, r3.json()) == (404, {"detail": "Not Found"})
        assert r4.status == 200 and r4.has("Content-Length")  # and no body: r5 parses right after it
        assert r5.status == 204
        assert (r6.status, r6.json()) == (200, {"n": 6})


def test_many_pipelined_requests_then_close(srv):
    batch = b"".join(get(f"/n/{i}") for i in range(100)) + get("/n/100", b"Connection: close\r\n")
    with srv.raw() as conn:
        conn.send(batch)
        for i in range(101):
            assert conn.read_reply().json() == {"n": i}
        assert conn.closed_by_server()


def test_request_sent_one_byte_at_a_time(srv):
    data = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" + get("/n/9")
    with srv.raw() as conn:
        for i in range(len(data)):
            conn.send(data[i:i + 1])
        r = conn.read_reply()
        assert (r.status, r.body) == (200, b"hello")
        assert conn.read_reply().json() == {"n": 9}


LARGE = 1_000_000  # bytes: large, but under the engine's default body limit of 1 MiB


def test_large_request_body_echoed(srv):
    payload = (bytes(range(256)) * 4000)[:LARGE]
    with srv.raw() as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
        r = conn.read_reply()
        assert r.status == 200
        assert r.body == payload
        conn.send(get("/n/1"))
        assert conn.read_reply().json() == {"n": 1}


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_over_the_default_limit_is_413_and_closed(srv, framing):
    """The engine's default limit is 1 MiB (app.run(max_body=...)); a larger body is refused."""
    size = 2 << 20
    with srv.raw(timeout=5) as conn:
        if framing == "content-length":
            conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size)
        else:
            conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % size)
        r = conn.read_reply()
        assert r.status == 413
        assert r.header("Connection").lower() == "close"
        assert conn.closed_by_server()
    assert_server_still_serves(srv)


# --------------------------------------------------------------------------- HEAD


def test_head_has_get_headers_and_no_body(srv):
    with srv.raw() as conn:
        conn.send(get("/n/12345"))
        g = conn.read_reply()
        conn.send(b"HEAD /n/12345 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        h = conn.read_reply(head_request=True)
        assert h.status == g.status == 200
        assert h.header("Content-Length") == g.header("Content-Length") == str(len(g.body))
        assert h.header("Content-Type") == g.header("Content-Type")
        names = lambda r: sorted(k.lower() for k, _ in r.headers if k.lower() != "connection")  # noqa: E731
        assert names(h) == names(g)
        # Anything after the HEAD response's header block would be a body: there must be none.
        assert conn.read_to_eof() == b""


def test_head_404_has_no_body(srv):
    with srv.raw() as conn:
        conn.send(b"HEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n" + get("/n/2"))
        h = conn.read_reply(head_request=True)
        assert h.status == 404
        assert conn.read_reply().json() == {"n": 2}


# --------------------------------------------------------------------------- malformed input


BAD_REQUESTS = {
    "header without colon": b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    "double space in request line": b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
    "missing version": b"GET /\r\nHost: x\r\n\r\n",
    "garbage version": b"GET / HTTX/1.1\r\nHost: x\r\n\r\n",
    "content-length not a number": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "content-length negative": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "content-length conflicting": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "space before colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "bare LF": b"GET / HTTP/1.1\nHost: x\n\n",
    "bad chunk size": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "control character in target": b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("data", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_malformed_request_is_400_and_closed(srv, data):
    with srv.raw(timeout=5) as conn:
        conn.send(data)
        r = conn.read_reply()
        assert r.status == 400
        assert r.header("Connection").lower() == "close"
        assert r.header("Content-Length") == str(len(r.body))
        assert conn.closed_by_server()
    assert_server_still_serves(srv)


def test_malformed_request_after_a_good_one_on_the_same_connection(srv):
    with srv.raw(timeout=5) as conn:
        conn.send(get("/n/1") + b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n" + get("/n/3"))
        assert conn.read_reply().json() == {"n": 1}
        assert conn.read_reply().status == 400
        assert conn.closed_by_server()


def test_client_disconnecting_mid_request_does_not_hurt(srv):
    for data in (b"GET / HT", b"GET / HTTP/1.1\r\nHost: x\r\n",
                 b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part"):
        s = socket.create_connection((srv.host, srv.port), timeout=5)
        s.sendall(data)
        s.close()
    assert_server_still_serves(srv)


def test_client_disconnecting_before_reading_a_large_response(srv):
    payload = b"z" * LARGE
    for _ in range(3):
        s = socket.create_connection((srv.host, srv.port), timeout=5)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
        s.close()
    assert_server_still_serves(srv)


def test_json_error_bodies_are_json(srv):
    with srv.raw() as conn:
        conn.send(get("/n/notanint"))
        r = conn.read_reply()
        assert r.status == 422
        assert json.loads(r.body)["detail"][0]["loc"] == ["path", "n"]
