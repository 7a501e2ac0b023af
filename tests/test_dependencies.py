"""Depends: nesting, once-per-request caching, parameters of dependencies, errors raised in them."""
import uuid

import pytest


@pytest.fixture
def srv(server_pool):
    return server_pool.get("deps_app:app")


def test_shared_dependency_runs_once_per_request(srv):
    token = uuid.uuid4().hex
    r = srv.get("/diamond", headers={"X-Token": token})
    assert r.status == 200
    # shared() is reached through left, right (default-style Depends) and directly: called once.
    assert r.json() == {"left": "left:" + token, "right": "right:" + token, "shared": token, "calls": 1}


def test_shared_dependency_runs_again_on_the_next_request(srv):
    token = uuid.uuid4().hex
    conn = srv.connection()
    try:
        assert srv.send(conn, "GET", "/diamond", headers={"X-Token": token}).json()["calls"] == 1
        assert srv.send(conn, "GET", "/diamond", headers={"X-Token": token}).json()["calls"] == 2
    finally:
        conn.close()
    assert srv.get("/diamond", headers={"X-Token": token}).json()["calls"] == 3


def test_nested_three_levels(srv):
    assert srv.get("/nested").json() == {"v": 111}


def test_dependency_reads_path_and_query_parameters(srv):
    r = srv.get("/items/4?limit=5&offset=20")
    assert r.status == 200
    assert r.json() == {"item_id": 4, "scaled": 40, "page": {"limit": 5, "offset": 20}}


def test_dependency_query_defaults(srv):
    assert srv.get("/items/1").json() == {"item_id": 1, "scaled": 10, "page": {"limit": 10, "offset": 0}}


def test_dependency_query_validation_error(srv):
    r = srv.get("/items/1?limit=many")
    assert r.status == 422
    detail = r.json()["detail"]
    assert [(e["type"], e["loc"]) for e in detail] == [("int_parsing", ["query", "limit"])]
    assert detail[0]["input"] == "many"


def test_dependency_path_validation_error(srv):
    r = srv.get("/items/abc")
    assert r.status == 422
    detail = r.json()["detail"]
    # item_id is read by the handler and by its dependency; either may report it.
    assert detail and all(e["type"] == "int_parsing" and e["loc"] == ["path", "item_id"] for e in detail)


def test_dependency_gets_the_request(srv):
    assert srv.get("/with-request").json() == {"where": "GET /with-request"}


def test_dependency_raising_http_exception(srv):
    r = srv.get("/me")
    assert r.status == 401
    assert r.json() == {"detail": "bad token"}
    assert r.header("WWW-Authenticate") == "Bearer"


def test_dependency_passing(srv):
    r = srv.get("/me", headers={"Authorization": "Bearer good"})
    assert r.status == 200
    assert r.json() == {"user": "user1"}


def test_dependency_raising_other_exception_is_500(srv):
    r = srv.get("/dep-boom")
    assert r.status == 500
    assert r.json() == {"detail": "Internal Server Error"}
