"""Deferred writes (conn.c): a worker keeps the answers it makes and writes them back to
back when no other connection is ready, so that one wake-up of the clients covers several
answers. These tests hold the server's only worker in a handler (tests/apps/defer_app.py)
to choose exactly which requests wait in the kernel when it comes back, and check that no
answer is lost, mixed up, or kept waiting behind a slow handler."""
import select
import socket
import struct
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import wait_until

BIG = b"0123456789abcdef" * (64 * 1024)


@pytest.fixture
def srv(server_pool):
    return server_pool.get("defer_app:app", workers=1)


def request(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


def hold_worker(srv, tmp_path: Path):
    """Sends /wait on a new connection and returns (connection, release file) once the
    handler runs: the server's only worker is then busy until the file exists."""
    gate = tmp_path / uuid.uuid4().hex
    conn = srv.raw()
    conn.send(request(f"/wait?path={gate}"))
    assert wait_until(lambda: Path(str(gate) + ".started").exists()), "handler never started"
    return conn, gate


def check_answers_go_out_before(srv, tmp_path, blocking: str) -> None:
    """Holds the worker in C's handler while A (/fast) and B (`blocking`, a target that
    waits for the file `path`) wait in the kernel, A's first; then releases C. The worker
    answers C, then A (both deferred), then reaches B: C's and A's answers must go out
    before B's handler runs, because B's handler only returns once this test has read
    A's answer (else it gives up after 10 s and says released false)."""
    c, gate_c = hold_worker(srv, tmp_path)
    gate_b = tmp_path / "b"
    with srv.raw() as a, srv.raw() as b:
        a.send(request("/fast?i=7"))
        b.send(request(blocking.format(path=gate_b)))
        gate_c.touch()
        ra = a.read_reply()
        assert (ra.status, ra.json()) == (200, {"fast": 7})
        rc = c.read_reply()
        assert (rc.status, rc.json()) == (200, {"released": True})
        gate_b.touch()
        rb = b.read_reply()
        assert (rb.status, rb.json()) == (200, {"released": True})
    c.close()


def test_answers_made_before_a_slow_handler_are_written_before_it_runs(srv, tmp_path):
    # /wait becomes "slow" for the server (its last call took 2 ms).
    warm = srv.get(f"/wait?path={tmp_path / 'warm'}&hold=false")
    assert warm.status == 200
    check_answers_go_out_before(srv, tmp_path, "/wait?path={path}")


HISTORIES = {  # route -> the calls it has had before the test's blocking one
    "/sometimes0": [],
    "/sometimes1": [""],
    "/sometimes2": [""] * 5,
    "/sometimes3": [""] * 40 + ["?nap=true"] + [""] * 5,  # blocked 5 calls ago
}


@pytest.mark.parametrize("route", sorted(HISTORIES))
def test_answers_do_not_wait_for_a_handler_that_was_fast_only_lately(srv, tmp_path, route):
    # /sometimesN returns at once unless asked to hold (or nap 2 ms): when it is new, has
    # made few fast calls, or few since it last blocked, the server must not bet that the
    # next call is fast too. Each case has a route of its own (the hint is per route).
    for query in HISTORIES[route]:
        assert srv.get(route + query).status == 200
    check_answers_go_out_before(srv, tmp_path, route + "?path={path}&hold=true")


def test_answers_waiting_behind_a_held_worker_all_reach_their_own_clients(srv, tmp_path):
    # Requests for 24 connections, 3 pipelined on each, pile up while the worker is held;
    # released, it answers them in batches.
    c, gate = hold_worker(srv, tmp_path)
    conns = [srv.raw() for _ in range(24)]
    try:
        for k, conn in enumerate(conns):
            conn.send(b"".join(request(f"/echo?i={i}&c={k}") for i in range(3)))
        gate.touch()
        for k, conn in enumerate(conns):
            for i in range(3):
                r = conn.read_reply()
                assert (r.status, r.json()) == (200, {"i": i, "c": k})
        assert c.read_reply().json() == {"released": True}
    finally:
        for conn in conns:
            conn.close()
        c.close()


def test_connection_close_and_large_answers_among_deferred_ones(srv, tmp_path):
    c, gate = hold_worker(srv, tmp_path)
    small, closing, big = srv.raw(), srv.raw(), srv.raw()
    try:
        small.send(request("/fast?i=1"))
        closing.send(request("/fast?i=2", "Connection: close\r\n"))
        big.send(request("/big") + request("/fast?i=3"))
        gate.touch()
        assert small.read_reply().json() == {"fast": 1}
        r = closing.read_reply()
        assert r.json() == {"fast": 2} and r.header("Connection") == "close"
        assert closing.closed_by_server()
        rb = big.read_reply()
        assert rb.status == 200 and rb.body == BIG
        assert big.read_reply().json() == {"fast": 3}
        assert c.read_reply().json() == {"released": True}
    finally:
        for conn in (small, closing, big, c):
            conn.close()


def test_one_worker_serves_many_keep_alive_clients_each_its_own_answers(srv):
    clients, per_client = 32, 150
    start = threading.Barrier(clients)

    def client(k: int) -> int:
        conn = srv.connection(timeout=30)
        try:
            start.wait()
            for i in range(per_client):
                r = srv.send(conn, "GET", f"/echo?i={i}&c={k}")
                assert (r.status, r.json()) == (200, {"i": i, "c": k})
            return per_client
        finally:
            conn.close()

    with ThreadPoolExecutor(clients) as pool:
        assert sum(pool.map(client, range(clients))) == clients * per_client


def test_100_continue_comes_after_the_answers_to_earlier_pipelined_requests(srv):
    body = b'{"text": "abc"}'
    post = (b"POST /note HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
    with srv.raw() as conn:
        conn.send(request("/fast?i=1") + request("/fast?i=2") + post)
        for i in (1, 2):
            r = conn.read_reply()
            assert (r.status, r.json()) == (200, {"fast": i})
        assert conn.read_reply().status == 100
        conn.send(body)
        r = conn.read_reply()
        assert (r.status, r.json()) == (200, {"text": "ABC"})


def test_a_connection_reset_while_its_answer_waits_is_closed_once(srv, tmp_path):
    # While the worker is held, A sends a complete request and 58 kB of a second one's
    # head, 70 kB in all, then resets (RST). Back, the worker reads A's first 64 kB (its
    # read size), answers the first request and keeps the answer in its batch. A is still
    # readable (the rest, then the reset), and with one worker its registration is
    # level-triggered, so epoll reports A again. The worker must leave A alone until the
    # batch is written: serving A then would meet the reset, close and free A, and
    # writing the batch would use the freed connection (ASan sees it, `make test-asan`).
    c, gate_c = hold_worker(srv, tmp_path)
    a = srv.raw()
    a.send(request("/fast?i=1", f"X-Pad: {'p' * 10_000}\r\n")
           + f"GET /fast?i=2 HTTP/1.1\r\nHost: t\r\nX-Pad: {'q' * 58_000}\r\n".encode())
    a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    a.close()  # RST
    gate_c.touch()
    assert c.read_reply().json() == {"released": True}
    c.close()
    assert wait_until(lambda: srv.get("/fast?i=3").json() == {"fast": 3})
    assert srv.alive()


def test_one_worker_serves_the_clients_of_a_slow_handler_in_turn(srv, tmp_path):
    # Six clients, each sending its next request as soon as it has its answer, to a
    # handler that takes 10 ms: each must be served once per round, as a queue would.
    # A lone worker used to take every ready event at once and write the last answer of
    # a batch only after polling for the next batch: that client missed the next round,
    # and one or two clients were served 10 turns apart while the others were 5 apart.
    n, rounds = 6, 8
    c, gate = hold_worker(srv, tmp_path)
    conns = [srv.raw() for _ in range(n)]
    try:
        for k, conn in enumerate(conns):
            conn.send(request(f"/turn?k={k}"))
        gate.touch()
        assert c.read_reply().json() == {"released": True}
        seqs = {k: [] for k in range(n)}
        active = set(range(n))
        while active:
            ready, _, _ = select.select([conns[k].sock for k in active], [], [], 10)
            assert ready, f"no answer for 10 s; served so far: {seqs}"
            for k in [k for k in active if conns[k].sock in ready]:
                r = conns[k].read_reply()
                assert r.status == 200 and r.json()["k"] == k
                seqs[k].append(r.json()["seq"])
                if len(seqs[k]) < rounds:
                    conns[k].send(request(f"/turn?k={k}"))
                else:
                    active.discard(k)
        gaps = {k: [b - a for a, b in zip(s, s[1:])] for k, s in seqs.items()}
        assert all(g == n for gs in gaps.values() for g in gs), f"turns apart, per client: {gaps}"
    finally:
        for conn in conns:
            conn.close()
        c.close()
