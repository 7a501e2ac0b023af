"""HTTPException and unhandled exceptions: statuses, bodies, headers, logging, no leaks."""
import uuid

import pytest

from karak import HTTPException


@pytest.fixture
def srv(server_pool):
    return server_pool.get("errors_app:app")


def assert_detail(reply, status, detail):
    assert reply.status == status, reply
    assert (reply.header("Content-Type") or "").split(";")[0].strip() == "application/json"
    assert reply.json() == {"detail": detail}


def test_http_exception_positional(srv):
    assert_detail(srv.get("/missing"), 404, "Item not found")


def test_http_exception_keywords(srv):
    assert_detail(srv.get("/keywords"), 403, "Forbidden here")


def test_http_exception_headers_are_sent(srv):
    r = srv.get("/with-headers")
    assert_detail(r, 401, "Not authenticated")
    assert r.header("X-A") == "1"
    assert r.header("WWW-Authenticate") == "Bearer"


def test_http_exception_detail_dict(srv):
    assert_detail(srv.get("/detail-dict"), 400, {"code": 7, "reasons": ["a", "b"]})


def test_http_exception_detail_list(srv):
    assert_detail(srv.get("/detail-list"), 409, [1, "two", None])


def test_http_exception_without_detail_uses_the_status_phrase(srv):
    assert_detail(srv.get("/no-detail"), 404, "Not Found")


def test_unhandled_exception_is_a_bare_500(srv):
    token = uuid.uuid4().hex
    r = srv.get(f"/boom?token={token}")
    assert_detail(r, 500, "Internal Server Error")
    assert token.encode() not in r.body
    assert b"Traceback" not in r.body
    assert b"RuntimeError" not in r.body


def test_unhandled_exception_traceback_is_logged(srv):
    token = uuid.uuid4().hex
    assert srv.get(f"/boom?token={token}").status == 500
    assert srv.wait_for_output("secret-boom-" + token), srv.tail()
    log = srv.stderr()
    assert "Traceback" in log
    assert "RuntimeError" in log
    # The log line names the request that failed.
    assert f"Exception in handler for GET /boom?token={token}" in log


def test_exception_in_dependency_is_500_and_logged(srv):
    token = uuid.uuid4().hex
    r = srv.get(f"/boom-dep?token={token}")
    assert_detail(r, 500, "Internal Server Error")
    assert token.encode() not in r.body
    assert srv.wait_for_output("secret-dep-" + token), srv.tail()
    assert "ValueError" in srv.stderr()


def test_connection_survives_errors(srv):
    conn = srv.connection()
    try:
        assert srv.send(conn, "GET", "/boom?token=keepalive").status == 500
        sock = conn.sock  # http.client drops it (None) if the server said it would close
        assert sock is not None
        assert srv.send(conn, "GET", "/missing").status == 404
        assert srv.send(conn, "GET", "/nope").status == 404
        r = srv.send(conn, "GET", "/ok")
        assert r.status == 200
        assert r.json() == {"ok": True}
        assert conn.sock is sock
    finally:
        conn.close()


def test_http_exception_object():
    e = HTTPException(418, "short and stout", headers={"X-T": "1"})
    assert isinstance(e, Exception)
    assert e.status_code == 418
    assert e.detail == "short and stout"
    assert e.headers == {"X-T": "1"}
