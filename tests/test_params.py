"""Handler parameters: path and query conversions, defaults, Optional, JSON bodies, and 422 errors."""
import json

import pytest


@pytest.fixture
def srv(server_pool):
    return server_pool.get("params_app:app")


def errors_of(reply) -> list:
    """The FastAPI-shaped error list of a 422, checked for shape."""
    assert reply.status == 422, reply
    assert reply.header("Content-Type").split(";")[0].strip() == "application/json"
    detail = reply.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    for err in detail:
        assert isinstance(err["type"], str)
        assert isinstance(err["loc"], list)
        assert isinstance(err["msg"], str) and err["msg"]
        assert "input" in err
    return detail


def single_error(reply) -> dict:
    detail = errors_of(reply)
    assert len(detail) == 1, detail
    return detail[0]


# --------------------------------------------------------------------------- path


@pytest.mark.parametrize("raw, value", [("0", 0), ("42", 42), ("-3", -3), ("007", 7)])
def test_path_int(srv, raw, value):
    r = srv.get("/int/" + raw)
    assert r.status == 200
    assert r.json() == {"v": value}
    assert type(r.json()["v"]) is int


def test_path_int_parse_failure(srv):
    err = single_error(srv.get("/int/abc"))
    assert err["type"] == "int_parsing"
    assert err["loc"] == ["path", "v"]
    assert err["input"] == "abc"


@pytest.mark.parametrize("raw, value", [("1.5", 1.5), ("-2.25", -2.25), ("3", 3.0), ("1e3", 1000.0)])
def test_path_float(srv, raw, value):
    r = srv.get("/float/" + raw)
    assert r.status == 200
    assert r.json() == {"v": value}
    assert type(r.json()["v"]) is float


def test_path_float_parse_failure(srv):
    err = single_error(srv.get("/float/abc"))
    assert err["type"] == "float_parsing"
    assert err["loc"] == ["path", "v"]
    assert err["input"] == "abc"


TRUE_WORDS = ["true", "True", "TRUE", "1", "yes", "YES", "on", "On", "t", "T", "y", "Y"]
FALSE_WORDS = ["false", "False", "FALSE", "0", "no", "NO", "off", "Off", "f", "F", "n", "N"]


@pytest.mark.parametrize("raw", TRUE_WORDS)
def test_path_bool_true(srv, raw):
    assert srv.get("/bool/" + raw).json() == {"v": True}


@pytest.mark.parametrize("raw", FALSE_WORDS)
def test_path_bool_false(srv, raw):
    assert srv.get("/bool/" + raw).json() == {"v": False}


@pytest.mark.parametrize("raw", ["maybe", "2", "truee", "yess"])
def test_path_bool_parse_failure(srv, raw):
    err = single_error(srv.get("/bool/" + raw))
    assert err["type"] == "bool_parsing"
    assert err["loc"] == ["path", "v"]
    assert err["input"] == raw


def test_path_str(srv):
    assert srv.get("/str/hello").json() == {"v": "hello"}
    assert srv.get("/str/123").json() == {"v": "123"}


# --------------------------------------------------------------------------- query


def test_query_defaults(srv):
    r = srv.get("/query?i=1")
    assert r.status == 200
    assert r.json() == {"i": 1, "f": 1.5, "b": False, "s": "default"}


def test_query_all_given(srv):
    r = srv.get("/query?i=-5&f=2.5&b=yes&s=text")
    assert r.json() == {"i": -5, "f": 2.5, "b": True, "s": "text"}


def test_query_float_from_integer_text_is_float(srv):
    body = srv.get("/query?i=1&f=2").json()
    assert body["f"] == 2.0 and type(body["f"]) is float


def test_query_values_are_decoded(srv):
    r = srv.get("/query?i=1&s=a%20b+c%26d%3De")
    assert r.json()["s"] == "a b c&d=e"


def test_query_unknown_parameters_are_ignored(srv):
    assert srv.get("/query?i=1&zzz=9").json()["i"] == 1


def test_query_missing_required(srv):
    err = single_error(srv.get("/query"))
    assert err["type"] == "missing"
    assert err["loc"] == ["query", "i"]
    assert err["input"] is None


def test_query_int_parse_failure(srv):
    err = single_error(srv.get("/query?i=abc"))
    assert err["type"] == "int_parsing"
    assert err["loc"] == ["query", "i"]
    assert err["input"] == "abc"


def test_query_bool_parse_failure(srv):
    err = single_error(srv.get("/query?i=1&b=perhaps"))
    assert err["type"] == "bool_parsing"
    assert err["loc"] == ["query", "b"]


def test_query_several_errors_are_all_reported(srv):
    detail = errors_of(srv.get("/query?f=x&b=y2"))
    got = {(e["type"], tuple(e["loc"])) for e in detail}
    assert got == {("missing", ("query", "i")), ("float_parsing", ("query", "f")), ("bool_parsing", ("query", "b"))}


def test_required_query_parameters_both_missing(srv):
    detail = errors_of(srv.get("/required"))
    assert {tuple(e["loc"]) for e in detail} == {("query", "name"), ("query", "count")}
    assert {e["type"] for e in detail} == {"missing"}


def test_path_and_query_errors_together(srv):
    detail = errors_of(srv.get("/mixed/x?b=y"))
    got = {(e["type"], tuple(e["loc"])) for e in detail}
    assert got == {("int_parsing", ("path", "a")), ("int_parsing", ("query", "b"))}


def test_unannotated_parameter_is_a_required_str_query(srv):
    assert srv.get("/plain?x=42").json() == {"x": "42"}
    err = single_error(srv.get("/plain"))
    assert err["type"] == "missing"
    assert err["loc"] == ["query", "x"]


def test_optional_absent(srv):
    assert srv.get("/optional").json() == {"o": None, "u": None, "s": None}


def test_optional_present(srv):
    assert srv.get("/optional?o=3&u=-4&s=hi").json() == {"o": 3, "u": -4, "s": "hi"}


def test_optional_still_validates(srv):
    err = single_error(srv.get("/optional?u=abc"))
    assert err["type"] == "int_parsing"
    assert err["loc"] == ["query", "u"]


# --------------------------------------------------------------------------- body


def test_body_model(srv):
    r = srv.request("POST", "/items", json={"name": "Widget", "price": 9.99})
    assert r.status == 200
    assert r.json() == {"name": "Widget", "price": 9.99, "tags": []}


def test_body_model_with_all_fields(srv):
    r = srv.request("POST", "/items", json={"name": "W", "price": 1, "tags": ["a", "b"]})
    assert r.json() == {"name": "W", "price": 1.0, "tags": ["a", "b"]}


def test_body_invalid_json(srv):
    r = srv.request("POST", "/items", body=b'{"name": "W", "price": ', headers={"Content-Type": "application/json"})
    err = single_error(r)
    assert err["type"] == "json_invalid"
    assert err["loc"][0] == "body"


def test_body_field_type_error(srv):
    err = single_error(srv.request("POST", "/items", json={"name": "W", "price": "cheap"}))
    assert err["type"] == "float_parsing"
    assert err["loc"] == ["body", "price"]
    assert err["input"] == "cheap"


def test_body_missing_field(srv):
    err = single_error(srv.request("POST", "/items", json={"name": "W"}))
    assert err["type"] == "missing"
    assert err["loc"] == ["body", "price"]


def test_body_nested_location(srv):
    err = single_error(srv.request("POST", "/items", json={"name": "W", "price": 1, "tags": ["ok", 5]}))
    assert err["type"] == "string_type"
    assert err["loc"] == ["body", "tags", 1]


def test_body_several_errors(srv):
    detail = errors_of(srv.request("POST", "/items", json={"price": "x"}))
    assert {(e["type"], tuple(e["loc"])) for e in detail} == {
        ("missing", ("body", "name")),
        ("float_parsing", ("body", "price")),
    }


def test_body_absent_is_422(srv):
    r = srv.request("POST", "/items")
    detail = errors_of(r)
    assert all(e["loc"][0] == "body" for e in detail)


def test_body_path_and_query_together(srv):
    r = srv.request("PUT", "/items/12?q=note", json={"name": "N", "price": 0.5})
    assert r.status == 200
    assert r.json() == {"item_id": 12, "item": {"name": "N", "price": 0.5, "tags": []}, "q": "note"}


def test_body_and_path_errors_together(srv):
    r = srv.request("PUT", "/items/x", body=json.dumps({"name": "N"}).encode(),
                    headers={"Content-Type": "application/json"})
    detail = errors_of(r)
    got = {(e["type"], tuple(e["loc"])) for e in detail}
    assert ("int_parsing", ("path", "item_id")) in got
