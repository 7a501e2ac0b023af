"""Every HTTP vector of tests/vectors/http against the live server.

The C tests (tests/c/test_parse.c) run each vector against the parser, whole and split
at every offset. Here the same bytes go to a real server (hardening_app, whose
catch-all route echoes method, path, raw query and body), with the vector's limits:

  expect: status NNN   the first final response has status NNN, says
                       Connection: close, and nothing follows it before the close
                       (so nothing after the bad bytes was served);
                       decided_at: N   also: the first N bytes alone get that status;
  expect: ok           a 2xx (405 for a standard method no route has, 501 for a
                       method neither HTTP nor a route defines), Connection: close
                       exactly when keep_alive is 0, and the echoed method, path,
                       query and body are the vector's (path percent-decoded);
  expect: incomplete   the client then half-closes: no final response comes back
                       (at most a 100 Continue) and the server closes.

Each vector is sent whole, and split in two at its middle with a pause between the
parts (the server must resume a partial request exactly as the parser does).

Format of the files: tests/c/test_parse.c (top comment) and tests/vectors/http/README.md.
"""
import re
import socket
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))
from hardening_app import ECHO_METHODS  # noqa: E402

# RFC 9110 section 9 and PATCH: a route may lack them (405); any other method is 501.
STANDARD_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
from hardening_launch import launch, recv_until_close  # noqa: E402

from conftest import RawConnection  # noqa: E402

VECTORS = Path(__file__).resolve().parent / "vectors" / "http"
LIMIT_NAMES = {  # vector limit -> server option
    "max_request_line": "max_request_line",
    "max_head": "max_header_bytes",
    "max_headers": "max_headers",
    "max_body": "max_body",
}


# --------------------------------------------------------------------------- the format


def unescape(text: str) -> bytes:
    out = bytearray()
    i = 0
    raw = text.encode("utf-8")
    while i < len(raw):
        c = raw[i]
        if c != 0x5C:  # backslash
            out.append(c)
            i += 1
            continue
        nxt = raw[i + 1:i + 2]
        if nxt == b"r":
            out += b"\r"
        elif nxt == b"n":
            out += b"\n"
        elif nxt == b"t":
            out += b"\t"
        elif nxt == b"\\":
            out += b"\\"
        elif nxt == b"x":
            out.append(int(raw[i + 2:i + 4], 16))
            i += 2
        else:
            raise ValueError(f"bad escape in {text!r}")
        i += 2
    return bytes(out)


class Vector:
    def __init__(self, file: str, line: int, title: str):
        self.file, self.line, self.title = file, line, title
        self.raw = b""
        self.fields: dict = {}
        self.headers: list = []
        self.limits: dict = {}
        self.expect = None
        self.status = None
        self.decided_at = None

    @property
    def id(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.title).strip("-")[:60]
        return f"{self.file[:2]}:{self.line}:{slug}"


def load_vectors() -> list:
    vectors = []
    for path in sorted(VECTORS.glob("*.txt")):
        cur = None
        for lineno, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            if not line or line.startswith("#"):
                continue
            if line.startswith("==="):
                cur = Vector(path.name, lineno, line[3:].strip())
                vectors.append(cur)
                continue
            key, _, val = line.partition(":")
            if val.startswith(" "):
                val = val[1:]
            if key == "raw":
                cur.raw += unescape(val)
            elif key == "raw-repeat":
                count, _, unit = val.partition(" ")
                cur.raw += unescape(unit) * int(count)
            elif key == "limits":
                for tok in val.split():
                    k, _, v = tok.partition("=")
                    cur.limits[k] = int(v)
            elif key == "expect":
                if val.startswith("status "):
                    cur.expect, cur.status = "status", int(val[7:])
                else:
                    cur.expect = val
            elif key == "decided_at":
                cur.decided_at = int(val)
            elif key == "header":
                cur.headers.append(val)
            elif key != "why":
                cur.fields[key] = val
    return vectors


ALL = load_vectors()


def limits_key(v: Vector) -> tuple:
    return tuple(sorted(v.limits.items()))


# --------------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """One server per distinct set of vector limits, started on first use."""
    log_dir = tmp_path_factory.mktemp("vector-servers")
    started: dict = {}

    def get(key: tuple):
        if key not in started:
            opts = {LIMIT_NAMES[k]: v for k, v in key}
            # Short timeouts: an "incomplete" vector must never wait on them (it half-closes).
            started[key] = launch(log_dir, workers=2, header_timeout=10, body_timeout=10, **opts)
        return started[key]

    yield get
    problems = []
    for srv in started.values():
        if not srv.alive():
            problems.append(f"{srv!r} died with code {srv.process.returncode}\n{srv.tail()}")
        elif srv.stop() != 0:
            problems.append(f"{srv!r} exited with code {srv.process.returncode}\n{srv.tail()}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- exchange


def send_parts(conn: RawConnection, parts: list) -> None:
    for i, part in enumerate(parts):
        if i:
            time.sleep(0.005)  # a separate segment, most of the time; correctness must not depend on it
        try:
            conn.send(part)
        except (BrokenPipeError, ConnectionResetError):
            return  # the server answered early (an error decided before the end) and closed


def final_reply(conn: RawConnection, head_request: bool = False):
    """The first final (non-1xx) response."""
    while True:
        reply = conn.read_reply(head_request=head_request)
        if reply.status >= 200:
            return reply
        assert reply.status == 100, reply


def check_error(srv, v: Vector, data: bytes) -> None:
    with RawConnection(srv.host, srv.port, timeout=10) as conn:
        send_parts(conn, [data] if len(data) < 2 else [data[: len(data) // 2], data[len(data) // 2:]])
        reply = final_reply(conn)
        assert reply.status == v.status, f"{v.title}: got {reply.status}, want {v.status}\n{reply!r}"
        assert reply.header("Connection", "").lower() == "close", reply
        rest, how = recv_until_close(conn.sock, 10)
        assert rest == b"" and not conn.buf, f"bytes after the error response: {bytes(conn.buf) + rest!r}"
        assert how in ("eof", "reset"), how


def split_points(v: Vector) -> list:
    n = len(v.raw)
    return [None] if n < 2 else [None, n // 2]


@pytest.mark.parametrize("v", ALL, ids=[v.id for v in ALL])
def test_vector(servers, v):
    if v.limits.get("max_headers") == 0:
        pytest.skip("the server requires max_headers >= 1 (max_headers=0 is a parser-only case)")
    srv = servers(limits_key(v))
    for split in split_points(v):
        data = v.raw
        parts = [data] if split is None else [data[:split], data[split:]]
        if v.expect == "status":
            check_error(srv, v, data) if split is None else check_error_split(srv, v, parts)
        elif v.expect == "ok":
            check_ok(srv, v, parts)
        elif v.expect == "incomplete":
            check_incomplete(srv, v, parts)
        else:
            pytest.fail(f"vector without expect: {v.title}")
    if v.expect == "status" and v.decided_at is not None:
        check_error(srv, v, v.raw[: v.decided_at])


def check_error_split(srv, v: Vector, parts: list) -> None:
    with RawConnection(srv.host, srv.port, timeout=10) as conn:
        send_parts(conn, parts)
        reply = final_reply(conn)
        assert reply.status == v.status, f"{v.title} (split): got {reply.status}, want {v.status}\n{reply!r}"
        assert reply.header("Connection", "").lower() == "close", reply
        rest, how = recv_until_close(conn.sock, 10)
        assert rest == b"" and not conn.buf, f"bytes after the error response: {bytes(conn.buf) + rest!r}"


def check_incomplete(srv, v: Vector, parts: list) -> None:
    with RawConnection(srv.host, srv.port, timeout=10) as conn:
        send_parts(conn, parts)
        conn.sock.shutdown(socket.SHUT_WR)
        data, how = recv_until_close(conn.sock, 10)
    assert how in ("eof", "reset"), how
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"
    assert data in (b"", interim), f"{v.title}: a response to an incomplete request: {data!r}"


def decoded_path(path: bytes):
    try:
        return urllib.parse.unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        return None


def check_ok(srv, v: Vector, parts: list) -> None:
    f = v.fields
    method = f.get("method")
    if method is None:
        method = v.raw.lstrip(b"\r\n").split(b" ", 1)[0].decode("latin-1")
    is_head = method == "HEAD"
    with RawConnection(srv.host, srv.port, timeout=10) as conn:
        send_parts(conn, parts)
        reply = final_reply(conn, head_request=is_head)
        closing = reply.header("Connection", "").lower() == "close"
        if closing:
            rest, how = recv_until_close(conn.sock, 10)
            assert how in ("eof", "reset"), how
    where = f"{v.title}: {reply!r}"
    if method not in ECHO_METHODS + ["HEAD"]:
        assert reply.status == (405 if method in STANDARD_METHODS else 501), where
    else:
        assert 200 <= reply.status < 300, where
    if "keep_alive" in f:
        assert closing == (f["keep_alive"] == "0"), f"{v.title}: Connection header {reply.header('Connection')!r}"
    if reply.status in (405, 501) or is_head or f.get("path") == "*":
        return
    echo = reply.json()
    assert echo["method"] == method, where
    if "path" in f:
        want = decoded_path(unescape(f["path"]))
        if want is not None:
            assert echo["path"] == want, where
    if "query" in f:
        q = f["query"]
        want = "" if q == "(none)" else unescape(q).decode("latin-1")
        assert echo["query"] == want, where
    if f.get("body", "none") != "none":
        assert bytes.fromhex(echo["body_hex"]) == unescape(f.get("data", "")), where
    else:
        assert echo["body_hex"] == "", where
