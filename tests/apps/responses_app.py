"""Routes for tests/test_responses.py: return values, Response objects, status_code=."""
from pydantic import BaseModel

from karak import HTTPException, Karak, Response

app = Karak()


class Item(BaseModel):
    name: str
    price: float


@app.get("/dict")
def r_dict():
    return {"a": 1, "b": [1, 2], "c": {"d": None}}


@app.get("/list")
def r_list():
    return [1, "two", 3.5, None, True, {"k": "v"}]


@app.get("/str")
def r_str():
    return "hello"


@app.get("/unicode")
def r_unicode():
    return {"text": "h\u00e9llo \u2603 \U0001f600 \u2028 \"q\" \\ \n\t\x01"}


@app.get("/int")
def r_int():
    return 42


@app.get("/bigint")
def r_bigint():
    return {"big": 2**70, "neg": -(2**64)}


@app.get("/float")
def r_float():
    return 1.5


@app.get("/true")
def r_true():
    return True


@app.get("/false")
def r_false():
    return False


@app.get("/none")
def r_none():
    return None


@app.get("/none-annotated")
def r_none_annotated() -> None:
    return None


@app.get("/model")
def r_model():
    return Item(name="widget", price=2.5)


@app.get("/model-list")
def r_model_list():
    return [Item(name="a", price=1.0), Item(name="b", price=2.0)]


@app.get("/annotated")
def r_annotated() -> Item:
    return {"name": "widget", "price": 2.5, "extra": "dropped"}


@app.get("/annotated-list")
def r_annotated_list() -> list[Item]:
    return [{"name": "a", "price": 1.0, "extra": 1}, Item(name="b", price=2.0)]


@app.get("/annotated-invalid")
def r_annotated_invalid() -> Item:
    return {"name": "no price"}


@app.get("/big")
def r_big(n: int):
    return "x" * n


@app.post("/created", status_code=201)
def created():
    return {"created": True}


@app.post("/created-error", status_code=201)
def created_error():
    raise HTTPException(409, "conflict")


@app.post("/created-response", status_code=201)
def created_response():
    return Response.json({"ok": True}, status_code=200)


@app.get("/resp/bytes")
def resp_bytes():
    return Response(content=b"\x00\x01binary\xff", media_type="application/octet-stream")


@app.get("/resp/str")
def resp_str():
    return Response(content="<p>caf\u00e9</p>", media_type="text/html")


@app.get("/resp/status-headers")
def resp_status_headers():
    return Response(content=b"teapot", status_code=418, headers={"X-Custom": "1"}, media_type="text/plain")


@app.get("/resp/json")
def resp_json():
    return Response.json({"x": [1, 2]}, status_code=202, headers={"X-J": "j"})


@app.get("/resp/text")
def resp_text():
    return Response.text("hi \u2603", status_code=201, headers={"X-T": "t"})


@app.get("/resp/empty")
def resp_empty():
    return Response.empty()


@app.get("/resp/empty-headers")
def resp_empty_headers():
    return Response.empty(status_code=202, headers={"X-E": "e"})


@app.get("/resp/code/{code}")
def resp_code(code: int):
    return Response(content=b"c", status_code=code, media_type="text/plain")
