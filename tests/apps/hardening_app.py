"""App for the hardening proofs: tests/test_limits.py, test_timeouts.py, test_shutdown.py,
test_vectors_live.py, scripts/soak.py and scripts/idle_conns.py.

Served two ways, so that both ways of setting limits are exercised:
  python -m karak hardening_app:app --port P --workers N --header-timeout 1 ...   (the CLI)
  python tests/apps/hardening_app.py PORT WORKERS '{"header_timeout": 1, ...}'    (app.run kwargs)

Events (startup, begin, end, shutdown) are appended to the file named by
$HARDENING_EVENTS, one per line, so a test can see what ran and in which order.
"""
import json
import os
import sys
import time

from karak import Karak, Request, Response

app = Karak()

EVENTS = os.environ.get("HARDENING_EVENTS", os.devnull)
ECHO_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"]


def record(event: str) -> None:
    with open(EVENTS, "a") as f:
        f.write(event + "\n")


SERVER = []  # the running server, kept for the shutdown hook (app._server is gone by then)


@app.on_startup
def startup() -> None:
    SERVER[:] = [app._server]
    record("startup")


@app.on_shutdown
def shutdown() -> None:
    record("shutdown")
    print("hardening_app: on_shutdown ran", flush=True)
    if SERVER:
        print(f"hardening_app: sweeps {SERVER[0].sweeps}", flush=True)


@app.get("/hello")
def hello():
    return {"hello": "world"}


@app.get("/slow")
def slow(secs: float = 1.0, tag: str = "slow"):
    """Sleeps secs seconds; records begin/end (with the tag) around the sleep."""
    record(f"begin:{tag}")
    time.sleep(secs)
    record(f"end:{tag}")
    return {"slept": secs, "tag": tag}


@app.get("/forever")
def forever():
    """Never returns (until the process exits): the grace period must end the wait."""
    record("begin:forever")
    while True:
        time.sleep(0.05)


@app.get("/inject")
def inject(kind: str = "crlf"):
    """Returns a Response whose app-set header carries a forbidden byte (or a bad name)."""
    headers = {
        "crlf": {"X-Injected": "a\r\nB: c"},
        "lf": {"X-Injected": "a\nB: c"},
        "cr": {"X-Injected": "a\rB: c"},
        "nul": {"X-Injected": "a\x00b"},
        "name": {"X-Bad\r\nB": "c"},
        "ok": {"X-Injected": "fine"},
    }[kind]
    return Response(content=b"should-not-be-sent", headers=headers, media_type="text/plain")


@app.get("/stats/heads")
def heads_parsed():
    """How many times the server has run its request parser (test_limits.py: a head or
    body that arrives a byte at a time must not be re-parsed on every read)."""
    return {"heads_parsed": app._server.heads_parsed}


@app.post("/upload")
def upload(request: Request):
    return {"length": len(request.body)}


@app.get("/big")
def big(n: int = 1024):
    return Response(content=b"x" * n, media_type="application/octet-stream")


def echo(request: Request):
    """What the engine parsed: method, path (decoded), raw query, body (hex), header count."""
    return {
        "method": request.method,
        "path": request.path,
        "query": request.query_string,
        "body_hex": request.body.hex(),
        "headers": len(list(request.headers.items())) if hasattr(request.headers, "items") else None,
    }


app.route("/", methods=ECHO_METHODS)(echo)
app.route("/{rest:path}", methods=ECHO_METHODS)(echo)


def main(argv: list) -> None:
    if len(argv) not in (3, 4):
        sys.exit("usage: hardening_app.py PORT WORKERS [JSON-LIMITS]")
    limits = json.loads(argv[3]) if len(argv) == 4 else {}
    app.run(host="127.0.0.1", port=int(argv[1]), workers=int(argv[2]), **limits)


if __name__ == "__main__":
    main(sys.argv)
