"""Exhaustion and bad settings: the open-files limit, bodies trickled below a
minimum rate, timeouts that are not finite numbers, shutdown with many
connections, and the engine's once-only configuration (docs/OPERATIONS.md).

Before the fixes: at `ulimit -n 64` with 200 idle clients every worker spun on
accept() (3.4 CPU-seconds per 3 s); a body sent a byte a second was read for
as long as it kept coming; `--header-timeout inf` reached a float-to-integer
conversion (undefined behaviour); each wake-up of each worker during shutdown
walked every connection under the lock.
"""
import json
import os
import resource
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))
from hardening_launch import connect, launch, recv_until_close, wait_until  # noqa: E402

import karak  # noqa: E402
from karak import _karak  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def open_idle(srv, n: int) -> list:
    """n connections that complete the TCP handshake (the kernel does that, accepted
    or not) and send nothing."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(10)
        s.connect((srv.host, srv.port))
        socks.append(s)
    return socks


def serves_again(srv, deadline: float = 20.0) -> bool:
    def once():
        try:
            with srv.raw(2.0) as conn:
                conn.send(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                return conn.read_reply().status == 200
        except OSError:
            return False
    return bool(wait_until(once, deadline, 0.1))


ACCEPT_WARNING = "accept() failed: Too many open files"


# ---------------------------------------------------------------- the fd limit

def test_at_the_fd_limit_accept_pauses_instead_of_spinning(tmp_path):
    """max_connections set above what the descriptors allow, so accept() fails with
    EMFILE: the listener is paused (re-armed when a connection closes, or after a
    short back-off), the failure is logged once, and the server serves again as
    soon as clients leave."""
    srv = launch(tmp_path, workers=2, nofile=64, max_connections=100_000, header_timeout=60)
    socks = open_idle(srv, 200)
    try:
        assert srv.wait_for_output(ACCEPT_WARNING, deadline=20), srv.tail()
        before = cpu_seconds(srv.process.pid)
        time.sleep(3.0)  # an observation window: the CPU the server uses at the limit
        used = cpu_seconds(srv.process.pid) - before
        assert used < 0.5, f"the server used {used:.2f} CPU-seconds in 3 s at the fd limit"
        assert srv.stderr().count(ACCEPT_WARNING) == 1, srv.tail()
    finally:
        for s in socks:
            s.close()
    assert serves_again(srv), srv.tail()
    assert srv.stop() == 0, srv.tail()


def test_the_default_connection_limit_keeps_clients_from_the_fd_limit(tmp_path):
    """With max_connections left at its default, it is derived from RLIMIT_NOFILE
    (64 - 32 here): 200 idle clients never bring accept() to EMFILE; the rest wait
    in the backlog, and the server still spends no CPU on them."""
    srv = launch(tmp_path, workers=2, nofile=64, header_timeout=60)
    assert "at most 32 connections" in srv.stderr(), srv.tail()
    socks = open_idle(srv, 200)
    try:
        # Accepted up to the limit, and no more: 32 connections open in the server.
        assert wait_until(lambda: connections_open(srv) >= 32, 20), srv.tail()
        before = cpu_seconds(srv.process.pid)
        time.sleep(3.0)
        used = cpu_seconds(srv.process.pid) - before
        assert used < 0.5, f"the server used {used:.2f} CPU-seconds in 3 s at its connection limit"
        assert connections_open(srv) == 32
        assert ACCEPT_WARNING not in srv.stderr(), srv.tail()
    finally:
        for s in socks:
            s.close()
    assert serves_again(srv), srv.tail()
    assert srv.stop() == 0, srv.tail()


def connections_open(srv) -> int:
    """Established TCP sockets of the server process on its port (from /proc)."""
    inodes = set()
    fd_dir = f"/proc/{srv.process.pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    port = f"{srv.port:04X}"
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1].endswith(":" + port) and fields[3] == "01" and fields[9] in inodes:
                n += 1
    return n


# ---------------------------------------------------------------- slow bodies

POST_HEAD = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"


def trickle_until_answered(sock: socket.socket, total: int, chunk: int, interval: float) -> bytes:
    """Sends `chunk` bytes every `interval` s, up to `total`, until the server answers.
    Returns what the server sent (b"" if it never answered)."""
    sent = 0
    while sent < total:
        r, _, _ = select.select([sock], [], [], interval)
        if r:
            data, _ = recv_until_close(sock, 10)
            return data
        n = min(chunk, total - sent)
        try:
            sock.sendall(b"x" * n)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += n
    data, _ = recv_until_close(sock, 10)
    return data


@pytest.fixture(scope="module")
def rated(tmp_path_factory):
    srv = launch(tmp_path_factory.mktemp("rated"), workers=2, min_body_rate=100,
                 body_rate_grace=1, body_timeout=30)
    yield srv
    assert srv.stop() == 0, srv.tail()


def test_a_body_trickled_below_min_body_rate_gets_408_and_close(rated):
    """10 bytes/s against min_body_rate=100 after a 1 s grace: answered 408 with
    Connection: close after about a second, then the connection is closed; the
    body (1000 bytes, 100 s at that pace) is never read to its end."""
    sock = connect(rated)
    try:
        sock.sendall(POST_HEAD % 1000)
        data = trickle_until_answered(sock, 1000, 1, 0.1)
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"\r\nConnection: close\r\n" in head + b"\r\n", head
    assert json.loads(body) == {"detail": "request body arrived slower than min_body_rate"}


def test_a_slow_body_above_min_body_rate_is_read(rated):
    """300 bytes/s for 2 s against min_body_rate=100: served."""
    sock = connect(rated)
    try:
        sock.sendall(POST_HEAD % 600)
        data = trickle_until_answered(sock, 600, 30, 0.1)
        if not data:
            sock.settimeout(10)
            data = sock.recv(65536)
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.1 200 "), data
    assert data.endswith(b'{"length":600}'), data


def test_a_chunked_body_trickled_below_min_body_rate_gets_408(rated):
    sock = connect(rated)
    try:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"400\r\n")
        data = trickle_until_answered(sock, 1024, 1, 0.1)
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.1 408 "), data


def test_answers_before_a_slow_body_are_sent_first(rated):
    """A pipelined GET is answered, then the trickled POST behind it gets its 408."""
    with rated.raw() as conn:
        conn.send(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n" + POST_HEAD % 1000)
        assert conn.read_reply().json() == {"hello": "world"}
        assert not conn.buf
        data = trickle_until_answered(conn.sock, 1000, 1, 0.1)
    assert data.startswith(b"HTTP/1.1 408 "), data


# ---------------------------------------------------------------- settings

BAD_SECONDS = [float("inf"), float("nan"), 1e300, -1.0, 1e7 + 1]


@pytest.mark.parametrize("value", BAD_SECONDS, ids=repr)
@pytest.mark.parametrize("option", ["header_timeout", "body_timeout", "keepalive_timeout",
                                    "graceful_timeout", "body_rate_grace"])
def test_app_run_refuses_a_timeout_that_is_not_a_finite_number(option, value):
    app = karak.Karak()
    with pytest.raises(ValueError, match=f"^{option} must be a finite number of seconds"):
        app.run(port=0, workers=1, **{option: value})


@pytest.mark.parametrize("value", BAD_SECONDS, ids=repr)
def test_the_engine_refuses_a_timeout_that_is_not_a_finite_number(value):
    """The C Server checks too, for whoever builds one without app.run."""
    with pytest.raises(ValueError, match="^header_timeout must be a finite number"):
        _karak.Server([], "127.0.0.1", 0, header_timeout=value)


def test_stop_refuses_a_grace_that_is_not_a_finite_number():
    server = _karak.Server([], "127.0.0.1", 0)
    try:
        for value in (float("inf"), float("nan"), -1.0):
            with pytest.raises(ValueError, match="^grace must be"):
                server.stop(value)
        server.stop(0)
    finally:
        server.close()


@pytest.mark.parametrize("value", ["inf", "nan", "1e300", "-5"])
def test_the_command_line_refuses_a_timeout_that_is_not_a_finite_number(value, tmp_path):
    paths = [str(Path(__file__).resolve().parent / "apps")] + [
        os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    r = subprocess.run([sys.executable, "-m", "karak", "hardening_app:app", "--port", "0",
                        "--header-timeout", value], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=60)
    assert r.returncode == 2, r
    assert "header_timeout must be a finite number of seconds" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("option,value", [("max_body", -1), ("max_headers", 0),
                                          ("min_body_rate", -5), ("max_connections", -2)])
def test_app_run_refuses_negative_limits(option, value):
    with pytest.raises(ValueError, match=f"^{option} must be"):
        karak.Karak().run(port=0, **{option: value})


def test_configure_runs_once():
    """The engine's callbacks are read by workers without a lock: replacing them
    while a server runs could free one in use, so a second _configure is refused."""
    with pytest.raises(RuntimeError, match="already called"):
        _karak._configure(*([print] * 7))


def test_close_refuses_while_a_worker_serves_and_serve_refuses_after_close():
    server = _karak.Server([], "127.0.0.1", 0, workers=2)
    t = threading.Thread(target=server.serve)
    t.start()
    try:
        assert wait_until(lambda: not t.is_alive() or _serving(server), 10)
        with pytest.raises(RuntimeError, match="still serving"):
            server.close()
    finally:
        server.stop(0)
        t.join(10)
    assert not t.is_alive()
    server.close()
    with pytest.raises(RuntimeError, match="closed"):
        server.serve()


def _serving(server) -> bool:
    try:
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- shutdown

def test_shutdown_with_many_connections_does_not_sweep_on_every_wake_up(tmp_path):
    """2,000 idle keep-alive connections, then SIGTERM: each closed connection wakes
    a worker once. The sweep (which walks every connection under the lock) runs a
    few times a second, not once per wake-up: before, about 2,000 sweeps."""
    n = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n + 200:
        pytest.skip(f"the open-files limit ({hard}) is below {n + 200}")
    if soft != resource.RLIM_INFINITY and soft < n + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000) if hard != resource.RLIM_INFINITY
                                                    else n + 1000, hard))
    srv = launch(tmp_path, workers=2)
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection((srv.host, srv.port), timeout=10)
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            socks.append(s)
        for s in socks:  # every one answered: all are open, idle keep-alive connections
            assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
        assert srv.stop() == 0, srv.tail()
    finally:
        for s in socks:
            s.close()
    line = [ln for ln in srv.stdout().splitlines() if ln.startswith("hardening_app: sweeps ")]
    assert line, srv.tail()
    sweeps = int(line[-1].split()[-1])
    assert sweeps < 200, f"{sweeps} sweeps to shut down {n} connections"
