"""Threads: parallel CPU work on free-threaded CPython, blocking handlers, idle connections,
and many concurrent clients. The server runs with 2 workers."""
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
needs_free_threading = pytest.mark.skipif(
    not FREE_THREADED, reason="GIL build of CPython: handlers cannot run Python code in parallel"
)


@pytest.fixture
def srv(server_pool):
    return server_pool.get("threads_app:app", workers=2)


# --------------------------------------------------------------------------- free-threading


@needs_free_threading
def test_importing_karak_keeps_the_gil_disabled():
    code = "import sys, karak, karak._karak, pydantic; print(sys._is_gil_enabled())"
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@needs_free_threading
def test_gil_is_disabled_while_serving(srv):
    r = srv.get("/gil")
    assert r.status == 200
    assert r.json() == {"gil_enabled": False}


def burn_pair(srv) -> tuple:
    """Two concurrent /burn requests on two connections; returns their reports."""
    token = uuid.uuid4().hex
    conns = [srv.connection(timeout=30) for _ in range(2)]
    for c in conns:
        c.connect()
    start = threading.Barrier(2)

    def one(conn):
        start.wait()
        return srv.send(conn, "GET", f"/burn?token={token}")

    try:
        with ThreadPoolExecutor(2) as pool:
            replies = list(pool.map(one, conns))
    finally:
        for c in conns:
            c.close()
    for r in replies:
        assert r.status == 200, r
    return tuple(r.json() for r in replies)


def overlap_ratio(a: dict, b: dict) -> float:
    """CPU seconds of two workers per second of the union of their wall intervals."""
    (a0, a1), (b0, b1) = a["wall"], b["wall"]
    assert max(a0, b0) < min(a1, b1), "the two CPU-bound runs did not overlap"
    return (a["cpu"] + b["cpu"]) / (max(a1, b1) - min(a0, b0))


def bare_threads_ratio(loops: int) -> float:
    """The same CPU work in two plain threads of this interpreter: what the machine allows now."""
    start = threading.Barrier(2)

    def work() -> dict:
        start.wait()
        w0, c0 = time.perf_counter(), time.thread_time()
        x = 0
        for i in range(loops):
            x += i % 7
        return {"wall": [w0, time.perf_counter()], "cpu": time.thread_time() - c0}

    with ThreadPoolExecutor(2) as pool:
        a, b = [f.result() for f in [pool.submit(work), pool.submit(work)]]
    return overlap_ratio(a, b)


@needs_free_threading
def test_cpu_bound_handlers_run_in_parallel(srv):
    """Two handlers burning CPU together use more than 1.4 CPU-seconds per wall second.

    Measured inside the server: each handler reports its own thread CPU time and its wall
    interval. Under a GIL the ratio cannot exceed ~1.0. Other load on this 2-core machine
    lowers it, so up to ten attempts are made and the best one counts; between attempts
    the same work runs in two bare threads of this interpreter as a control. If the control
    never exceeds 1.4 either, the machine is too busy to show parallelism and the test is
    skipped with the numbers; if the control does and the server does not, it fails.
    """
    best = control = 0.0
    unsynced = 0
    for _ in range(10):
        a, b = burn_pair(srv)
        if not (a["synced"] and b["synced"]):
            # Seen once in CI: a first worker, started alone, took both connections
            # (fixed in 6871b95; test_worker_start.py fails without the fix). Any other
            # cause is retried here but said below, never silent.
            unsynced += 1
            continue
        best = max(best, overlap_ratio(a, b))
        if best > 1.4:
            break
        control = max(control, bare_threads_ratio(threads_app_loops()))
    assert unsynced < 10, "the two requests were never in their handlers at the same time"
    if unsynced:
        warnings.warn(f"{unsynced} of the attempts did not have both requests in their "
                      "handlers at once (a 5 s rendezvous missed)")
    if best > 1.4:
        return
    if control <= 1.4:
        pytest.skip(f"machine too busy to observe parallelism: server {best:.2f}, bare threads {control:.2f} "
                    "CPU-s per wall-s")
    pytest.fail(f"CPU seconds per wall second with 2 handlers: {best:.2f}, while two bare threads reach "
                f"{control:.2f} (a GIL would give <= 1.0)")


def threads_app_loops() -> int:
    sys.path.insert(0, str(Path(__file__).parent / "apps"))
    try:
        from threads_app import BURN_LOOPS
    finally:
        sys.path.pop(0)
    return BURN_LOOPS


# --------------------------------------------------------------------------- blocking handlers


def test_blocking_handler_holds_only_its_own_worker(srv):
    """While /slow sleeps (in time.sleep, until released), /fast on another connection is served.

    /slow only returns released=True if /fast ran while /slow was still in its handler; if
    the sleeping handler blocked the server, /fast would be answered after /slow gave up.
    """
    token = uuid.uuid4().hex
    slow_conn = srv.connection(timeout=30)
    try:
        slow_conn.connect()
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(srv.send, slow_conn, "GET", f"/slow?token={token}")
            seen_running = False
            for _ in range(500):
                fast = srv.get(f"/fast?token={token}")
                assert fast.status == 200
                if fast.json()["slow_running"]:
                    seen_running = True
                    break
                if slow.done():
                    break
            reply = slow.result(timeout=30)
    finally:
        slow_conn.close()
    assert seen_running, "never saw /slow in its handler"
    assert reply.status == 200
    assert reply.json() == {"released": True}


def test_idle_keep_alive_connections_hold_no_worker(srv):
    """With 2 workers, 10 idle keep-alive connections do not stop a new client being served."""
    idle = [srv.connection(timeout=10) for _ in range(10)]
    try:
        for c in idle:
            assert srv.send(c, "GET", "/fast").status == 200
        r = srv.get("/echo?i=1&c=2")  # a new client, while all 10 connections sit idle
        assert r.status == 200
        assert r.json() == {"i": 1, "c": 2}
        for i, c in enumerate(idle):  # and the idle ones are still open and usable
            sock = c.sock
            assert srv.send(c, "GET", f"/echo?i={i}&c=0").json() == {"i": i, "c": 0}
            assert c.sock is sock
    finally:
        for c in idle:
            c.close()


# --------------------------------------------------------------------------- many clients


def test_gc_in_a_handler_while_other_workers_wait_for_io(srv):
    """gc.collect() stops the world on a free-threaded build: it must not wait forever for a
    worker that sits in epoll/accept while attached to the interpreter."""
    idle = srv.connection()
    try:
        assert srv.send(idle, "GET", "/fast").status == 200  # an idle keep-alive connection too
        for _ in range(3):
            r = srv.get("/gc")
            assert r.status == 200
            assert isinstance(r.json()["collected"], int)
    finally:
        idle.close()


def test_fifty_concurrent_keep_alive_clients(srv):
    """50 clients at once, 20 keep-alive requests each: GET with query, POST with a JSON model,
    and a few full garbage collections in between; every answer checked."""
    clients, per_client = 50, 20
    start = threading.Barrier(clients)

    def client(i: int) -> list:
        problems = []
        conn = srv.connection(timeout=30)
        try:
            conn.connect()
            sock = conn.sock
            start.wait(timeout=30)
            for c in range(per_client):
                if c % 2:
                    text = f"{i}-{c}-" + "x" * (i * 37 % 500)
                    r = srv.send(conn, "POST", "/note", json={"i": i, "c": c, "text": text})
                    expected = {"i": i, "c": c, "text": text[::-1]}
                elif c == 10 and i % 5 == 0:
                    r = srv.send(conn, "GET", "/gc")
                    expected = {"collected": r.json().get("collected")} if r.status == 200 else None
                else:
                    r = srv.send(conn, "GET", f"/echo?i={i}&c={c}")
                    expected = {"i": i, "c": c}
                if r.status != 200 or r.json() != expected:
                    problems.append((i, c, r.status, r.body[:100]))
                if conn.sock is not sock:
                    problems.append((i, c, "connection was closed by the server"))
                    sock = conn.sock
        except Exception as e:  # reported below with the others
            problems.append((i, repr(e)))
        finally:
            conn.close()
        return problems

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    problems = [p for r in results for p in r]
    assert problems == []
