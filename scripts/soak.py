"""Soak test: a live server under a mix of valid, malformed, slow and abandoned requests
for minutes; zero unexpected errors and flat memory, or a non-zero exit.

    .venv/bin/python scripts/soak.py [--seconds 180] [--clients 64] [--workers 2]

Starts tests/apps/hardening_app.py (with the interpreter running this script) on a
free loopback port, then runs --clients threads until --seconds have passed. Each
thread keeps a keep-alive connection and picks, request after request:

  get        GET /hello, body checked                                  (keep-alive)
  post       POST /echo/... with a random body (Content-Length or chunked), the
             echoed body, path and query checked                       (keep-alive)
  pipeline   three requests in one write, three answers in order      (keep-alive)
  malformed  an invalid request from tests/vectors/http: the vector's status,
             Connection: close, then the server closes
  slow       a valid POST trickled in pieces over ~1-2 s (inside every
             timeout): must be answered like any other
  abandon    a partial head, a partial body, or a request for a large response
             that is never read: the client closes (sometimes with a reset)
  oversize   a Content-Length above max_body: 413 before the body is sent

Every answer is checked; anything else (wrong status or body, a keep-alive
connection closed by the server, a timeout, a reset on a valid request, a
traceback in the server's log) is an unexpected error. The server's RSS
(/proc/PID/status VmRSS) is sampled every 2 s; the run passes when there are no
unexpected errors, the RSS at the end is within 10 % of the RSS after warm-up
(the first sixth of the run, at least 10 s), the server's open descriptors are
back to their idle count once the clients are gone, and SIGTERM stops it with 0.
Loopback only, bounded in time.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from procinfo import HOST, free_port, open_fds, rss_kib

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "tests" / "apps"

LIMITS = {
    "max_body": 65536,
    "header_timeout": 10.0,
    "body_timeout": 5.0,
    "keepalive_timeout": 15.0,
    "graceful_timeout": 10.0,
}


class Unexpected(Exception):
    pass


# --------------------------------------------------------------------------- malformed inputs


def malformed_pool() -> list:
    """(raw bytes, status) of every invalid vector with default limits."""
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(APPS))
    from test_vectors_live import load_vectors  # noqa: E402  (the format's one reader)

    pool = [(v.raw, v.status) for v in load_vectors() if v.expect == "status" and not v.limits]
    if len(pool) < 50:
        raise SystemExit(f"soak: only {len(pool)} invalid vectors found")
    return pool


# --------------------------------------------------------------------------- server


def start_server(workers: int, log_dir: Path) -> tuple[subprocess.Popen, int, Path]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(APPS), PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    err_path = log_dir / "server.stderr"
    with open(log_dir / "server.stdout", "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, str(APPS / "hardening_app.py"), str(port), str(workers),
                                 json.dumps(LIMITS)], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=env, start_new_session=True)
    end = time.monotonic() + 30
    while "Karak serving on" not in err_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            raise SystemExit("soak: server did not start:\n" + err_path.read_text(errors="replace"))
        time.sleep(0.05)
    return proc, port, err_path


# --------------------------------------------------------------------------- client


class Conn:
    """A socket and a strict little HTTP/1.1 response reader."""

    def __init__(self, port: int, timeout: float = 15.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self, reset: bool = False) -> None:
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise Unexpected("server closed the connection mid-response" if self.buf
                             else "server closed a keep-alive connection")
        self.buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def reply(self, head_only: bool = False) -> tuple[int, dict, bytes]:
        while True:
            while b"\r\n\r\n" not in self.buf:
                self._fill()
            end = self.buf.index(b"\r\n\r\n") + 4
            head = bytes(self.buf[:end])
            del self.buf[:end]
            lines = head[:-4].split(b"\r\n")
            status = int(lines[0].split(b" ")[1])
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(b":")
                headers[k.strip().lower().decode()] = v.strip().decode("latin-1")
            if status == 100:
                continue
            length = int(headers.get("content-length", "0"))
            body = b"" if head_only or status in (204, 304) else self._take(length)
            return status, headers, body

    def expect_close(self) -> None:
        """The server must close now, with nothing more sent."""
        if self.buf:
            raise Unexpected(f"bytes after a closing response: {bytes(self.buf[:100])!r}")
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return
        if data:
            raise Unexpected(f"bytes after a closing response: {data[:100]!r}")


class Worker(threading.Thread):
    KINDS = ["get"] * 30 + ["post"] * 25 + ["pipeline"] * 10 + ["malformed"] * 15 + \
            ["slow"] * 6 + ["abandon"] * 10 + ["oversize"] * 4

    def __init__(self, idx: int, port: int, deadline: float, pool: list, report):
        super().__init__(name=f"soak-{idx}", daemon=True)
        self.port, self.deadline, self.pool, self.report = port, deadline, pool, report
        self.rng = random.Random(idx * 7919 + 17)
        self.conn: Conn | None = None
        self.done: Counter = Counter()

    def keepalive(self) -> Conn:
        if self.conn is None:
            self.conn = Conn(self.port)
        return self.conn

    def drop(self, reset: bool = False) -> None:
        if self.conn is not None:
            self.conn.close(reset)
            self.conn = None

    def run(self) -> None:
        while time.monotonic() < self.deadline:
            kind = self.rng.choice(self.KINDS)
            try:
                getattr(self, "do_" + kind)()
                self.done[kind] += 1
            except (Unexpected, OSError, ValueError, IndexError) as e:
                self.report(kind, e)
                self.drop()
        self.drop()

    # ---- kinds ----

    def do_get(self) -> None:
        c = self.keepalive()
        c.sock.sendall(b"GET /hello HTTP/1.1\r\nHost: soak\r\n\r\n")
        status, h, body = c.reply()
        if status != 200 or body != b'{"hello":"world"}' or h.get("connection") == "close":
            raise Unexpected(f"GET /hello: {status} {h} {body[:100]!r}")

    def _post(self, chunked: bool) -> tuple[bytes, bytes, bytes]:
        body = self.rng.randbytes(self.rng.choice([0, 1, 100, 1000, 8000, 40000]))
        path = f"/echo/{self.rng.randrange(10**6)}"
        query = f"q={self.rng.randrange(100)}&x=%20y"
        head = f"POST {path}?{query} HTTP/1.1\r\nHost: soak\r\nContent-Type: application/octet-stream\r\n"
        if chunked:
            parts, i = [], 0
            while i < len(body):
                n = self.rng.randrange(1, 9000)
                parts.append(b"%x\r\n" % len(body[i:i + n]) + body[i:i + n] + b"\r\n")
                i += n
            data = head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(parts) + b"0\r\n\r\n"
        else:
            data = head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body
        return data, body, json.dumps({"path": path, "query": query}).encode()

    def _check_echo(self, status, h, reply, body, want) -> None:
        want = json.loads(want)
        if status != 200:
            raise Unexpected(f"POST echo: {status} {reply[:200]!r}")
        got = json.loads(reply)
        if bytes.fromhex(got["body_hex"]) != body or got["path"] != want["path"] or got["query"] != want["query"]:
            raise Unexpected(f"POST echo mismatch: sent {len(body)} bytes, got {reply[:200]!r}")

    def do_post(self) -> None:
        c = self.keepalive()
        data, body, want = self._post(self.rng.random() < 0.3)
        c.sock.sendall(data)
        status, h, reply = c.reply()
        self._check_echo(status, h, reply, body, want)

    def do_pipeline(self) -> None:
        c = self.keepalive()
        post, body, want = self._post(False)
        c.sock.sendall(b"GET /hello HTTP/1.1\r\nHost: soak\r\n\r\n" + post +
                       b"HEAD /hello HTTP/1.1\r\nHost: soak\r\n\r\n")
        status, h, b1 = c.reply()
        if status != 200 or b1 != b'{"hello":"world"}':
            raise Unexpected(f"pipelined GET: {status} {b1[:100]!r}")
        status, h, reply = c.reply()
        self._check_echo(status, h, reply, body, want)
        status, h, b3 = c.reply(head_only=True)
        if status != 200 or h.get("content-length") != "17":
            raise Unexpected(f"pipelined HEAD: {status} {h}")

    def do_malformed(self) -> None:
        raw, want = self.rng.choice(self.pool)
        c = Conn(self.port)
        try:
            try:
                c.sock.sendall(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered before all was sent
            status, h, _ = c.reply()
            if status != want or h.get("connection") != "close":
                raise Unexpected(f"malformed {raw[:80]!r}: got {status} {h}, want {want} and close")
            c.expect_close()
        finally:
            c.close()

    def do_slow(self) -> None:
        c = Conn(self.port)
        try:
            data, body, want = self._post(False)
            if len(data) > 2000:
                data, body, want = self._post(False)
            pieces = self.rng.randrange(3, 8)
            step = max(1, len(data) // pieces)
            for i in range(0, len(data), step):
                c.sock.sendall(data[i:i + step])
                time.sleep(self.rng.uniform(0.1, 0.3))
            status, h, reply = c.reply()
            self._check_echo(status, h, reply, body, want)
        finally:
            c.close()

    def do_abandon(self) -> None:
        c = Conn(self.port)
        how = self.rng.randrange(3)
        if how == 0:
            c.sock.sendall(b"GET /hello HTTP/1.1\r\nHost: so")
        elif how == 1:
            c.sock.sendall(b"POST /upload HTTP/1.1\r\nHost: soak\r\nContent-Length: 5000\r\n\r\n" + b"a" * 1000)
        else:
            c.sock.sendall(b"GET /big?n=2000000 HTTP/1.1\r\nHost: soak\r\n\r\n")
            c.sock.recv(100)
        time.sleep(self.rng.uniform(0, 0.05))
        c.close(reset=self.rng.random() < 0.5)

    def do_oversize(self) -> None:
        c = Conn(self.port)
        try:
            c.sock.sendall(b"POST /upload HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n"
                           % (LIMITS["max_body"] + 1 + self.rng.randrange(10**6)))
            status, h, _ = c.reply()
            if status != 413 or h.get("connection") != "close":
                raise Unexpected(f"oversize: {status} {h}")
            c.expect_close()
        finally:
            c.close()


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tolerance", type=float, default=0.10, help="allowed RSS growth after warm-up")
    args = ap.parse_args()

    pool = malformed_pool()
    log_dir = Path(tempfile.mkdtemp(prefix="karak-soak-"))
    proc, port, err_path = start_server(args.workers, log_dir)
    pid = proc.pid
    print(f"soak: server pid {pid} on {HOST}:{port}, workers={args.workers}, python {sys.version.split()[0]}"
          f"{' (free-threaded)' if not getattr(sys, '_is_gil_enabled', lambda: True)() else ''}; "
          f"{args.clients} clients for {args.seconds:.0f}s; logs in {log_dir}", flush=True)
    fds_idle = open_fds(pid)
    rss_start = rss_kib(pid)

    errors: list = []
    lock = threading.Lock()

    def report(kind, exc) -> None:
        with lock:
            errors.append((time.monotonic(), kind, repr(exc)[:300]))

    start = time.monotonic()
    deadline = start + args.seconds
    warm = max(10.0, args.seconds / 6)
    workers = [Worker(i, port, deadline, pool, report) for i in range(args.clients)]
    for w in workers:
        w.start()
    samples = []  # (seconds since start, rss KiB)
    while any(w.is_alive() for w in workers):
        if proc.poll() is not None:
            report("server", f"server exited with code {proc.returncode}")
            break
        samples.append((time.monotonic() - start, rss_kib(pid)))
        t, r = samples[-1]
        if len(samples) % 15 == 1:
            done = sum(sum(w.done.values()) for w in workers)
            print(f"  t={t:6.1f}s  rss={r / 1024:7.1f} MiB  requests={done}  unexpected={len(errors)}", flush=True)
        time.sleep(2.0)
    for w in workers:
        w.join(30)
    time.sleep(1.0)  # let the server finish closing what the clients closed

    alive = proc.poll() is None
    fds_after = open_fds(pid) if alive else -1
    rss_end_idle = rss_kib(pid) if alive else 0
    code = None
    if alive:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            report("server", "still running 20 s after SIGTERM; killed")
    else:
        code = proc.returncode
    log = err_path.read_text(errors="replace")
    if "Traceback" in log or "Fatal Python error" in log:
        report("server", "traceback in the server's log (see server.stderr)")

    # ---- summary ----
    totals = Counter()
    for w in workers:
        totals.update(w.done)
    after_warm = [r for t, r in samples if warm <= t <= warm + 10] or [r for t, r in samples if t >= warm][:3]
    end_window = [r for t, r in samples if t >= args.seconds - 10][-5:]
    base = sorted(after_warm)[len(after_warm) // 2] if after_warm else 0
    end = sorted(end_window)[len(end_window) // 2] if end_window else 0
    growth = (end - base) / base if base else float("inf")
    peak = max((r for _, r in samples), default=0)

    print("\nsoak summary")
    print(f"  duration      {time.monotonic() - start:.0f}s, {args.clients} clients, server workers={args.workers}")
    print(f"  completed     {sum(totals.values())} exchanges: " +
          ", ".join(f"{k}={totals[k]}" for k in sorted(totals)))
    print(f"  unexpected    {len(errors)}")
    for t, kind, msg in errors[:15]:
        print(f"    [{t - start:7.1f}s] {kind}: {msg}")
    print(f"  RSS           start {rss_start / 1024:.1f} MiB, after warm-up ({warm:.0f}s) {base / 1024:.1f} MiB, "
          f"end {end / 1024:.1f} MiB ({growth * 100:+.1f}%), peak {peak / 1024:.1f} MiB, "
          f"idle after clients left {rss_end_idle / 1024:.1f} MiB")
    print(f"  descriptors   idle {fds_idle}, after the clients left {fds_after}")
    print(f"  exit code     {code} after SIGTERM")

    failures = []
    if errors:
        failures.append(f"{len(errors)} unexpected errors")
    if growth > args.tolerance:
        failures.append(f"RSS grew {growth * 100:.1f}% after warm-up (allowed {args.tolerance * 100:.0f}%)")
    if fds_after != fds_idle:
        failures.append(f"descriptors: {fds_after} after the run, {fds_idle} idle before")
    if code != 0:
        failures.append(f"server exit code {code}")
    if sum(totals.values()) == 0:
        failures.append("nothing was completed")
    print("  result        " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
