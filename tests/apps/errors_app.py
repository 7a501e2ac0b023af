"""Routes for tests/test_errors.py: HTTPException and unhandled exceptions."""
from typing import Annotated

from karak import Depends, HTTPException, Karak

app = Karak()


@app.get("/ok")
def ok():
    return {"ok": True}


@app.get("/missing")
def missing():
    raise HTTPException(404, "Item not found")


@app.get("/keywords")
def keywords():
    raise HTTPException(status_code=403, detail="Forbidden here")


@app.get("/with-headers")
def with_headers():
    raise HTTPException(401, "Not authenticated", headers={"X-A": "1", "WWW-Authenticate": "Bearer"})


@app.get("/detail-dict")
def detail_dict():
    raise HTTPException(400, {"code": 7, "reasons": ["a", "b"]})


@app.get("/detail-list")
def detail_list():
    raise HTTPException(409, [1, "two", None])


@app.get("/no-detail")
def no_detail():
    raise HTTPException(404)


@app.get("/boom")
def boom(token: str):
    raise RuntimeError("secret-boom-" + token)


def failing_dependency(token: str) -> str:
    raise ValueError("secret-dep-" + token)


@app.get("/boom-dep")
def boom_dep(value: Annotated[str, Depends(failing_dependency)]):
    return {"value": value}
