"""Routes for tests/test_request.py: everything a handler can read from Request."""
import hashlib

from karak import Karak, Request

app = Karak()


def describe(request: Request) -> dict:
    return {
        "method": request.method,
        "path": request.path,
        "query_string": request.query_string,
        "query_params": request.query_params,
        "q_first": request.query("q"),
        "q_missing": request.query("zz"),
        "q_missing_default": request.query("zz", "dflt"),
        "path_params": request.path_params,
        "body": request.body.decode("latin-1"),
        "body_is_bytes": isinstance(request.body, bytes),
    }


@app.get("/req/{name}")
def req_get(name: str, request: Request):
    return describe(request)


@app.post("/req/{name}")
def req_post(name: str, request: Request):
    return describe(request)


@app.get("/typed/{n}")
def typed(n: int, request: Request):
    return {"n": n, "path_params": request.path_params}


@app.post("/json")
def parse_json(request: Request):
    return {"parsed": request.json()}


@app.post("/digest")
def digest(request: Request):
    return {"len": len(request.body), "sha256": hashlib.sha256(request.body).hexdigest()}


@app.get("/headers")
def headers(request: Request):
    h = request.headers
    try:
        h["x-absent"]
        keyerror = False
    except KeyError:
        keyerror = True
    return {
        "lower": h["x-custom"],
        "upper": h["X-CUSTOM"],
        "get": h.get("X-Custom"),
        "get_default": h.get("x-absent", "dflt"),
        "get_none": h.get("x-absent"),
        "multi": h.getlist("x-multi"),
        "multi_absent": h.getlist("x-absent"),
        "in_lower": "x-custom" in h,
        "in_mixed": "X-Custom" in h,
        "in_absent": "x-absent" in h,
        "keyerror": keyerror,
        "len": len(h),
        "items": [[k.lower(), v] for k, v in h.items()],
    }


@app.get("/repr/{name}")
def req_repr(name: str, request: Request):
    return {"repr": repr(request)}
