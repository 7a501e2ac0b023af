"""Launcher for the hardening tests: hardening_app with chosen limits and timeouts.

The shared harness (tests/conftest.py) starts apps with default limits only; the
hardening tests need small ones (header_timeout=1, max_body=64, ...). This module
starts tests/apps/hardening_app.py either through the CLI (`python -m karak
hardening_app:app --header-timeout 1 ...`) or through app.run(**limits) (the
script form of hardening_app), and returns a conftest.Server, so the rest of the
harness (raw(), request(), stop(), tail()) is reused as is.

Fixture: `hardened(workers=2, cli=False, events=None, **limits)`: per test,
every server stopped (SIGTERM, then killed and failed after 10 s) at teardown.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parent
TESTS = APPS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from conftest import (  # noqa: E402
    HOST, STARTUP_DEADLINE, Server, ServerStartError, free_port, wait_until,
)


def command(port: int, workers: int, limits: dict, cli: bool) -> list:
    if cli:
        cmd = [sys.executable, "-m", "karak", "hardening_app:app", "--host", HOST,
               "--port", str(port), "--workers", str(workers)]
        for key, value in limits.items():
            cmd += ["--" + key.replace("_", "-"), str(value)]
        return cmd
    return [sys.executable, str(APPS / "hardening_app.py"), str(port), str(workers), json.dumps(limits)]


def launch(log_dir: Path, *, workers: int = 2, cli: bool = False, events: Path | None = None,
           attempts: int = 3, nofile: int | None = None, **limits) -> Server:
    """Starts hardening_app with limits; returns once it accepts connections.

    Readiness is a log line, not a probe connection: a probe would itself be a
    connection (it matters with max_connections and the idle-connection counts).
    nofile: the server's open-files limit, soft and hard (as `ulimit -n`), set
    with prlimit(1), so that app.run cannot lift it.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    last = ""
    for _ in range(attempts):
        port = free_port()
        env = os.environ.copy()
        env["PYTHONPATH"] = os.pathsep.join([str(APPS)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONFAULTHANDLER"] = "1"
        env["HARDENING_EVENTS"] = str(events) if events else os.devnull
        stem = f"hardening-{'cli' if cli else 'run'}-w{workers}-{port}"
        out_path, err_path = log_dir / f"{stem}.stdout", log_dir / f"{stem}.stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            wrap = ["prlimit", f"--nofile={nofile}:{nofile}", "--"] if nofile else []
            proc = subprocess.Popen(wrap + command(port, workers, limits, cli), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, cwd=log_dir, env=env, start_new_session=True)
        server = Server("hardening_app:app", workers, HOST, port, proc, out_path, err_path)
        ready = wait_until(lambda: proc.poll() is not None or "Karak serving on" in server.stderr(),
                           STARTUP_DEADLINE)
        if ready and proc.poll() is None:
            return server
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            raise ServerStartError(f"{server!r} did not start within {STARTUP_DEADLINE:.0f}s\n" + server.tail())
        last = f"{server!r} exited with code {proc.returncode} before serving\n" + server.tail()
        if "Address already in use" not in server.stderr():
            break
    raise ServerStartError(last)


class HardenedFactory:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.servers: list = []

    def __call__(self, **kw) -> Server:
        server = launch(self.log_dir, **kw)
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def hardened(tmp_path):
    factory = HardenedFactory(tmp_path / "servers")
    yield factory
    factory.stop_all()


# --------------------------------------------------------------------------- raw client helpers


def connect(server: Server, timeout: float = 10.0) -> socket.socket:
    s = socket.create_connection((server.host, server.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_until_close(sock: socket.socket, timeout: float = 10.0) -> tuple[bytes, str]:
    """Reads until the peer closes. Returns (bytes, how): how is "eof", "reset" or "timeout".
    The socket's timeout is changed only when it differs: another thread may be sending
    on it, and settimeout() while a send runs is a data race inside CPython's socket."""
    if sock.gettimeout() != timeout:
        sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, "timeout"
        except ConnectionResetError:
            return data, "reset"
        if not chunk:
            return data, "eof"
        data += chunk


def get(path: str, extra: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n"


def server_unread(server: Server, client: socket.socket):
    """Bytes the server has not read yet from the connection whose client end is
    `client` (the kernel's receive queue of the server's socket, from /proc/net/tcp), or
    None while the server's socket is not found. 0 means the server read everything
    the client sent: an observable, unlike "wait a little"."""
    cip, cport = client.getsockname()[:2]
    want_local = f"{_hex_addr(server.host)}:{server.port:04X}"
    want_remote = f"{_hex_addr(cip)}:{cport:04X}"
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == want_local and fields[2] == want_remote:
                return int(fields[4].split(":")[1], 16)
    return None


def _hex_addr(ip: str) -> str:
    return socket.inet_aton(ip)[::-1].hex().upper()
