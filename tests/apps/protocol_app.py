"""Routes for tests/test_protocol.py: framing, keep-alive, pipelining, HEAD, malformed input."""
from karak import Karak, Request, Response

app = Karak()


@app.get("/")
def root():
    return {"hello": "world"}


@app.get("/n/{n}")
def number(n: int):
    return {"n": n}


@app.post("/echo")
def echo(request: Request):
    return Response(content=request.body, media_type="application/octet-stream")


@app.get("/empty")
def empty():
    return None


@app.get("/error")
def error():
    raise RuntimeError("protocol_app /error")


@app.post("/only-post")
def only_post():
    return {"ok": True}
