"""The elastic pool (docs/ARCHITECTURE.md, "Threads"): handlers that block
never starve the server. Behaviour only: requests complete, handlers start or
have not started, threads come and go; never how fast.

Before the pool, with the default workers (one per CPU), a handler that blocks
held a worker: 100 requests waiting on a 100-party barrier never completed (two
workers, two of them inside the handler), and two calls of a handler that
never returns stopped every other route.
"""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import HOST, STARTUP_DEADLINE, Server, ServerStartError, free_port, wait_until

APPS = Path(__file__).resolve().parent / "apps"


def launch(tmp_path: Path, workers: int = 2, **options) -> Server:
    """pool_app under app.run (so the pool's monitor runs), with options."""
    port = free_port()
    events = tmp_path / f"events-{port}.txt"
    events.touch()
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join([str(APPS)] + [
        os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1", POOL_EVENTS=str(events))
    out, err = tmp_path / f"pool-{port}.stdout", tmp_path / f"pool-{port}.stderr"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([sys.executable, str(APPS / "pool_app.py"), str(port), str(workers),
                                 json.dumps(options)], stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                cwd=tmp_path, env=env, start_new_session=True)
    srv = Server("pool_app:app", workers, HOST, port, proc, out, err)
    srv.events = events
    if not wait_until(lambda: proc.poll() is not None or "Karak serving on" in srv.stderr(),
                      STARTUP_DEADLINE) or proc.poll() is not None:
        proc.kill()
        raise ServerStartError(srv.tail())
    return srv


@pytest.fixture
def servers():
    started = []
    yield started
    for srv in started:
        srv.stop()


def entered(srv, tag_prefix: str) -> int:
    return sum(1 for line in srv.events.read_text().splitlines()
               if line.startswith("enter " + tag_prefix))


def stats(srv) -> dict:
    return srv.get("/stats").json()


def concurrently(srv, paths: list) -> list:
    """Each path on its own connection, all at once; the replies, in order."""
    replies = [None] * len(paths)

    def one(i, path):
        conn = srv.connection(timeout=120)
        try:
            replies[i] = srv.send(conn, "GET", path)
        except Exception as e:  # noqa: BLE001 - the assertion below shows it
            replies[i] = e
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(paths)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not any(t.is_alive() for t in threads), "requests still waiting after 180 s"
    return replies


def test_100_requests_on_a_100_party_barrier_all_complete_with_default_settings(tmp_path, servers):
    """Default workers and max_workers (128): a hundred handlers must be blocked at
    once for any of them to return. Afterwards the threads return to `workers`."""
    srv = launch(tmp_path, workers=2, worker_idle_timeout=0.5)  # only the idle exit shortened
    servers.append(srv)
    before = stats(srv)
    assert before["threads"] == 2 and before["max_workers"] == 128, before
    replies = concurrently(srv, [f"/barrier?parties=100&tag=b{i}" for i in range(100)])
    for r in replies:
        assert not isinstance(r, Exception), r
        assert r.status == 200, r
        assert r.json()["broken"] is False, r
    assert sorted(r.json()["index"] for r in replies) == list(range(100))
    assert stats(srv)["spawned"] >= 98  # a thread for every blocked handler
    # The spares park when their handlers return, and leave after the idle timeout.
    assert wait_until(lambda: stats(srv)["threads"] == 2, 30), stats(srv)
    assert srv.stop() == 0, srv.tail()


def test_at_max_workers_requests_queue_and_all_complete(tmp_path, servers):
    """max_workers=8: 24 requests on an 8-party barrier run 8 at a time, in turn."""
    srv = launch(tmp_path, workers=2, max_workers=8)
    servers.append(srv)
    replies = concurrently(srv, [f"/barrier?parties=8&tag=q{i}" for i in range(24)])
    for r in replies:
        assert not isinstance(r, Exception), r
        assert r.status == 200 and r.json()["broken"] is False, r
    assert stats(srv)["threads"] <= 8
    assert srv.stop() == 0, srv.tail()


def test_at_max_workers_a_ninth_handler_does_not_start(tmp_path, servers):
    """max_workers=8 and a 9-party barrier: 8 handlers block in it and the 9th
    request waits, unstarted, until they give up (a 4 s timeout); then it runs."""
    srv = launch(tmp_path, workers=2, max_workers=8)
    servers.append(srv)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault(
        "replies", concurrently(srv, [f"/barrier?parties=9&tag=n{i}&timeout=4" for i in range(9)])))
    t.start()
    assert wait_until(lambda: entered(srv, "n") == 8, 30), srv.events.read_text()
    # Eight are blocked; the ninth has not started, and does not while they wait.
    assert not wait_until(lambda: entered(srv, "n") > 8, 2.0)
    t.join(60)
    replies = result["replies"]
    assert all(not isinstance(r, Exception) and r.status == 200 for r in replies), replies
    assert sum(r.json()["broken"] for r in replies) == 9  # the barrier never filled
    assert entered(srv, "n") == 9
    assert srv.stop() == 0, srv.tail()


def test_handlers_that_never_return_do_not_stop_other_routes_nor_shutdown(tmp_path, servers):
    """As many never-returning handlers as workers (the whole event loop, before the
    pool): other routes are still answered, and SIGTERM still ends the process
    once graceful_timeout is over."""
    srv = launch(tmp_path, workers=2, graceful_timeout=1)
    servers.append(srv)
    stuck = []
    for _ in range(2):
        conn = srv.connection(timeout=60)
        conn.request("GET", "/forever")
        stuck.append(conn)
    assert wait_until(lambda: entered(srv, "forever") == 2, 30), srv.events.read_text()
    for _ in range(20):
        assert srv.get("/hello").json() == {"hello": "world"}
    assert srv.stop() == 0, srv.tail()
    for conn in stuck:
        conn.close()


def test_without_spares_a_blocked_loop_is_what_max_workers_equal_workers_asks_for(tmp_path, servers):
    """max_workers=workers turns the spares off: the documented way back to one
    thread per worker. One handler waits on a 2-party barrier, holding one of two
    workers; the other still serves."""
    srv = launch(tmp_path, workers=2, max_workers=2)
    servers.append(srv)
    assert stats(srv)["max_workers"] == 2
    result = {}
    t = threading.Thread(target=lambda: result.setdefault(
        "r", concurrently(srv, ["/barrier?parties=2&tag=w0&timeout=30"])))
    t.start()
    assert wait_until(lambda: entered(srv, "w0") == 1, 30)
    assert srv.get("/hello").status == 200
    replies = concurrently(srv, ["/barrier?parties=2&tag=w1&timeout=30"])
    t.join(60)
    assert replies[0].status == 200 and result["r"][0].status == 200
    assert stats(srv)["spawned"] == 0
    assert srv.stop() == 0, srv.tail()
