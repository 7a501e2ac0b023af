"""Routes for tests/test_deferred_writes.py, served by ONE worker.

A worker keeps the answers it makes and writes them together when no other connection is
ready (conn.c, "Deferred writes"). These routes let a test hold that worker inside a handler
until the test says so: /wait blocks until a file the test names exists (the test process
and the server share nothing else), so the test decides, without timing, which requests
are waiting in the kernel when the worker comes back.
"""
import itertools
import os
import time

from pydantic import BaseModel

from karak import Karak, Response

app = Karak()
#: One thread, for ever (tests/serve.py): the tests hold THE worker in a handler, and
#: with spares (the elastic pool) another thread would take its place in the loop.
RUN_OPTIONS = {"max_workers": 1}

BIG = b"0123456789abcdef" * (64 * 1024)  # 1 MiB, larger than a deferred batch may be


def wait_for(path: str) -> dict:
    """Creates `path`.started, then waits up to 10 s for `path` to exist."""
    with open(path + ".started", "w"):
        pass
    deadline = time.monotonic() + 10
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.002)
    return {"released": os.path.exists(path)}


@app.get("/wait")
def wait(path: str, hold: bool = True):
    """(hold) waits for `path` as wait_for does; without hold it sleeps 2 ms instead,
    which is enough for the server to call this route slow."""
    return wait_for(path) if hold else sometimes(nap=True)


def sometimes(path: str = "", hold: bool = False, nap: bool = False):
    """Usually fast (returns at once); with hold it waits for `path` as wait_for does,
    with nap it sleeps 2 ms: a handler that is fast most of the time and sometimes
    blocks (a cache miss)."""
    if nap:
        time.sleep(0.002)
    if not hold:
        return {"released": False}
    return wait_for(path)


# /sometimes0 ... /sometimes7: the same handler on separate routes, so that each test
# case starts with a route the server has never run (the fast-call hint is per route).
for _n in range(8):
    app.get(f"/sometimes{_n}")(sometimes)


_turns = itertools.count()  # one worker serves this app: the count is the order of service


@app.get("/turn")
def turn(k: int):
    """Sleeps 10 ms (a slow call), then says which turn of service this request had."""
    time.sleep(0.01)
    return {"k": k, "seq": next(_turns)}


@app.get("/fast")
def fast(i: int = 0):
    return {"fast": i}


@app.get("/echo")
def echo(i: int, c: int):
    return {"i": i, "c": c}


@app.get("/big")
def big() -> Response:
    return Response(BIG, media_type="application/octet-stream")


class Note(BaseModel):
    text: str


@app.post("/note")
def note(body: Note) -> Note:
    return Note(text=body.text.upper())
