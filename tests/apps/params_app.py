"""Routes for tests/test_params.py: path/query conversions, defaults, Optional, body models, 422."""
from typing import Optional

from pydantic import BaseModel

from karak import Karak

app = Karak()


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/int/{v}")
def path_int(v: int):
    return {"v": v}


@app.get("/float/{v}")
def path_float(v: float):
    return {"v": v}


@app.get("/bool/{v}")
def path_bool(v: bool):
    return {"v": v}


@app.get("/str/{v}")
def path_str(v: str):
    return {"v": v}


@app.get("/query")
def query(i: int, f: float = 1.5, b: bool = False, s: str = "default"):
    return {"i": i, "f": f, "b": b, "s": s}


@app.get("/optional")
def optional(o: Optional[int] = None, u: int | None = None, s: Optional[str] = None):
    return {"o": o, "u": u, "s": s}


@app.get("/required")
def required(name: str, count: int):
    return {"name": name, "count": count}


@app.get("/plain")
def plain(x):  # unannotated, no default: a required str query parameter
    return {"x": x}


@app.get("/mixed/{a}")
def mixed(a: int, b: int):
    return {"a": a, "b": b}


@app.post("/items")
def create_item(item: Item):
    return {"name": item.name, "price": item.price, "tags": item.tags}


@app.put("/items/{item_id}")
def update_item(item_id: int, item: Item, q: Optional[str] = None):
    return {"item_id": item_id, "item": item.model_dump(), "q": q}
