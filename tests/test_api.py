"""The public Python surface, in process: exports and registration-time checks."""
import pytest

import karak
from karak import Depends, HTTPException, Karak, Request, Response


def test_public_names():
    for name in ("Karak", "Depends", "Request", "Response", "HTTPException"):
        assert hasattr(karak, name), name
    assert issubclass(HTTPException, Exception)


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete", "head", "options"])
def test_async_handler_is_refused_at_registration(method):
    app = Karak()

    async def handler():
        return {}

    with pytest.raises(TypeError, match="(?i)async"):
        getattr(app, method)("/x")(handler)


def test_async_handler_is_refused_by_route():
    app = Karak()

    async def handler():
        return {}

    with pytest.raises(TypeError, match="(?i)async"):
        app.route("/x", methods=["GET", "POST"])(handler)


def test_decorators_return_the_function():
    app = Karak()

    def handler(request: Request, q: int = 1, d: str = Depends(lambda: "x")):
        return {}

    assert app.get("/x")(handler) is handler
    assert app.post("/y", status_code=201)(handler) is handler


def test_lifecycle_decorators_return_the_function():
    app = Karak()

    def hook() -> None:
        pass

    assert app.on_startup(hook) is hook
    assert app.on_shutdown(hook) is hook


def test_response_is_constructible_with_defaults():
    r = Response(content=b"x")
    assert r.status_code == 200
    assert r.body == b"x"
