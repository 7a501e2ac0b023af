"""App for tests/test_lifecycle.py: on_startup/on_shutdown and graceful stop.

Every event is appended to the file named by $KARAK_TEST_EVENTS, one per line.
"""
import os
import time

from karak import Karak

app = Karak()

EVENTS = os.environ.get("KARAK_TEST_EVENTS", os.devnull)
STARTED = False


def record(event: str) -> None:
    with open(EVENTS, "a") as f:
        f.write(event + "\n")


@app.on_startup
def startup() -> None:
    global STARTED
    STARTED = True
    record("startup")


@app.on_shutdown
def shutdown() -> None:
    record("shutdown")


@app.get("/ping")
def ping():
    return {"started": STARTED}


@app.get("/slow")
def slow():
    """Records begin, then blocks until the file $KARAK_TEST_EVENTS.go exists (10 s at most)."""
    record("begin")
    deadline = time.monotonic() + 10
    while not os.path.exists(EVENTS + ".go") and time.monotonic() < deadline:
        time.sleep(0.01)
    record("end")
    return {"done": True}
