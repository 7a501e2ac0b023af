"""Every limit, at the limit and one over, against a live server; error responses are
delivered (stop reading, half-close, drain); pipelined requests after a bad one are
never served; app-set response headers with CR, LF or NUL are refused with a 500.

Limits are set small, through the CLI for one server and through app.run(**limits)
for the others, so both ways are exercised.
"""
import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))
from hardening_launch import connect, get, hardened, launch, recv_until_close, wait_until  # noqa: E402,F401

LINE = 64  # max_request_line
HEAD = 256  # max_header_bytes
FIELDS = 5  # max_headers
BODY = 64  # max_body


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """One server with small limits, set on the command line."""
    events = tmp_path_factory.mktemp("limits") / "events.txt"
    srv = launch(tmp_path_factory.mktemp("limits-servers"), workers=2, cli=True, events=events,
                 max_request_line=LINE, max_header_bytes=HEAD, max_headers=FIELDS, max_body=BODY)
    srv.events = events
    yield srv
    assert srv.stop() == 0, srv.tail()


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    """A server with every default limit (set by nobody)."""
    srv = launch(tmp_path_factory.mktemp("default-servers"), workers=2)
    yield srv
    assert srv.stop() == 0, srv.tail()


def exchange(srv, data: bytes, timeout: float = 10.0):
    """Sends data, reads one response; returns (RawReply, closed_after) where closed_after
    says whether the server then closed the connection without sending anything more."""
    with srv.raw(timeout) as conn:
        conn.send(data)
        reply = conn.read_reply()
        rest, how = recv_until_close(conn.sock, 2.0) if reply.header("Connection", "").lower() == "close" \
            else (b"", "open")
        assert rest == b"" and not conn.buf, f"unexpected bytes after the response: {bytes(conn.buf) + rest!r}"
        return reply, how in ("eof", "reset")


def line_of(length: int) -> bytes:
    """A request line of exactly `length` bytes (CRLF not counted)."""
    fixed = len(b"GET / HTTP/1.1")
    return b"GET /" + b"a" * (length - fixed) + b" HTTP/1.1"


def assert_error(reply, closed, status):
    assert reply.status == status, reply
    assert reply.header("Connection", "").lower() == "close", reply
    assert closed, "the server kept the connection open after an error"


# --------------------------------------------------------------------------- request line: 414


@pytest.mark.parametrize("srv_name, limit", [("small", LINE), ("default", 8192)])
def test_request_line_at_limit_passes_and_one_over_is_414(request, srv_name, limit):
    srv = request.getfixturevalue(srv_name)
    at = line_of(limit)
    assert len(at) == limit
    reply, _ = exchange(srv, at + b"\r\nHost: t\r\n\r\n")
    assert reply.status == 200, reply
    assert reply.json()["path"] == "/" + "a" * (limit - len(b"GET / HTTP/1.1"))

    reply, closed = exchange(srv, line_of(limit + 1) + b"\r\nHost: t\r\n\r\n")
    assert_error(reply, closed, 414)


def test_414_is_sent_before_the_line_ends(small):
    """A request line that never ends is refused as soon as it is too long."""
    reply, closed = exchange(small, b"GET /" + b"a" * (LINE * 4))
    assert_error(reply, closed, 414)


# --------------------------------------------------------------------------- header section: 431


def head_of(section: int) -> bytes:
    """A request whose header section (after the request line, final CRLF included) is
    exactly `section` bytes, in two fields."""
    base = b"Host: t\r\nX: \r\n\r\n"
    return b"GET /h HTTP/1.1\r\nHost: t\r\nX: " + b"v" * (section - len(base)) + b"\r\n\r\n"


@pytest.mark.parametrize("srv_name, limit", [("small", HEAD), ("default", 65536)])
def test_header_bytes_at_limit_passes_and_one_over_is_431(request, srv_name, limit):
    srv = request.getfixturevalue(srv_name)
    data = head_of(limit)
    assert len(data) - len(b"GET /h HTTP/1.1\r\n") == limit
    reply, _ = exchange(srv, data)
    assert reply.status == 200, reply

    reply, closed = exchange(srv, head_of(limit + 1))
    assert_error(reply, closed, 431)


def fields(n: int) -> bytes:
    """A request with exactly n header fields (Host is one of them)."""
    return b"GET /f HTTP/1.1\r\nHost: t\r\n" + b"".join(b"F%d: x\r\n" % i for i in range(n - 1)) + b"\r\n"


@pytest.mark.parametrize("srv_name, limit", [("small", FIELDS), ("default", 100)])
def test_header_count_at_limit_passes_and_one_over_is_431(request, srv_name, limit):
    srv = request.getfixturevalue(srv_name)
    reply, _ = exchange(srv, fields(limit))
    assert reply.status == 200, reply
    assert reply.json()["headers"] == limit

    reply, closed = exchange(srv, fields(limit + 1))
    assert_error(reply, closed, 431)


# --------------------------------------------------------------------------- body: 413


def post(length: int, body: bytes = None, extra: bytes = b"") -> bytes:
    head = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n" % length + extra + b"\r\n"
    return head + (b"b" * length if body is None else body)


@pytest.mark.parametrize("srv_name, limit", [("small", BODY), ("default", 1 << 20)])
def test_content_length_at_limit_passes(request, srv_name, limit):
    srv = request.getfixturevalue(srv_name)
    reply, _ = exchange(srv, post(limit))
    assert reply.status == 200, reply
    assert reply.json() == {"length": limit}


@pytest.mark.parametrize("srv_name, limit", [("small", BODY), ("default", 1 << 20)])
def test_content_length_over_limit_is_413_before_the_body_is_sent(request, srv_name, limit):
    """Only the head is sent: the 413 arrives anyway, so the server did not wait for
    (or read) the body. Then the connection is closed."""
    srv = request.getfixturevalue(srv_name)
    reply, closed = exchange(srv, post(limit + 1, body=b""))
    assert_error(reply, closed, 413)


def test_content_length_over_limit_with_expect_100_gets_413_not_100(small):
    with small.raw() as conn:
        conn.send(post(BODY + 1, body=b"", extra=b"Expect: 100-continue\r\n"))
        reply = conn.read_reply()
        assert reply.status == 413, reply
        assert recv_until_close(conn.sock, 5)[0] == b""


def chunked(sizes, end: bool = True) -> bytes:
    data = b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    for n in sizes:
        data += b"%x\r\n" % n + b"c" * n + b"\r\n"
    return data + (b"0\r\n\r\n" if end else b"")


def test_chunked_total_at_limit_passes(small):
    reply, _ = exchange(small, chunked([40, BODY - 40]))
    assert reply.status == 200, reply
    assert reply.json() == {"length": BODY}


def test_chunked_running_total_over_limit_is_413(small):
    """The chunks add up past max_body: 413 as soon as they do, without the last chunk."""
    reply, closed = exchange(small, chunked([40, BODY - 40 + 1], end=False))
    assert_error(reply, closed, 413)


def test_chunked_single_chunk_size_over_limit_is_413(small):
    """A chunk-size line alone announcing more than max_body is enough."""
    data = b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % (BODY * 100)
    reply, closed = exchange(small, data)
    assert_error(reply, closed, 413)


# --------------------------------------------------------------------------- error delivery


def test_error_response_is_delivered_while_the_client_keeps_sending(small):
    """The client announces a huge body and keeps sending it. The server answers 413,
    stops reading, half-closes and drains: the client reads the whole 413 (a close with
    unread input would reset the connection and could destroy the answer)."""
    sock = connect(small)
    sent = [0]

    def pump():
        chunk = b"z" * 65536
        try:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n")
            for _ in range(64):  # 4 MiB at most
                sock.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        data, how = recv_until_close(sock, 10)
    finally:
        t.join(15)
        sock.close()
    assert data.startswith(b"HTTP/1.1 413 "), (data[:200], how)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    length = int([h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0])
    assert len(body) == length, "the 413 body was cut short"


def test_error_after_a_large_malformed_upload_is_delivered(small):
    """A malformed head followed at once by lots of bytes: still a complete 400."""
    junk = b"GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n" + b"j" * 200_000
    sock = connect(small)
    try:
        t = threading.Thread(target=lambda: _sendall_quiet(sock, junk), daemon=True)
        t.start()
        data, how = recv_until_close(sock, 10)
        t.join(15)
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.1 400 "), (data[:200], how)


def test_after_an_error_the_server_half_closes_and_drains(small):
    """After the 400 the client sees EOF (the server shut its side), yet what the client
    still sends is read and discarded, not answered with a reset: the server half-closed
    and drains, it did not close outright."""
    sock = connect(small)
    try:
        sock.sendall(b"GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n")
        data, how = recv_until_close(sock, 10)
        assert data.startswith(b"HTTP/1.1 400 ") and how == "eof", (data, how)
        for _ in range(3):
            sock.sendall(b"x" * 10000)  # a closed socket answers with RST: the next send fails
            time.sleep(0.05)
        sock.settimeout(0)
        try:
            assert sock.recv(1) == b""
        except BlockingIOError:
            pass
    finally:
        sock.close()


def _sendall_quiet(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass


@pytest.mark.parametrize("bad", [
    b"GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n",                     # 400: control in target
    b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1, 2\r\n\r\n",  # 400: bad Content-Length
    b"GET / HTTP/2.0\r\nHost: t\r\n\r\n",                         # 505
    b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: t\r\n\r\n",       # 414
    post(BODY + 1),                                               # 413 with the body sent
], ids=["400", "400-cl", "505", "414", "413"])
def test_pipelined_requests_after_a_bad_one_are_never_served(small, bad):
    """Good request, bad request, then requests that would have a visible effect:
    exactly two responses come back, and the handler behind the bad one never ran."""
    tag = f"after-{time.monotonic_ns()}"
    good = get("/hello")
    after = get(f"/slow?secs=0&tag={tag}") + get("/hello")
    with small.raw() as conn:
        conn.send(good + bad + after)
        first = conn.read_reply()
        assert first.status == 200, first
        second = conn.read_reply()
        assert 400 <= second.status < 600 and second.status != 404, second
        assert second.header("Connection", "").lower() == "close"
        rest, how = recv_until_close(conn.sock, 5)
        assert rest == b"" and not conn.buf, f"served after a bad request: {bytes(conn.buf) + rest!r}"
        assert how in ("eof", "reset")
    # The server is fine and /slow does record its tag when it is reached properly.
    probe = f"probe-{time.monotonic_ns()}"
    assert small.get(f"/slow?secs=0&tag={probe}").status == 200
    events = small.events.read_text()
    assert f"begin:{probe}" in events
    assert tag not in events


# --------------------------------------------------------------------------- response headers


@pytest.mark.parametrize("kind", ["crlf", "lf", "cr", "nul", "name"])
def test_response_header_injection_is_refused(small, kind):
    before = small.stderr().count("control character") + small.stderr().count("invalid response header")
    with small.raw() as conn:
        conn.send(get(f"/inject?kind={kind}"))
        reply = conn.read_reply()
        assert reply.status == 500, reply
        assert not reply.has("X-Injected") and not reply.has("B"), reply.head
        assert b"X-Injected" not in reply.head and b"B: c" not in reply.head
        assert b"should-not-be-sent" not in reply.body
        assert reply.json() == {"detail": "Internal Server Error"}
        # Whatever happens to the connection, nothing else is written on it.
        if reply.header("Connection", "").lower() == "close":
            assert recv_until_close(conn.sock, 5)[0] == b""
        else:
            conn.send(get("/hello"))
            assert conn.read_reply().status == 200
    assert wait_until(lambda: small.stderr().count("control character")
                      + small.stderr().count("invalid response header") > before, 5), \
        "the refused header was not logged\n" + small.tail()


def test_valid_response_header_is_sent(small):
    """The control case of the injection test: the same handler with a clean value."""
    with small.raw() as conn:
        conn.send(get("/inject?kind=ok"))
        reply = conn.read_reply()
    assert reply.status == 200
    assert reply.header("X-Injected") == "fine"
    assert reply.body == b"should-not-be-sent"


# --------------------------------------------------------------------------- connections


def test_max_connections_extra_connection_waits_until_one_closes(hardened):
    """With max_connections=2 and two open keep-alive connections, a third connection is
    accepted by the kernel (backlog) but not served; closing one lets it through."""
    srv = hardened(workers=2, max_connections=2, keepalive_timeout=30)
    a, b = srv.raw(), srv.raw()
    try:
        for conn in (a, b):
            conn.send(get("/hello"))
            assert conn.read_reply().status == 200
        c = srv.raw(timeout=10)
        try:
            c.send(get("/hello"))
            c.sock.settimeout(1.0)
            with pytest.raises(socket.timeout):
                c.sock.recv(1)  # not served while two connections are open
            a.close()
            c.sock.settimeout(10)
            reply = c.read_reply()
            assert reply.status == 200, reply
            # b is still served too: the limit holds open connections, not requests.
            b.send(get("/hello"))
            assert b.read_reply().status == 200
        finally:
            c.close()
    finally:
        a.close()
        b.close()


def test_max_requests_per_connection_closes_after_the_last(hardened):
    srv = hardened(workers=2, cli=True, max_requests_per_connection=3)
    with srv.raw() as conn:
        for i in range(3):
            conn.send(get("/hello"))
            reply = conn.read_reply()
            assert reply.status == 200
            closing = reply.header("Connection", "").lower() == "close"
            assert closing == (i == 2), (i, reply.head)
        assert recv_until_close(conn.sock, 5) == (b"", "eof")
    # Pipelined: four requests at once, only three answered.
    with srv.raw() as conn:
        conn.send(get("/hello") * 4)
        statuses = [conn.read_reply().status for _ in range(3)]
        assert statuses == [200, 200, 200]
        rest, how = recv_until_close(conn.sock, 5)
        assert rest == b"" and not conn.buf
        assert how in ("eof", "reset")


# --------------------------------------------------------------------------- output buffering


def rss_bytes(srv) -> int:
    with open(f"/proc/{srv.process.pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1]) * 1024


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="ASan's quarantine keeps freed memory resident: RSS says nothing here")
def test_unread_pipelined_responses_do_not_pile_up_in_memory(hardened):
    """40 pipelined requests (1.6 KB in all) for 1 MB responses, and a client that does
    not read: the server must not build all 40 MB of answers in memory (a tiny request
    would otherwise buy megabytes of server memory). It answers the rest as the client
    reads, all of them, in order."""
    srv = hardened(workers=2)
    n, size = 40, 1_000_000
    base = rss_bytes(srv)
    with srv.raw(timeout=30) as conn:
        conn.send(get(f"/big?n={size}") * n)
        peak = base
        end = time.monotonic() + 2.0  # an observation window, not a timing assertion
        while time.monotonic() < end:
            peak = max(peak, rss_bytes(srv))
            time.sleep(0.05)
        for _ in range(n):
            reply = conn.read_reply()
            assert reply.status == 200 and len(reply.body) == size
    growth = peak - base
    assert growth < 16 * 1024 * 1024, \
        f"server RSS grew by {growth / 2**20:.0f} MiB for {n} unread pipelined responses of {size} bytes"


# --------------------------------------------------------------------------- trickling clients


def heads_parsed(srv) -> int:
    return srv.get("/stats/heads").json()["heads_parsed"]


def trickle(sock: socket.socket, data: bytes, pause: float = 0.0005) -> None:
    """Sends data a byte per send(), with a pause, on a socket from connect() (which
    sets TCP_NODELAY), so that the server sees (nearly) one read per byte."""
    for i in range(len(data)):
        sock.sendall(data[i:i + 1])
        time.sleep(pause)


@pytest.mark.parametrize("what", ["head", "body", "chunked body"])
def test_a_request_sent_a_byte_at_a_time_is_not_reparsed_on_every_read(default, what):
    """Before, every read re-parsed the whole buffered head (and, while a body arrived,
    parsed it twice), so a client trickling a 64 KB head or a 1 MB body held a worker's
    core: work grew with the square of the request. Now a head is parsed again only when
    its end has arrived or the buffer has doubled, and a body read parses nothing, so
    1,500 one-byte reads cost a handful of parses, not 1,500 or 3,000."""
    pad = b"X-Pad: " + b"p" * 1400 + b"\r\n"
    if what == "head":
        slow = b"GET /hello HTTP/1.1\r\nHost: t\r\n" + pad + b"\r\n"
        fast = b""
    elif what == "body":
        body = b"b" * 1500
        fast = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1500\r\n" + pad + b"\r\n"
        slow = body
    else:
        fast = b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n" + pad + b"\r\n"
        slow = b"5dc\r\n" + b"b" * 1500 + b"\r\n0\r\n\r\n"
    before = heads_parsed(default)
    with connect(default) as sock:
        if fast:
            sock.sendall(fast)
        trickle(sock, slow)
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
    parses = heads_parsed(default) - before - 1  # the /stats/heads request itself
    assert 1 <= parses <= 30, parses
