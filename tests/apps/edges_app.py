"""Routes for tests/test_edges.py: inputs and outputs at the edges, found by a review of
Karak against FastAPI's behaviour (2026-12-01). Each route exists for one test there."""
import dataclasses
import threading
from typing import Annotated, Optional

from pydantic import BaseModel, Field

from karak import Cookie, Depends, Header, HTTPException, Karak, Request, Response

app = Karak()


class Item(BaseModel):
    name: str


class User(BaseModel):
    user_name: str = Field(alias="userName")


# --------------------------------------------------------------------------- responses


@app.get("/media-type-crlf")
def media_type_crlf():
    return Response(b"x", media_type="text/plain\r\nSet-Cookie: evil=1")


@app.get("/media-type-set-later")
def media_type_set_later():
    r = Response(b"x")
    r.media_type = "text/plain\r\nX-Evil: 2"
    return r


@app.get("/two-cookies")
def two_cookies():
    return Response(b"x", headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])


@app.get("/status-100")
def status_100():
    return Response(b"x", status_code=100)


@app.get("/status-205")
def status_205():
    return Response(b"body", status_code=205)


@app.get("/alias-model", response_model=User)
def alias_model():
    return User(userName="bob")


@app.get("/alias-annotation")
def alias_annotation() -> User:
    return User(userName="bob")


@app.get("/list-int", response_model=list[int])
def list_int():
    return ["1", 2]


@app.get("/list-int-bad", response_model=list[int])
def list_int_bad():
    return ["not a number"]


@app.get("/int-annotation")
def int_annotation() -> int:
    return "5"  # type: ignore[return-value]


@app.get("/dict-annotation")
def dict_annotation() -> dict:
    return {"a": 1}


# --------------------------------------------------------------------------- inputs


@app.post("/item")
def post_item(body: Item) -> dict:
    return {"name": body.name}


@app.get("/int")
def get_int(v: int) -> dict:
    return {"v": v}


@app.get("/float")
def get_float(v: float) -> dict:
    return {"v": repr(v)}  # repr: inf and nan have no JSON form


@app.get("/pint/{v}")
def get_pint(v: int) -> dict:
    return {"v": v}


@app.get("/hint")
def get_hint(x_n: Annotated[int, Header()]) -> dict:
    return {"v": x_n}


@app.get("/hstr")
def get_hstr(x_s: Annotated[str, Header()]) -> dict:
    return {"v": x_s}


@app.get("/hlist")
def get_hlist(x_tag: Annotated[list[str], Header()]) -> dict:
    return {"v": x_tag}


@app.get("/hlist-int")
def get_hlist_int(x_num: Annotated[Optional[list[int]], Header()] = None) -> dict:
    return {"v": x_num}


# --------------------------------------------------------------------------- generator dependencies

# What the session dependency saw, per request id (the test reads it back).
# Guarded by _events_lock: handlers of several workers append at once.
_events: dict[str, list[str]] = {}
_events_lock = threading.Lock()


def _log(rid: str, what: str) -> None:
    with _events_lock:
        _events.setdefault(rid, []).append(what)


def session(rid: str):
    _log(rid, "open")
    try:
        yield rid
        _log(rid, "commit")
    except HTTPException as e:
        _log(rid, f"rollback {e.status_code}")
        raise
    except Exception as e:
        _log(rid, f"rollback {type(e).__name__}")
        raise
    finally:
        _log(rid, "close")


def swallowing(rid: str):
    try:
        yield rid
    except Exception:
        _log(rid, "swallowed")


def replacing(rid: str):
    try:
        yield rid
    except ValueError:
        raise HTTPException(418, "replaced") from None


@app.get("/gen/ok")
def gen_ok(s: Annotated[str, Depends(session)]) -> dict:
    return {"ok": s}


@app.get("/gen/http")
def gen_http(s: Annotated[str, Depends(session)]) -> dict:
    raise HTTPException(409, "conflict")


@app.get("/gen/error")
def gen_error(s: Annotated[str, Depends(session)]) -> dict:
    raise ValueError("boom")


@app.get("/gen/swallowed")
def gen_swallowed(s: Annotated[str, Depends(swallowing)]) -> dict:
    raise HTTPException(409, "conflict")


@app.get("/gen/replaced")
def gen_replaced(outer: Annotated[str, Depends(session)],
                 inner: Annotated[str, Depends(replacing)]) -> dict:
    raise ValueError("boom")


def failing_commit(rid: str):
    yield rid
    _log(rid, "commit failed")
    raise ValueError("commit failed after the yield")


@app.get("/gen/fails-after")
def gen_fails_after(s: Annotated[str, Depends(failing_commit)]) -> dict:
    return {"ok": s}


@app.get("/gen/events")
def gen_events(rid: str) -> list:
    with _events_lock:
        return list(_events.get(rid, []))


@app.get("/opt")
def opt(v: Optional[int] = None) -> dict:
    return {"v": v}


@app.post("/raw-json")
def raw_json(request: Request):
    return {"parsed": request.json()}


@app.get("/cookie")
def get_cookie(session: Annotated[str, Cookie()], n: Annotated[int, Cookie()] = 0,
               ident: Annotated[Optional[str], Cookie(alias="x-id")] = None) -> dict:
    return {"session": session, "n": n, "ident": ident}


@app.get("/cookies")
def get_cookies(request: Request) -> dict:
    return request.cookies


# --------------------------------------------------------------------------- response models from other objects

class Out(BaseModel):
    name: str
    price: float


class Big(BaseModel):
    name: str
    price: float
    secret: str


@dataclasses.dataclass
class OutDC:
    name: str
    price: float
    secret: str


class Orm:  # an ORM-style row: attributes, not a dict
    def __init__(self, name, price):
        self.name, self.price, self.secret = name, price, "s3cr3t"


@app.get("/rm/model", response_model=Out)
def rm_model():
    return Big(name="w", price=1.5, secret="s")


@app.get("/rm/annotation")
def rm_annotation() -> Out:
    return Big(name="a", price=2.0, secret="s")


@app.get("/rm/list")
def rm_list() -> list[Out]:
    return [Big(name="x", price=1, secret="s"), Orm("y", 2), OutDC("z", 3.5, "s"), {"name": "d", "price": 4}]


@app.get("/rm/dataclass", response_model=Out)
def rm_dataclass():
    return OutDC(name="dc", price=3.0, secret="s")


@app.get("/rm/orm", response_model=Out)
def rm_orm():
    return Orm("orm", 3)


@app.get("/rm/orm-bad", response_model=Out)
def rm_orm_bad():
    return Orm("orm", "not a price")


# --------------------------------------------------------------------------- constraints (FastAPI's Query/Path/Header/Cookie)

from annotated_types import Gt  # noqa: E402
from pydantic import StringConstraints  # noqa: E402

from karak import Path, Query  # noqa: E402


@app.get("/c/gt")
def c_gt(n: Annotated[int, Gt(0)]) -> dict:
    return {"n": n}


@app.get("/c/field")
def c_field(n: Annotated[int, Field(le=10)] = 1, s: Annotated[str, StringConstraints(max_length=3)] = "x") -> dict:
    return {"n": n, "s": s}


@app.get("/c/query")
def c_query(q: Annotated[Optional[str], Query(max_length=5, pattern="^[a-z]+$")] = None,
            page: int = Query(1, ge=1), size: int = Query(default=10, alias="per-page", le=100),
            ids: Annotated[list[int], Query(max_length=2)] = []) -> dict:
    return {"q": q, "page": page, "size": size, "ids": ids}


@app.get("/c/path/{item_id}")
def c_path(item_id: Annotated[int, Path(gt=0, lt=1000)]) -> dict:
    return {"item_id": item_id}


@app.get("/c/header")
def c_header(x_n: Annotated[float, Header(ge=0.5)], x_tag: Annotated[str, Header(min_length=2)] = "zz") -> dict:
    return {"x_n": x_n, "x_tag": x_tag}


@app.get("/c/cookie")
def c_cookie(sid: Annotated[str, Cookie(min_length=4)]) -> dict:
    return {"sid": sid}


# --------------------------------------------------------------------------- the order of 422 errors

def order_inner(z: int):
    return z


def order_dep(b: int, x_h: Annotated[str, Header()], inner: Annotated[int, Depends(order_inner)]):
    return b


@app.post("/order/{p}")
def order(a: int, body: Item, p: int, x_own: Annotated[str, Header()],
          d: Annotated[int, Depends(order_dep)], c: Annotated[str, Cookie()]) -> dict:
    return {}


@app.get("/header-alias")
def header_alias(v: Annotated[int, Header(alias="X-Custom_Name")]) -> dict:
    return {"v": v}


# --------------------------------------------------------------------------- non-finite floats

class Reading(BaseModel):
    x: float


@app.get("/nonfinite/dict")
def nonfinite_dict():
    return {"x": float("inf")}


@app.get("/nonfinite/float")
def nonfinite_float() -> float:
    return float("nan")


@app.get("/nonfinite/model")
def nonfinite_model() -> Reading:
    return Reading(x=float("-inf"))


@app.get("/nonfinite/list")
def nonfinite_list() -> list[float]:
    return [1.5, float("inf")]
