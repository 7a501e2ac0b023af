"""Objects that user code shares between threads while the server sends them
(tests/test_sharing.py): a module-level Response returned by one route and
rewritten by another, header lists and header values whose __str__ changes the
Response being sent, and a Request kept by one handler and read by others.

Every body this app ever gives SHARED is one letter repeated, and its
Content-Type names that letter and the length, so a client can tell an intact
answer (one of the states SHARED was in) from a torn or freed one.
"""
import threading

from karak import Karak, Request, Response

app = Karak()


def state(i: int) -> tuple:
    letter = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i % 26]
    n = 1 + (i * 7919) % 20000  # sizes from tiny to past a mimalloc page
    return letter.encode() * n, f"text/x-{letter}; n={n}"


#: Every (body, Content-Type) SHARED is ever given, made once: the mutating
#: route only assigns, so that two of them race on the same field often.
STATES = [state(i) for i in range(512)]
SHARED = Response(STATES[0][0], media_type=STATES[0][1], headers={"x-state": "0"})
PAIRS = Response(b"pairs", media_type="text/plain", headers=[("x-a", "1"), ("x-b", "2")])
_lock = threading.Lock()
_counter = [0]


@app.get("/shared")
def shared():
    return SHARED


@app.get("/mutate")
def mutate(n: int = 50):
    for _ in range(n):
        with _lock:
            _counter[0] += 1
            i = _counter[0]
        body, ctype = STATES[i % len(STATES)]
        SHARED.body = body
        SHARED.media_type = ctype
        SHARED.headers = {"x-state": str(i)} if i % 2 else [("x-state", str(i)), ("x-odd", "no")]
        SHARED.status_code = 200 + i % 2  # 200 or 201
    return {"ok": True}


@app.get("/pairs")
def pairs():
    return PAIRS


@app.get("/pairs/mutate")
def pairs_mutate(n: int = 50):
    """Rewrites PAIRS' own header list in place (append, clear, replace items)."""
    headers = PAIRS.headers
    for i in range(n):
        with _lock:  # the mutators take turns; the server's readers do not wait
            headers.append(("x-c", str(i)))
            headers.clear()
            headers.extend([("x-a", "1"), ("x-b", str(i))])
            headers[0] = ("x-a", str(i))
    return {"ok": True}


# ---- header values whose __str__ changes what is being sent -----------------

class ClearsList:
    """A header value whose __str__ empties the list that holds it."""

    def __init__(self) -> None:
        self.response = None

    def __str__(self) -> str:
        self.response.headers.clear()
        # Allocate and drop objects of the freed pairs' sizes, so that freed
        # memory is reused at once rather than left intact by chance.
        junk = [("x-junk", "j" * 8) for _ in range(1000)]
        del junk
        return "cleared"


@app.get("/evil/clear-list")
def evil_clear_list():
    value = ClearsList()
    r = Response(b"list", media_type="text/plain",
                 headers=[("x-before", "b"), ("x-evil", value), ("x-after", "a")])
    value.response = r
    return r


OLD_BODY = b"O" * 100_000
NEW_BODY = b"N" * 37
OLD_TYPE = "text/x-old-" + "o" * 40
NEW_TYPE = "text/x-new"


class ReplacesBody:
    """A header value whose __str__ replaces the body and media type being sent."""

    def __init__(self) -> None:
        self.response = None

    def __str__(self) -> str:
        self.response.body = NEW_BODY
        self.response.media_type = NEW_TYPE
        # Reuse the memory the old body and type had, if they were freed.
        global _reuse
        _reuse = [b"Z" * 100_000 for _ in range(8)] + ["text/x-zzz-" + "z" * 40 for _ in range(64)]
        return "replaced"


_reuse: list = []


@app.get("/evil/replace-body")
def evil_replace_body():
    value = ReplacesBody()
    # Fresh copies: the only references are the Response's, so replacing them frees them.
    r = Response(bytes(bytearray(OLD_BODY)), media_type="".join(list(OLD_TYPE)),
                 headers={"x-evil": value})
    value.response = r
    return r


class Raises:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


@app.get("/evil/raises")
def evil_raises():
    return Response(b"never", headers=[("x-evil", Raises())])


# ---- a Request shared between threads ------------------------------------

KEPT: list = []


@app.post("/request/keep")
def request_keep(request: Request):
    KEPT[:] = [request]
    return {"kept": True}


@app.get("/request/read")
def request_read():
    if not KEPT:
        return {"seen": None}
    r = KEPT[0]
    return {
        "method": r.method,
        "path": r.path,
        "query": r.query_params.get("q"),
        "headers": r.headers.get("x-probe"),
        "cookies": r.cookies.get("c"),
        "json": r.json(),
        "qs": r.query_string,
    }
