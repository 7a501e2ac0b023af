"""Routes for tests/test_routing.py: static vs parameter, {name:path}, methods, 404/405."""
from karak import APIRouter, Karak, Request, Response

app = Karak()


@app.get("/")
def root():
    return {"route": "root"}


@app.get("/items/{item_id}")
def item_get(item_id):  # unannotated path parameter: a str
    return {"route": "item", "method": "GET", "item_id": item_id}


@app.post("/items/{item_id}")
def item_post(item_id: str):
    return {"route": "item", "method": "POST", "item_id": item_id}


@app.put("/items/{item_id}")
def item_put(item_id: str):
    return {"route": "item", "method": "PUT", "item_id": item_id}


@app.patch("/items/{item_id}")
def item_patch(item_id: str):
    return {"route": "item", "method": "PATCH", "item_id": item_id}


@app.delete("/items/{item_id}")
def item_delete(item_id: str):
    return {"route": "item", "method": "DELETE", "item_id": item_id}


# Registered after the parameter route on purpose: static must win regardless of order.
@app.get("/items/special")
def item_special():
    return {"route": "special"}


@app.get("/a/static/x")
def a_static_x():
    return {"route": "a-static-x"}


@app.get("/a/{p}/y")
def a_param_y(p: str):
    return {"route": "a-param-y", "p": p}


@app.get("/users/{user_id}/posts/{post_id}")
def user_post(user_id: int, post_id: str):
    return {"user_id": user_id, "post_id": post_id}


@app.get("/files/{file_path:path}")
def files(file_path: str):
    return {"file_path": file_path}


@app.get("/only-get")
def only_get():
    return {"route": "only-get"}


@app.post("/only-post")
def only_post():
    return {"route": "only-post"}


@app.head("/head-only")
def head_only():
    return Response(content=b"", status_code=200, headers={"X-Head": "yes"})


@app.options("/opts")
def opts():
    return {"route": "options"}


@app.route("/multi", methods=["GET", "POST"])
def multi(request: Request):
    return {"route": "multi", "method": request.method}


@app.route("/dav/{name}", methods=["PROPFIND"])
def propfind(name: str, request: Request):
    return {"route": "dav", "method": request.method, "name": name}


@app.get("/echo-path")
def echo_path(request: Request):
    return {"path": request.path}


# ---- APIRouter: a resource module's routes, included under prefixes ----------
items = APIRouter(prefix="/items")


@items.get("")
def items_list():
    return {"route": "router-list"}


@items.get("/{item_id}")
def items_one(item_id: int):
    return {"route": "router-item", "item_id": item_id}


@items.post("/", status_code=201)
def items_create():
    return {"route": "router-create"}


admin = APIRouter()


@admin.get("/stats")
def admin_stats():
    return {"route": "admin-stats"}


admin.include_router(items, prefix="/nested")  # a router inside a router
app.include_router(items, prefix="/api")
app.include_router(items, prefix="/v2/{tenant}")  # the same router twice; a parameter in the prefix
app.include_router(admin, prefix="/admin")


@items.get("/late")  # declared after the includes: not served
def items_late():
    return {"route": "late"}


@app.get("/withslash/")
def withslash():
    return {"route": "withslash"}


@app.get("/\\x")  # a static path starting with a backslash (see the redirect tests)
def backslash_x():
    return {"route": "backslash-x"}


# The same kind of routes with FastAPI's redirect_slashes turned off.
app_noredirect = Karak(redirect_slashes=False)
app_noredirect.get("/only-get")(only_get)
