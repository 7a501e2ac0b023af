"""Body parameters beyond one model: several of them, Body(embed=True), Body() on a
scalar, aliases, defaults, and a body member read by a dependency (tests/test_body.py;
FastAPI's answers for the same app and requests are what the tests expect)."""
from typing import Annotated, Optional

from pydantic import BaseModel

from karak import Body, Depends, Karak

app = Karak()


class Item(BaseModel):
    name: str
    price: float


class User(BaseModel):
    username: str


@app.post("/two")
def two(item: Item, user: User) -> dict:
    return {"item": item, "user": user}


@app.post("/embed")
def embed(item: Annotated[Item, Body(embed=True)]) -> dict:
    return {"item": item}


@app.post("/scalar")
def scalar(item: Item, importance: Annotated[int, Body(gt=0)]) -> dict:
    return {"item": item, "importance": importance}


@app.post("/single_scalar")
def single_scalar(x: Annotated[int, Body()]) -> dict:
    return {"x": x}


@app.post("/optional")
def optional(item: Item, note: Annotated[Optional[str], Body()] = None,
             n: Annotated[int, Body()] = 3) -> dict:
    return {"item": item, "note": note, "n": n}


@app.post("/alias")
def alias(item: Annotated[Item, Body(alias="it")], k: Annotated[int, Body(alias="K")]) -> dict:
    return {"item": item, "k": k}


def extra_dep(extra: Annotated[str, Body()]) -> str:
    return extra


@app.post("/dep")
def withdep(item: Item, extra: Annotated[str, Depends(extra_dep)]) -> dict:
    return {"item": item, "extra": extra}


def same_name_dep(item: Item) -> str:
    return item.name.upper()


@app.post("/shared")
def shared(item: Item, upper: Annotated[str, Depends(same_name_dep)]) -> dict:
    return {"item": item, "upper": upper}


@app.post("/embed_default")
def embed_default(item: Annotated[Optional[Item], Body(embed=True)] = None) -> dict:
    return {"item": item}


@app.post("/lst")
def lst(tags: Annotated[list[str], Body()], item: Item) -> dict:
    return {"tags": tags, "item": item}


@app.post("/untyped")
def untyped(a=Body(), b=Body(default=0)) -> dict:
    return {"a": a, "b": b}
