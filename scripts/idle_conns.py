"""Holds 10,000 idle keep-alive connections to a live server and reports the server's
memory per idle connection, while showing that other clients are still served.

    .venv/bin/python scripts/idle_conns.py [--connections 10000] [--workers 2]

Steps:
  1. start tests/apps/hardening_app.py (this interpreter, --workers threads,
     keepalive_timeout 600 s) on a free loopback port; warm it up with 2,000
     requests on fresh and keep-alive connections, and take its RSS (VmRSS);
  2. open --connections connections, each making one request (GET /hello, 200
     checked) and then staying open and idle; take the RSS again:
     (after - before) / connections is the server's user-space memory per idle
     connection (the kernel's socket buffers are not in RSS; /proc/net/sockstat
     is printed for those);
  3. while they are all held: 1,000 requests from a fresh client (one keep-alive
     connection) and 100 requests on 100 new connections must all succeed, and
     200 of the idle connections, picked at random, must still answer a request;
  4. close everything; the server's descriptors must return to their idle count,
     and SIGTERM must stop it with exit code 0.

Exit code 0 when every step passed and the memory per idle connection is under
--target bytes (default 5 KiB). The client raises its own RLIMIT_NOFILE to the hard
limit (the server's app.run raises its own). Loopback only.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procinfo import HOST, free_port, open_fds, rss_kib

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "tests" / "apps"
REQUEST = b"GET /hello HTTP/1.1\r\nHost: idle\r\n\r\n"
BODY = b'{"hello":"world"}'


def sockstat() -> str:
    with open("/proc/net/sockstat") as f:
        return next((line.strip() for line in f if line.startswith("TCP:")), "")


def raise_nofile(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(need, soft)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def read_reply(sock: socket.socket) -> bytes:
    """Reads one response with a Content-Length body; returns the body, or raises."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed before a response: {buf!r}")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        raise ConnectionError(f"unexpected response: {head!r}")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed mid-body")
        body += chunk
    if head.lower().find(b"connection: close") >= 0:
        raise ConnectionError("the server closed a keep-alive connection")
    return body


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--target", type=int, default=5 * 1024, help="bytes per idle connection to stay under")
    args = ap.parse_args()

    limit = raise_nofile(args.connections + 200)
    if limit < args.connections + 100:
        raise SystemExit(f"idle_conns: RLIMIT_NOFILE is {limit}, need {args.connections + 100}")

    log_dir = Path(tempfile.mkdtemp(prefix="karak-idle-"))
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(APPS), PYTHONUNBUFFERED="1")
    limits = {"keepalive_timeout": 600.0, "header_timeout": 60.0}
    err_path = log_dir / "server.stderr"
    with open(log_dir / "server.stdout", "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, str(APPS / "hardening_app.py"), str(port), str(args.workers),
                                 json.dumps(limits)], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=env, start_new_session=True)
    failures = []
    held: list = []
    try:
        end = time.monotonic() + 30
        while "Karak serving on" not in err_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > end:
                raise SystemExit("idle_conns: server did not start:\n" + err_path.read_text(errors="replace"))
            time.sleep(0.05)
        pid = proc.pid
        with open(f"/proc/{pid}/limits") as f:
            server_nofile = next(line.split()[3] for line in f if line.startswith("Max open files"))
        print(f"idle_conns: server pid {pid} on {HOST}:{port}, workers={args.workers}, "
              f"python {sys.version.split()[0]}, server RLIMIT_NOFILE {server_nofile}; logs in {log_dir}")

        # 1. warm-up and baseline
        for _ in range(1000):
            with socket.create_connection((HOST, port), timeout=10) as s:
                s.sendall(REQUEST)
                read_reply(s)
        with socket.create_connection((HOST, port), timeout=10) as s:
            for _ in range(1000):
                s.sendall(REQUEST)
                read_reply(s)
        time.sleep(1.0)
        fds_idle = open_fds(pid)
        rss_before = rss_kib(pid)
        tcp_before = sockstat()

        # 2. open and hold
        t0 = time.monotonic()
        for start in range(0, args.connections, args.batch):
            batch = []
            for _ in range(min(args.batch, args.connections - start)):
                s = socket.create_connection((HOST, port), timeout=30)
                s.sendall(REQUEST)
                batch.append(s)
            for s in batch:
                if read_reply(s) != BODY:
                    raise ConnectionError("wrong body")
            held.extend(batch)
        opened = time.monotonic() - t0
        time.sleep(2.0)  # let the server settle (buffers released after the request)
        rss_after = rss_kib(pid)
        fds_held = open_fds(pid)
        tcp_after = sockstat()
        per_conn = (rss_after - rss_before) * 1024 / len(held)
        print(f"  opened {len(held)} keep-alive connections (one request each) in {opened:.1f}s; "
              f"server descriptors {fds_idle} -> {fds_held}")
        print(f"  server RSS {rss_before / 1024:.1f} MiB -> {rss_after / 1024:.1f} MiB: "
              f"{per_conn:.0f} bytes per idle connection (target < {args.target})")
        print(f"  kernel TCP (both ends, pages): before [{tcp_before}]  held [{tcp_after}]")
        if per_conn >= args.target:
            failures.append(f"{per_conn:.0f} bytes per idle connection")
        if fds_held - fds_idle < len(held):
            failures.append(f"server holds {fds_held - fds_idle} descriptors for {len(held)} connections")

        # 3. others are served meanwhile
        t0 = time.monotonic()
        with socket.create_connection((HOST, port), timeout=10) as s:
            for _ in range(1000):
                s.sendall(REQUEST)
                if read_reply(s) != BODY:
                    failures.append("fresh keep-alive client: wrong body")
                    break
        for _ in range(100):
            with socket.create_connection((HOST, port), timeout=10) as s:
                s.sendall(REQUEST)
                read_reply(s)
        served = time.monotonic() - t0
        sample = random.Random(1).sample(held, min(200, len(held)))
        for s in sample:
            s.sendall(REQUEST)
        for s in sample:
            if read_reply(s) != BODY:
                failures.append("an idle connection answered wrongly")
        print(f"  while held: 1000 keep-alive requests + 100 new connections served in {served:.2f}s; "
              f"{len(sample)} of the idle connections still answer")
    except (OSError, ConnectionError) as e:
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        # 4. close everything
        for s in held:
            s.close()
    if proc.poll() is None:
        pid = proc.pid
        end = time.monotonic() + 10
        while open_fds(pid) > fds_idle and time.monotonic() < end:
            time.sleep(0.1)
        fds_end = open_fds(pid)
        rss_end = rss_kib(pid)
        print(f"  after closing: server descriptors {fds_end}, RSS {rss_end / 1024:.1f} MiB")
        if fds_end != fds_idle:
            failures.append(f"server descriptors {fds_end} after closing, {fds_idle} before")
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
            failures.append("server still running 20 s after SIGTERM")
        if code != 0:
            failures.append(f"server exit code {code}")
    else:
        failures.append(f"server died with code {proc.returncode}")
    print("  result: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
