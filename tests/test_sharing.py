"""Objects user code shares between threads, while the server sends them.

A Response is an ordinary mutable Python object: a module-level one may be
returned by one route while another route rewrites it; a header value's
__str__ may change the Response it belongs to; a Request may be kept and read
by other handlers. The engine must answer each request with one consistent
state of every field (or a 500), never crash, never send freed memory
(src/_karak/response.h and docs/ARCHITECTURE.md, "Objects user code can reach").

Before the fix, /shared under /mutate crashed the server (SIGSEGV, a double
free) within seconds, /evil/clear-list crashed it, and /evil/replace-body sent
freed bytes as the body and the Content-Type.
"""
import re
import sys
import threading
from pathlib import Path

import pytest

from conftest import IO_TIMEOUT

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))
import sharing_app  # noqa: E402

APP = "sharing_app:app"
READERS, READS = 4, 1000
MUTATORS, MUTATIONS = 2, 200  # each /mutate call rewrites SHARED 50 times


@pytest.fixture
def srv(server_pool):
    return server_pool.get(APP, workers=4)


def ask(conn, path: str):
    """One GET on a kept connection; its reply."""
    conn.send(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    return conn.read_reply()


def ask_fresh(srv, path: str):
    """One GET on a new connection; its reply."""
    with srv.raw(IO_TIMEOUT) as conn:
        return ask(conn, path)


def run_threads(targets):
    errors = []

    def wrap(fn):
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "client threads did not finish"
    if errors:
        raise errors[0]


TYPE_RE = re.compile(r"text/x-([A-Z]); n=(\d+)")


def test_a_shared_response_rewritten_by_another_route_is_always_sent_whole(srv):
    states = sharing_app.STATES
    bodies = {b for b, _ in states}
    types = {t for _, t in states}
    seen = []  # list.append is atomic on every build; `n += 1` from threads is not

    def reader():
        with srv.raw(IO_TIMEOUT) as conn:
            for _ in range(READS):
                reply = ask(conn, "/shared")
                assert reply.status in (200, 201), reply
                assert reply.body in bodies, (len(reply.body), reply.body[:40])
                ctype = reply.header("content-type")
                assert ctype in types, ctype
                assert len(reply.header_all("x-state")) == 1, reply.headers
                seen.append(1)

    def mutator():
        with srv.raw(IO_TIMEOUT) as conn:
            for _ in range(MUTATIONS):
                assert ask(conn, "/mutate").status == 200

    run_threads([reader] * READERS + [mutator] * MUTATORS)
    assert len(seen) == READERS * READS
    assert srv.alive()


def test_a_header_list_rewritten_in_place_while_it_is_sent(srv):
    def reader():
        with srv.raw(IO_TIMEOUT) as conn:
            for _ in range(READS):
                reply = ask(conn, "/pairs")
                assert reply.status == 200, reply
                assert reply.body == b"pairs"
                names = [k.lower() for k, _ in reply.headers]
                # Some state of the list: at most the three names it ever holds, each once.
                assert set(names) - {"date", "content-type", "content-length"} <= {"x-a", "x-b", "x-c"}
                for n in ("x-a", "x-b", "x-c"):
                    assert names.count(n) <= 1, reply.headers

    def mutator():
        with srv.raw(IO_TIMEOUT) as conn:
            for _ in range(MUTATIONS):
                assert ask(conn, "/pairs/mutate").status == 200

    run_threads([reader] * READERS + [mutator] * MUTATORS)
    assert srv.alive()


def test_a_header_value_whose_str_clears_the_header_list(srv):
    for _ in range(50):
        reply = ask_fresh(srv, "/evil/clear-list")
        assert reply.status == 200, reply
        assert reply.body == b"list"
        # The list as it was when the answer began: every pair, in order.
        assert [(k, v) for k, v in reply.headers if k.startswith("x-")] == [
            ("x-before", "b"), ("x-evil", "cleared"), ("x-after", "a")]
    assert srv.alive()


def test_a_header_value_whose_str_replaces_body_and_media_type(srv):
    for _ in range(50):
        reply = ask_fresh(srv, "/evil/replace-body")
        assert reply.status == 200, reply
        # The Response as it was when the answer began: the old body and type, whole.
        assert reply.body == sharing_app.OLD_BODY, reply.body[:40]
        assert reply.header("content-type") == sharing_app.OLD_TYPE
        assert reply.header("x-evil") == "replaced"
    assert srv.alive()


def test_a_header_value_whose_str_raises_gives_500(srv):
    reply = srv.get("/evil/raises")
    assert reply.status == 500
    assert reply.json() == {"detail": "Internal Server Error"}
    assert "no str for you" in srv.stderr()


def test_a_request_kept_and_read_by_other_handlers_at_once(srv):
    keep = srv.request("POST", "/request/keep?q=kept", json={"k": [1, 2, 3]},
                       headers={"x-probe": "p1", "Cookie": "c=cookie"})
    assert keep.status == 200
    want = {"method": "POST", "path": "/request/keep", "query": ["kept"], "headers": "p1",
            "cookies": "cookie", "json": {"k": [1, 2, 3]}, "qs": "q=kept"}

    def reader():
        with srv.raw(IO_TIMEOUT) as conn:
            for _ in range(READS):
                reply = ask(conn, "/request/read")
                assert reply.status == 200, reply
                assert reply.json() == want

    run_threads([reader] * READERS)
