"""Harness for Karak's integration tests: real servers in subprocesses, real clients.

A server is `python tests/serve.py module:attr PORT WORKERS` (or `python -m karak ...`)
started with the interpreter running pytest, on a free loopback port, with tests/apps
on PYTHONPATH. The harness waits for it by polling a TCP connect (never a fixed sleep),
captures its stdout and stderr to files, and on teardown sends SIGTERM and waits; a
server still alive 10 s later is killed and the teardown fails.

Fixtures:
  server_pool    session-wide cache: server_pool.get("app_module:app", workers=4). Test files
                 wrap it in a function-scoped `srv` fixture, so that a server that crashed
                 (its stderr has the faulthandler trace) fails every later test loudly.
  start_server   per-test factory: start_server("app_module:app", workers=2, cli=False, env=...)

A failed test gets the tail of the stdout/stderr of every server it used in its report.
test_vectors_live.py imports RawConnection from here: keep its interface.

Clients: Server.request() (http.client, one connection per call), Server.connection()
(an http.client connection the caller closes), Server.raw() (a RawConnection: a socket
with a tiny HTTP/1.1 response reader, for exact bytes, pipelining and malformed input).
"""
from __future__ import annotations

import http.client
import json as jsonlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
APPS = TESTS / "apps"
EXAMPLES = ROOT / "examples"

HOST = "127.0.0.1"
STARTUP_DEADLINE = 30.0  # seconds a server may take to accept its first connection
STOP_DEADLINE = 10.0  # seconds a server may take to exit after SIGTERM/SIGINT
IO_TIMEOUT = 10.0  # socket timeout of every client operation


def free_port() -> int:
    """A port the kernel just gave us on 127.0.0.1 (bound, read, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(predicate, deadline: float = 10.0, interval: float = 0.01):
    """Polls predicate() until it returns a true value (returned) or the deadline passes (None)."""
    end = time.monotonic() + deadline
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            return None
        time.sleep(interval)


# --------------------------------------------------------------------------- clients


class Reply:
    """A response read by http.client: status, reason, headers (case-insensitive), body."""

    def __init__(self, status: int, reason: str, headers: http.client.HTTPMessage, body: bytes):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def json(self):
        return jsonlib.loads(self.body)

    def header(self, name: str, default=None):
        return self.headers.get(name, default)

    def __repr__(self) -> str:
        return f"<Reply {self.status} {dict(self.headers)!r} {self.body[:200]!r}>"


class RawReply:
    """A response parsed from raw bytes: version, status, reason, header list, body, raw head."""

    def __init__(self, version: str, status: int, reason: str, headers: list, body: bytes, head: bytes):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in the order sent
        self.body = body
        self.head = head  # the status line and header block, CRLFCRLF included

    def header(self, name: str, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name: str) -> list:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def has(self, name: str) -> bool:
        return any(k.lower() == name.lower() for k, _ in self.headers)

    def json(self):
        return jsonlib.loads(self.body)

    def __repr__(self) -> str:
        return f"<RawReply {self.head!r} {self.body[:200]!r}>"


class RawConnection:
    """A client socket with a buffer and a minimal, strict HTTP/1.1 response reader."""

    def __init__(self, host: str, port: int, timeout: float = IO_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"server closed the connection; unparsed bytes: {bytes(self.buf)[:300]!r}")
        self.buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n")
        line = bytes(self.buf[:i])
        del self.buf[: i + 2]
        return line

    def read_reply(self, head_request: bool = False) -> RawReply:
        """Reads one response; head_request=True for the answer to a HEAD (never a body)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        end = self.buf.index(b"\r\n\r\n") + 4
        head = bytes(self.buf[:end])
        del self.buf[:end]
        lines = head[:-4].split(b"\r\n")
        version, status, reason = (lines[0].decode("latin-1").split(" ", 2) + [""])[:3]
        headers = []
        for line in lines[1:]:
            name, sep, value = line.decode("latin-1").partition(":")
            assert sep, f"response header line without a colon: {line!r}"
            headers.append((name, value.strip()))
        reply = RawReply(version, int(status), reason, headers, b"", head)
        code = reply.status
        if head_request or code in (204, 304) or 100 <= code < 200:
            return reply
        length = reply.header("content-length")
        if length is not None:
            reply.body = self._take(int(length))
        elif "chunked" in (reply.header("transfer-encoding") or "").lower():
            body = bytearray()
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._take(size)
                assert self._take(2) == b"\r\n"
            reply.body = bytes(body)
        else:
            reply.body = self.read_to_eof()
        return reply

    def read_to_eof(self) -> bytes:
        """Everything until the server closes (recv returns b""); raises socket.timeout if it does not."""
        data = bytes(self.buf)
        self.buf.clear()
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return data
            data += chunk

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection with nothing more sent, within timeout.

        Returns False if more bytes arrive or the connection stays open (recv times out).
        A reset (the server closing with unread input) counts as closed.
        """
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65536) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True


# --------------------------------------------------------------------------- servers


class ServerStartError(Exception):
    pass


class Server:
    """One server process: host, port, process, and its captured stdout/stderr."""

    def __init__(self, app: str, workers: int, host: str, port: int, process: subprocess.Popen,
                 stdout_path: Path, stderr_path: Path):
        self.app = app
        self.workers = workers
        self.host = host
        self.port = port
        self.process = process
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path

    def __iter__(self):  # unpacks as (host, port, process)
        return iter((self.host, self.port, self.process))

    def __repr__(self) -> str:
        return f"<Server {self.app} {self.host}:{self.port} workers={self.workers} pid={self.process.pid}>"

    # clients
    def connection(self, timeout: float = IO_TIMEOUT) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method: str, path: str, body=None, headers=None, json=None) -> Reply:
        """One request on a fresh http.client connection, closed afterwards."""
        conn = self.connection()
        try:
            return send(conn, method, path, body=body, headers=headers, json=json)
        finally:
            conn.close()

    def get(self, path: str, **kw) -> Reply:
        return self.request("GET", path, **kw)

    @staticmethod
    def send(conn: http.client.HTTPConnection, method: str, path: str, body=None, headers=None,
             json=None) -> Reply:
        """One request on an existing http.client connection (keep-alive)."""
        return send(conn, method, path, body=body, headers=headers, json=json)

    def raw(self, timeout: float = IO_TIMEOUT) -> RawConnection:
        return RawConnection(self.host, self.port, timeout)

    # logs
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def wait_for_output(self, text: str, stream: str = "stderr", deadline: float = 10.0) -> bool:
        """Polls the captured stream until it contains text."""
        read = self.stderr if stream == "stderr" else self.stdout
        return bool(wait_until(lambda: text in read(), deadline))

    def tail(self, lines: int = 40) -> str:
        out = []
        for name, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            text = path.read_text(errors="replace") if path.exists() else ""
            out.append(f"--- {name} of {self!r} (last {lines} lines)\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(out)

    # lifecycle
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, deadline: float = STOP_DEADLINE) -> int:
        """Sends sig and waits; kills and fails if the process outlives the deadline. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.wait_exit(deadline, f"after {signal.Signals(sig).name}")
        return self.process.returncode

    def wait_exit(self, deadline: float = STOP_DEADLINE, why: str = "") -> int:
        """Waits for the process to exit by itself; kills and fails after deadline. Returns the exit code."""
        try:
            return self.process.wait(deadline)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        pytest.fail(f"{self!r} still running {deadline:.0f}s {why}; killed\n" + self.tail())


def send(conn: http.client.HTTPConnection, method: str, path: str, body=None, headers=None, json=None) -> Reply:
    """Sends one request on conn and reads the whole response."""
    hdrs = dict(headers or {})
    if json is not None:
        body = jsonlib.dumps(json).encode()
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    return Reply(resp.status, resp.reason, resp.headers, resp.read())


def launch(app: str, workers: int, log_dir: Path, *, cli: bool = False, env: dict | None = None,
           extra_path=(), attempts: int = 3) -> Server:
    """Starts a server for app ("module:attr") and returns it once it accepts connections."""
    log_dir.mkdir(parents=True, exist_ok=True)
    last = ""
    for attempt in range(attempts):
        port = free_port()
        if cli:
            cmd = [sys.executable, "-m", "karak", app, "--host", HOST, "--port", str(port),
                   "--workers", str(workers)]
        else:
            cmd = [sys.executable, str(TESTS / "serve.py"), app, str(port), str(workers)]
        full_env = os.environ.copy()
        full_env.update(env or {})
        paths = [str(APPS), *map(str, extra_path)]
        if os.environ.get("PYTHONPATH"):
            # Absolute: the server runs in log_dir, where a relative entry (such as
            # `make test-asan`'s build/asan) would name nothing, and the server would
            # quietly import the ordinary build instead.
            paths += [os.path.abspath(p) for p in os.environ["PYTHONPATH"].split(os.pathsep) if p]
        full_env["PYTHONPATH"] = os.pathsep.join(paths)
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env["PYTHONFAULTHANDLER"] = "1"
        stem = f"{app.replace(':', '.')}-w{workers}-{port}"
        out_path, err_path = log_dir / f"{stem}.stdout", log_dir / f"{stem}.stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=log_dir,
                                    env=full_env, start_new_session=True)
        server = Server(app, workers, HOST, port, proc, out_path, err_path)

        def ready() -> bool:
            if proc.poll() is not None:
                return True
            try:
                socket.create_connection((HOST, port), timeout=1.0).close()
                return True
            except OSError:
                return False

        if not wait_until(ready, STARTUP_DEADLINE) and proc.poll() is None:
            proc.kill()
            proc.wait()
            raise ServerStartError(f"{server!r} did not accept a connection within {STARTUP_DEADLINE:.0f}s\n"
                                   + server.tail())
        if proc.poll() is None:
            return server
        last = f"{server!r} exited with code {proc.returncode} before accepting connections\n" + server.tail()
        if "Address already in use" not in server.stderr():
            break
    raise ServerStartError(last)


class ServerPool:
    """Session-wide servers, one per (app, workers, extra_path), started on first use."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.servers: dict = {}
        self.errors: dict = {}

    def get(self, app: str, workers: int = 4, extra_path=()) -> Server:
        key = (app, workers, tuple(map(str, extra_path)))
        if key in self.errors:
            raise ServerStartError(self.errors[key])
        server = self.servers.get(key)
        if server is None:
            try:
                server = launch(app, workers, self.log_dir, extra_path=extra_path)
            except ServerStartError as e:
                self.errors[key] = str(e)
                raise
            self.servers[key] = server
        if not server.alive():
            pytest.fail(f"{server!r} died (exit code {server.process.returncode})\n" + server.tail())
        return server

    def stop_all(self) -> None:
        problems = []
        for server in self.servers.values():
            if not server.alive():
                problems.append(f"{server!r} had exited by itself with code {server.process.returncode}\n"
                                + server.tail())
                continue
            try:
                server.stop()
            except pytest.fail.Exception as e:
                problems.append(str(e))
        if problems:
            pytest.fail("\n\n".join(problems))


class ServerFactory:
    """Per-test servers; all stopped (SIGTERM, 10 s, else killed and failed) when the test ends."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.servers: list = []

    def __call__(self, app: str, workers: int = 2, *, cli: bool = False, env: dict | None = None,
                 extra_path=()) -> Server:
        server = launch(app, workers, self.log_dir, cli=cli, env=env, extra_path=extra_path)
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture(scope="session")
def server_pool(tmp_path_factory):
    pool = ServerPool(tmp_path_factory.mktemp("servers"))
    yield pool
    pool.stop_all()


@pytest.fixture
def start_server(tmp_path):
    factory = ServerFactory(tmp_path / "servers")
    yield factory
    factory.stop_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed test, attach the tail of the logs of every server it used."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    seen = []
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, Server):
            seen.append(value)
        elif isinstance(value, ServerFactory):
            seen.extend(value.servers)
    for server in seen:
        report.sections.append((f"server {server.app}", server.tail()))
