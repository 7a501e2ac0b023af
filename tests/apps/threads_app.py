"""Routes for tests/test_concurrency.py: parallel CPU work, blocking handlers, many clients.

State shared between requests is keyed by a token the test chooses, so tests do not see
each other's events.
"""
import gc
import sys
import threading
import time

from pydantic import BaseModel

from karak import Karak

app = Karak()

BURN_LOOPS = 6_000_000  # fixed amount of CPU work per /burn request

_lock = threading.Lock()  # guards _state
_state: dict = {}


def _slot(token: str) -> dict:
    with _lock:
        slot = _state.get(token)
        if slot is None:
            slot = _state[token] = {
                "started": threading.Event(),
                "release": threading.Event(),
                "barrier": threading.Barrier(2),
            }
        return slot


@app.get("/gil")
def gil():
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return {"gil_enabled": is_enabled() if is_enabled else True}


@app.get("/burn")
def burn(token: str, n: int = BURN_LOOPS):
    """Waits (5 s at most) for its partner request, then burns CPU; reports its own clocks."""
    try:
        _slot(token)["barrier"].wait(timeout=5)
        synced = True
    except threading.BrokenBarrierError:
        synced = False
    w0, c0 = time.perf_counter(), time.thread_time()
    x = 0
    for i in range(n):
        x += i % 7
    c1, w1 = time.thread_time(), time.perf_counter()
    return {"wall": [w0, w1], "cpu": c1 - c0, "synced": synced, "x": x}


@app.get("/slow")
def slow(token: str):
    """Blocks in time.sleep until /fast?token= has run (5 s at most); says whether it did."""
    slot = _slot(token)
    slot["started"].set()
    deadline = time.monotonic() + 5
    while not slot["release"].is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"released": slot["release"].is_set()}


@app.get("/fast")
def fast(token: str = ""):
    """Answers at once; with a token, releases that token's /slow if it is running."""
    running = False
    if token:
        slot = _slot(token)
        running = slot["started"].is_set()
        if running:
            slot["release"].set()
    return {"slow_running": running}


@app.get("/echo")
def echo(i: int, c: int):
    return {"i": i, "c": c}


class Note(BaseModel):
    i: int
    c: int
    text: str


@app.post("/note")
def note(body: Note) -> Note:
    return Note(i=body.i, c=body.c, text=body.text[::-1])


@app.get("/gc")
def collect():
    """A full collection: on a free-threaded build it stops the world, so it only returns if
    every other worker thread is detached (waiting for I/O) or reaches a safe point."""
    return {"collected": gc.collect()}
