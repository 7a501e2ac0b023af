"""Routes for tests/test_dependencies.py: nested Depends, per-request caching, errors."""
import threading
from collections import Counter
from typing import Annotated

from karak import Depends, HTTPException, Karak, Request

app = Karak()

CALLS: Counter = Counter()  # token -> calls of shared(); guarded by LOCK
LOCK = threading.Lock()


def token(request: Request) -> str:
    return request.headers.get("x-token", "none")


def shared(tok: Annotated[str, Depends(token)]) -> str:
    with LOCK:
        CALLS[tok] += 1
    return tok


def left(tok: Annotated[str, Depends(shared)]) -> str:
    return "left:" + tok


def right(tok: str = Depends(shared)) -> str:
    return "right:" + tok


@app.get("/diamond")
def diamond(
    l_value: Annotated[str, Depends(left)],
    r_value: Annotated[str, Depends(right)],
    s_value: Annotated[str, Depends(shared)],
):
    with LOCK:
        calls = CALLS[s_value]
    return {"left": l_value, "right": r_value, "shared": s_value, "calls": calls}


def level3() -> int:
    return 1


def level2(x: Annotated[int, Depends(level3)]) -> int:
    return x + 10


def level1(x: Annotated[int, Depends(level2)]) -> int:
    return x + 100


@app.get("/nested")
def nested(v: Annotated[int, Depends(level1)]):
    return {"v": v}


def scaled_id(item_id: int) -> int:  # a path parameter read by a dependency
    return item_id * 10


def pager(limit: int = 10, offset: int = 0) -> dict:  # query parameters read by a dependency
    return {"limit": limit, "offset": offset}


@app.get("/items/{item_id}")
def get_item(
    item_id: int,
    scaled: Annotated[int, Depends(scaled_id)],
    page: Annotated[dict, Depends(pager)],
):
    return {"item_id": item_id, "scaled": scaled, "page": page}


def request_path(request: Request) -> str:
    return request.method + " " + request.path


@app.get("/with-request")
def with_request(where: str = Depends(request_path)):
    return {"where": where}


def auth(request: Request) -> str:
    if request.headers.get("authorization") != "Bearer good":
        raise HTTPException(401, "bad token", headers={"WWW-Authenticate": "Bearer"})
    return "user1"


@app.get("/me")
def me(user: Annotated[str, Depends(auth)]):
    return {"user": user}


def exploding() -> str:
    raise RuntimeError("dependency exploded")


@app.get("/dep-boom")
def dep_boom(v: Annotated[str, Depends(exploding)]):
    return {"v": v}
