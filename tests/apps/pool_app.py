"""App for tests/test_pool.py: handlers that block (on a barrier, for ever) so
that the elastic pool must give their loop tokens to other threads.

Served by `python tests/apps/pool_app.py PORT WORKERS '{"max_workers": 8, ...}'`
(app.run, so the pool's monitor runs, as it does for users). Handlers append
"enter <tag>" and "leave <tag>" lines to $POOL_EVENTS, so a test can see which
handlers have started while others are blocked, without asking the server (a
server whose every thread is blocked cannot answer).
"""
import json
import os
import sys
import threading
import time

from karak import Karak

app = Karak()
EVENTS = os.environ.get("POOL_EVENTS", os.devnull)
_barriers: dict = {}
_lock = threading.Lock()


def record(line: str) -> None:
    with _lock, open(EVENTS, "a") as f:
        f.write(line + "\n")


def barrier(parties: int) -> threading.Barrier:
    with _lock:
        b = _barriers.get(parties)
        if b is None:
            b = _barriers[parties] = threading.Barrier(parties)
        return b


@app.get("/barrier")
def wait_on_barrier(parties: int, tag: str = "", timeout: float = 60.0):
    """Waits until `parties` requests are in this handler at once (a blocking
    wait: no CPU), then all return."""
    record(f"enter {tag}")
    try:
        index = barrier(parties).wait(timeout)
        broken = False
    except threading.BrokenBarrierError:
        index, broken = -1, True
    record(f"leave {tag}")
    return {"index": index, "broken": broken}


@app.get("/forever")
def forever():
    record("enter forever")
    while True:
        time.sleep(0.05)


@app.get("/hello")
def hello():
    return {"hello": "world"}


@app.get("/stats")
def stats():
    s = app._server
    return {"threads": s.threads, "spawned": s.spawned, "handoffs": s.handoffs,
            "max_workers": s.max_workers}


if __name__ == "__main__":
    options = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    app.run(host="127.0.0.1", port=int(sys.argv[1]), workers=int(sys.argv[2]), **options)
