"""Timeouts against a live server: the header timeout covers the whole head (slowloris),
the body timeout is an idle timeout, the keep-alive timeout closes idle connections,
and other clients are served meanwhile.

Servers use timeouts of about a second. Assertions are about behaviour (closed or not,
served or not); the clients pace themselves well inside or well outside the timeouts.
"""
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))
from hardening_launch import connect, get, launch, recv_until_close  # noqa: E402

HEADER_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def timed(tmp_path_factory):
    """One server with every timeout at 1 s, for the cases that only wait for a close."""
    srv = launch(tmp_path_factory.mktemp("timeouts"), workers=2, header_timeout=HEADER_TIMEOUT,
                 body_timeout=1.0, keepalive_timeout=1.0)
    yield srv
    assert srv.stop() == 0, srv.tail()


def peer_closed(sock: socket.socket) -> bool:
    """Non-blocking: has the server closed (EOF or reset)? Raises if it sent bytes."""
    timeout = sock.gettimeout()
    sock.settimeout(0)  # with a timeout set, recv would first wait for readability
    try:
        data = sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        sock.settimeout(timeout)
    if data and not data.startswith(b"HTTP/1.1 408 "):
        raise AssertionError(f"unexpected bytes on a timed-out connection: {data[:200]!r}")
    return True


def trickle(sock: socket.socket, data: bytes, interval: float, stop: threading.Event) -> int:
    """Sends data one byte every `interval` seconds until the server closes the connection.
    Returns the number of bytes sent before the close was seen (len(data) if never closed)."""
    for i in range(len(data)):
        if stop.is_set():
            return i
        if peer_closed(sock):
            return i
        try:
            sock.send(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return i
        time.sleep(interval)
    return len(data)


def serve_loop(srv, stop: threading.Event, results: list) -> None:
    """Another client, served all along: keep-alive requests until stop."""
    conn = srv.raw()
    try:
        while not stop.is_set():
            conn.send(get("/hello"))
            results.append(conn.read_reply().status)
            time.sleep(0.02)
    except Exception as e:  # recorded; the test fails on it
        results.append(repr(e))
    finally:
        conn.close()


@pytest.mark.parametrize("warm", [False, True], ids=["first-request", "after-a-keepalive-request"])
def test_slowloris_head_is_cut_off_while_others_are_served(timed, warm):
    """One header byte every 0.2 s: each byte arrives well within the 1 s header timeout,
    so a timer reset by each byte would never fire. The whole head would take 24 s; the
    server closes the connection long before it is complete, and a second client is
    served all the while. warm: the slow head is the second request of a keep-alive
    connection (the timer starts again at its first byte, not at the previous request)."""
    srv = timed
    head = b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"s" * 80 + b"\r\n\r\n"
    stop = threading.Event()
    statuses: list = []
    other = threading.Thread(target=serve_loop, args=(srv, stop, statuses))
    other.start()
    sock = connect(srv)
    try:
        if warm:
            sock.sendall(get("/hello"))
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        start = time.monotonic()
        sent = trickle(sock, head, 0.2, stop)
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        other.join(15)
        sock.close()
    assert sent < len(head), "the server let a slowloris client finish a 24 s head"
    # Not a timing assertion: a sanity check that the cut-off was the header timeout at
    # work and not something instant (e.g. a refused connection).
    assert sent >= 2, f"closed after {sent} bytes ({elapsed:.2f}s)"
    assert statuses and all(s == 200 for s in statuses), statuses[-5:]
    assert len(statuses) >= 5, statuses


STALLED = {
    # name: bytes sent, then nothing more
    "nothing sent": b"",
    "partial request line": b"GET /hel",
    "partial head": b"GET /hello HTTP/1.1\r\nHo",
    "head without its final CRLF": b"GET /hello HTTP/1.1\r\nHost: t\r\n",
    "Content-Length body stalled": b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789",
    "Content-Length body never started": b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n",
    "chunked body stalled in a chunk": b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    "chunked body stalled before the last chunk":
        b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
}


def test_stalled_connections_are_closed_without_a_response(timed):
    """Every kind of stalled connection at once: each is closed by the server (header
    or body timeout), without a response, and the server still serves."""
    socks = {}
    for name, data in STALLED.items():
        socks[name] = connect(timed)
        if data:
            socks[name].sendall(data)
    try:
        outcome = {name: recv_until_close(s, 10) for name, s in socks.items()}
    finally:
        for s in socks.values():
            s.close()
    for name, (data, how) in outcome.items():
        assert how in ("eof", "reset"), f"{name}: still open ({how})"
        assert data == b"" or data.startswith(b"HTTP/1.1 408 "), f"{name}: {data!r}"
    assert timed.get("/hello").status == 200


def test_idle_keepalive_connection_is_closed(timed):
    with timed.raw() as conn:
        conn.send(get("/hello"))
        assert conn.read_reply().status == 200
        assert recv_until_close(conn.sock, 10) in ((b"", "eof"), (b"", "reset"))
    assert timed.get("/hello").status == 200


def test_keepalive_connection_that_stays_busy_is_kept(timed):
    """The keep-alive timeout is idle time: a client making a request every 0.2 s over
    several keep-alive timeouts keeps its connection."""
    srv = timed
    with srv.raw() as conn:
        end = time.monotonic() + 2.2
        n = 0
        while time.monotonic() < end:
            conn.send(get("/hello"))
            reply = conn.read_reply()
            assert reply.status == 200
            assert reply.header("Connection", "").lower() != "close"
            n += 1
            time.sleep(0.2)
        assert n >= 5


def test_body_timeout_is_idle_time_not_total(timed):
    """A body trickled one byte every 0.25 s for 2 s (two body timeouts in total, but
    never idle for one) is accepted; contrast with the header timeout above."""
    srv = timed
    body = b"01234567"
    sock = connect(srv)
    try:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body))
        stop = threading.Event()
        sent = trickle(sock, body, 0.25, stop)
        assert sent == len(body), f"the server cut off a body that was never idle after {sent} bytes"
        sock.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.1 200 "), data
    assert data.endswith(b'{"length":8}'), data


def test_many_slow_clients_do_not_starve_others(timed):
    """Twenty slowloris connections (more than the workers) hold no worker: a fresh
    client is served while they trickle, and all twenty are cut off."""
    srv = timed
    head = b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"s" * 80 + b"\r\n\r\n"
    stop = threading.Event()
    sent = [None] * 20
    socks = [connect(srv) for _ in range(20)]

    def run(i):
        sent[i] = trickle(socks[i], head, 0.2, stop)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    try:
        for _ in range(20):
            assert srv.get("/hello").status == 200
    finally:
        for t in threads:
            t.join(30)
        stop.set()
        for s in socks:
            s.close()
    assert all(s is not None and s < len(head) for s in sent), sent
