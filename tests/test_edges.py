"""Inputs and outputs at the edges: bugs found by a review of Karak against FastAPI's
behaviour (2026-12-01), each test written to fail before its fix.

- a response's media_type is a header value: CR/LF in it must never reach the wire;
- header pairs keep repeated names (two Set-Cookie);
- a 1xx status cannot be a final response; decorator status codes are checked;
- response models serialise by alias, and a response_model/return annotation of a
  plain type (list[int], int) validates and converts, as FastAPI does;
- a body that is not UTF-8, or an int longer than Python's 4300-digit limit, is the
  client's error (422), not a 500;
- int and float parameters follow pydantic's lax rules exactly (checked against
  pydantic itself);
- Header() values that are not UTF-8 are read as Latin-1, as Request.headers does;
- a `yield` dependency sees the handler's exception (gen.throw), so the usual
  try/except/rollback pattern runs.
"""
import uuid

import pytest
from pydantic import TypeAdapter, ValidationError

from karak import Karak, Response


@pytest.fixture
def srv(server_pool):
    return server_pool.get("edges_app:app")


# --------------------------------------------------------------------------- media type


@pytest.mark.parametrize("path", ["/media-type-crlf", "/media-type-set-later"])
def test_media_type_with_crlf_is_refused_not_sent(srv, path):
    with srv.raw() as c:
        c.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        r = c.read_reply()
    assert r.status == 500, r
    assert b"evil" not in r.head.lower() and b"x-evil" not in r.head.lower(), r.head
    assert srv.wait_for_output("control character", "stderr")


def test_media_type_must_be_str_or_none():
    r = Response(b"x")
    with pytest.raises(TypeError):
        r.media_type = 5
    r.media_type = None
    assert r.media_type is None
    r.media_type = "text/csv"
    assert r.media_type == "text/csv"


# --------------------------------------------------------------------------- headers


def test_header_pairs_keep_repeated_names(srv):
    with srv.raw() as c:
        c.send(b"GET /two-cookies HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_reply()
    assert r.status == 200
    assert r.header_all("Set-Cookie") == ["a=1", "b=2"]


def test_header_pairs_are_kept_as_pairs_on_the_object():
    r = Response(b"x", headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    assert list(r.headers) == [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    assert Response(b"x", headers={"A": "1"}).headers == {"A": "1"}


# --------------------------------------------------------------------------- status codes


@pytest.mark.parametrize("code", [0, 42, 100, 101, 199, 600, 1000])
def test_response_status_outside_200_599_is_refused(code):
    with pytest.raises(ValueError):
        Response(b"x", status_code=code)
    r = Response(b"x")
    with pytest.raises(ValueError):
        r.status_code = code


@pytest.mark.parametrize("code", [0, 42, 100, 600, 1000])
def test_decorator_status_outside_200_599_is_refused(code):
    app = Karak()
    with pytest.raises(ValueError, match="status_code"):
        app.get("/x", status_code=code)(lambda: {})


def test_handler_returning_a_1xx_response_gets_500_and_the_connection_stays_in_step(srv):
    with srv.raw() as c:
        c.send(b"GET /status-100 HTTP/1.1\r\nHost: x\r\n\r\nGET /int?v=7 HTTP/1.1\r\nHost: x\r\n\r\n")
        first, second = c.read_reply(), c.read_reply()
    assert first.status == 500
    assert second.status == 200 and second.json() == {"v": 7}


def test_205_has_no_content(srv):
    """RFC 9110 15.3.6: a server MUST NOT generate content in a 205."""
    with srv.raw() as c:
        c.send(b"GET /status-205 HTTP/1.1\r\nHost: x\r\n\r\nGET /int?v=7 HTTP/1.1\r\nHost: x\r\n\r\n")
        first, second = c.read_reply(), c.read_reply()
    assert first.status == 205 and first.header("Content-Length") == "0" and first.body == b""
    assert second.status == 200 and second.json() == {"v": 7}


# --------------------------------------------------------------------------- response models


@pytest.mark.parametrize("path", ["/alias-model", "/alias-annotation"])
def test_response_model_serialises_by_alias(srv, path):
    r = srv.get(path)
    assert r.status == 200
    assert r.json() == {"userName": "bob"}


def test_response_model_of_plain_type_converts(srv):
    assert srv.get("/list-int").json() == [1, 2]
    assert srv.get("/int-annotation").json() == 5
    assert srv.get("/dict-annotation").json() == {"a": 1}


def test_response_model_of_plain_type_that_fails_is_500(srv):
    assert srv.get("/list-int-bad").status == 500


# --------------------------------------------------------------------------- bodies


@pytest.mark.parametrize("body", [b'{"name":"\xff"}', b"\xff\xfe", b'{"name":"caf\xe9"}'])
def test_body_that_is_not_utf8_is_422_not_500(srv, body):
    r = srv.request("POST", "/item", body=body, headers={"Content-Type": "application/json"})
    assert r.status == 422, r
    detail = r.json()["detail"]
    assert detail and all(e["loc"][0] == "body" for e in detail), detail
    assert "utf-8" not in srv.stderr().lower()


@pytest.mark.parametrize("path, want", [
    ("/item", {"name": "caf\u00e9"}),
    ("/raw-json", {"parsed": {"name": "caf\u00e9"}}),
])
def test_json_body_with_a_utf8_bom_is_read(srv, path, want):
    # RFC 8259 section 8.1: a parser MAY ignore a leading byte order mark;
    # FastAPI (json.loads of the bytes) does, so a client that writes one works.
    body = b"\xef\xbb\xbf" + '{"name":"caf\u00e9"}'.encode()
    r = srv.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    assert r.status == 200, r
    assert r.json() == want


def test_a_bom_alone_or_twice_is_still_invalid_json(srv):
    for body in (b"\xef\xbb\xbf", b"\xef\xbb\xbf\xef\xbb\xbf{}"):
        r = srv.request("POST", "/item", body=body, headers={"Content-Type": "application/json"})
        assert r.status == 422, r
        assert r.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("ctype, ok", [
    (None, True),
    ("application/json", True),
    ("Application/JSON; charset=utf-8", True),
    ("application/vnd.api+json", True),
    ("text/plain", False),  # what a cross-site form can send without a preflight
    ("application/x-www-form-urlencoded", False),
    ("multipart/form-data; boundary=x", False),
    ("text/json", False),
    ("application/jsonx", False),
])
def test_body_model_needs_a_json_content_type(srv, ctype, ok):
    """FastAPI's rule: JSON when there is no Content-Type or it is application/json or
    application/*+json; any other body is validated as bytes, so a model refuses it."""
    headers = {"Content-Type": ctype} if ctype else {}
    with srv.raw() as c:
        body = b'{"name":"x"}'
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        c.send(f"POST /item HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{head}\r\n"
               .encode() + body)
        r = c.read_reply()
    if ok:
        assert r.status == 200 and r.json() == {"name": "x"}, r
    else:
        assert r.status == 422, r
        assert r.json()["detail"][0]["type"] == "model_type"  # pydantic: not a dict
        assert r.json()["detail"][0]["loc"] == ["body"]


# --------------------------------------------------------------------------- int/float rules

INT_INPUTS = ["0", "7", "-7", "+7", "007", " 7 ", "\t7\n", "1.0", "-2.00", "1.5", "1_000",
              "1__0", "_1", "1_", "\x0b7", "\x0c7", "7\x0c", "\u30007", "\xa07", "1e3", "0x10",
              "", " ", "+", "-", "--1", "9" * 18, "9" * 19, "-" + "9" * 30, "1" * 4300,
              "1" * 4301, "\uff17", "nan", "inf", "1.0000000000000000001"]
FLOAT_INPUTS = ["0", "1.5", "-1.5", "+1.5", " 1.5 ", "1e3", "1E-3", "1_000.5", "1e1_0",
                "\x0c1.5", "1.5\x0b", "inf", "-inf", "nan", "infinity", "-Infinity", "NaN",
                "1e400", "-1e400", ".5", "5.", "", "abc", "0x10", "1.5.5", "1" * 401,
                "1" * 500 + ".5", "\u30001.5"]


def _pydantic(tp, text):
    """pydantic's answer for text as a str input: ("ok", value) or ("error", type)."""
    try:
        return "ok", TypeAdapter(tp).validate_python(text)
    except ValidationError as e:
        return "error", e.errors()[0]["type"]


def _karak(srv, path, text):
    from urllib.parse import quote
    r = srv.get(f"{path}?v={quote(text, safe='')}")
    if r.status == 200:
        return "ok", r.json()["v"]
    assert r.status == 422, (text, r)
    return "error", r.json()["detail"][0]["type"]


@pytest.mark.parametrize("text", INT_INPUTS)
def test_int_query_follows_pydantic(srv, text):
    want = _pydantic(int, text)
    got = _karak(srv, "/int", text)
    assert got == want, (text, got, want)


@pytest.mark.parametrize("text", FLOAT_INPUTS)
def test_float_query_follows_pydantic(srv, text):
    want = _pydantic(float, text)
    if want[0] == "ok":
        want = ("ok", repr(want[1]))  # the route answers repr(v)
    got = _karak(srv, "/float", text)
    assert got == want, (text, got, want)


def test_huge_int_in_path_and_header_is_422(srv):
    digits = "1" * 4301
    r = srv.get(f"/pint/{digits}")
    assert r.status == 422 and r.json()["detail"][0]["type"] == "int_parsing_size"
    r = srv.get("/hint", headers={"X-N": digits})
    assert r.status == 422 and r.json()["detail"][0]["type"] == "int_parsing_size"
    assert "Exceeds the limit" not in srv.stderr()


def test_optional_int_still_takes_the_fast_path_and_the_slow_one(srv):
    assert srv.get("/opt").json() == {"v": None}
    assert srv.get("/opt?v=12").json() == {"v": 12}
    assert srv.get("/opt?v=1_2").json() == {"v": 12}
    assert srv.get("/opt?v=x").status == 422


# --------------------------------------------------------------------------- header decoding


def test_header_param_that_is_not_utf8_is_latin1(srv):
    with srv.raw() as c:
        c.send(b"GET /hstr HTTP/1.1\r\nHost: x\r\nX-S: caf\xe9\r\n\r\n")
        r = c.read_reply()
    assert r.status == 200 and r.json() == {"v": "caf\xe9"}
    with srv.raw() as c:
        c.send("GET /hstr HTTP/1.1\r\nHost: x\r\nX-S: café\r\n\r\n".encode())
        r = c.read_reply()
    assert r.status == 200 and r.json() == {"v": "café"}


def test_header_list_param_gets_every_field_of_that_name(srv):
    # FastAPI: Annotated[list[str], Header()] is request.headers.getlist(name):
    # one item per field line, in order, not split at commas.
    with srv.raw() as c:
        c.send(b"GET /hlist HTTP/1.1\r\nHost: x\r\nX-Tag: a\r\nX-Other: z\r\n"
               b"x-tag: b, c\r\nX-TAG: caf\xe9\r\n\r\n")
        r = c.read_reply()
    assert r.status == 200, r
    assert r.json() == {"v": ["a", "b, c", "caf\xe9"]}
    r = srv.get("/hlist", headers={"X-Tag": "only"})
    assert r.status == 200 and r.json() == {"v": ["only"]}


def test_header_list_param_missing_and_invalid(srv):
    r = srv.get("/hlist")
    assert r.status == 422
    assert [(e["type"], e["loc"]) for e in r.json()["detail"]] == [("missing", ["header", "x-tag"])]
    assert srv.get("/hlist-int").json() == {"v": None}
    with srv.raw() as c:
        c.send(b"GET /hlist-int HTTP/1.1\r\nHost: x\r\nX-Num: 1\r\nX-Num: 2\r\n\r\n")
        assert c.read_reply().json() == {"v": [1, 2]}
        c.send(b"GET /hlist-int HTTP/1.1\r\nHost: x\r\nX-Num: 1\r\nX-Num: two\r\n\r\n")
        r = c.read_reply()
    assert r.status == 422
    assert [(e["type"], e["loc"]) for e in r.json()["detail"]] == [
        ("int_parsing", ["header", "x-num", 1])]


def cookie_get(srv, path, *cookie_fields):
    head = "".join(f"Cookie: {c}\r\n" for c in cookie_fields)
    with srv.raw() as c:
        c.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode("latin-1"))
        return c.read_reply()


def test_cookie_params_read_by_name_with_conversion_and_alias(srv):
    r = cookie_get(srv, "/cookie", "a=1; session=xyz; n=5; x-id=u7")
    assert r.status == 200, r
    assert r.json() == {"session": "xyz", "n": 5, "ident": "u7"}
    # defaults; whitespace around names and values; the last pair of a name wins
    assert cookie_get(srv, "/cookie", "  session = abc  ; session=def").json() == \
        {"session": "def", "n": 0, "ident": None}
    # every Cookie field is read
    assert cookie_get(srv, "/cookie", "session=s1", "n=9").json() == \
        {"session": "s1", "n": 9, "ident": None}
    # a quoted value is unquoted as http.cookies does (\073 is ';')
    assert cookie_get(srv, "/cookie", 'session="ab\\073c\\\\d"').json()["session"] == "ab;c\\d"


def test_cookie_params_missing_and_invalid_are_422_with_cookie_loc(srv):
    r = cookie_get(srv, "/cookie")
    assert r.status == 422
    assert [(e["type"], e["loc"]) for e in r.json()["detail"]] == [("missing", ["cookie", "session"])]
    r = cookie_get(srv, "/cookie", "Session=x; sessionx=y")  # names are case-sensitive
    assert r.status == 422
    r = cookie_get(srv, "/cookie", "session=x; n=many")
    assert r.status == 422
    assert [(e["type"], e["loc"], e["input"]) for e in r.json()["detail"]] == [
        ("int_parsing", ["cookie", "n"], "many")]


def test_request_cookies_is_starlettes_cookie_dict(srv):
    # Each expectation is what starlette.requests.cookie_parser gives for that header.
    cases = [
        ("a=1; session=xyz; n=5", {"a": "1", "session": "xyz", "n": "5"}),
        ('session="ab\\073c\\\\d"', {"session": "ab;c\\d"}),
        ("session=a; session=b", {"session": "b"}),
        ('novalue; =onlyval; x=; ;; y="unterminated', {"": "onlyval", "x": "", "y": '"unterminated'}),
        ('q="a\\"b"', {"q": 'a"b'}),
        ("z=a=b=c", {"z": "a=b=c"}),
        (";;; ; ", {}),
    ]
    for header, want in cases:
        r = cookie_get(srv, "/cookies", header)
        assert r.status == 200 and r.json() == want, (header, r)
    assert srv.get("/cookies").json() == {}
    r = cookie_get(srv, "/cookies", "k=caf\xe9")  # not UTF-8: Latin-1, as header values
    assert r.json() == {"k": "caf\xe9"}


# --------------------------------------------------------------------------- yield dependencies


def _events(srv, rid):
    return srv.get(f"/gen/events?rid={rid}").json()


@pytest.mark.parametrize("route, status, events", [
    ("ok", 200, ["open", "commit", "close"]),
    # the handler's HTTPException and other errors are thrown in at the yield
    ("http", 409, ["open", "rollback 409", "close"]),
    ("error", 500, ["open", "rollback ValueError", "close"]),
    # a generator that swallows the exception leaves the handler's answer
    ("swallowed", 409, ["swallowed"]),
    # inner first (reverse order, as nested `with` blocks): the inner one turns the
    # ValueError into a 418, which the outer one then sees and re-raises
    ("replaced", 418, ["open", "rollback 418", "close"]),
])
def test_generator_dependency_sees_how_the_handler_ended(srv, route, status, events):
    rid = uuid.uuid4().hex
    assert srv.get(f"/gen/{route}?rid={rid}").status == status
    assert _events(srv, rid) == events


def test_generator_dependency_failing_after_the_yield_keeps_the_answer_and_logs(srv):
    # FastAPI 0.165 answers 200 too (its exit code runs once the response has
    # started: "Caught handled exception, but response already started"); the
    # error is not lost, it is logged with its traceback.
    rid = uuid.uuid4().hex
    r = srv.get(f"/gen/fails-after?rid={rid}")
    assert (r.status, r.json()) == (200, {"ok": rid})
    assert _events(srv, rid) == ["commit failed"]
    assert "commit failed after the yield" in srv.tail(200)


@pytest.mark.parametrize("path, status, body", [
    # No annotation: Karak's encoder, like json.dumps(allow_nan=False), refuses them.
    ("/nonfinite/dict", 500, {"detail": "Internal Server Error"}),
    # Through a return annotation or a model: pydantic's JSON mode writes null.
    ("/nonfinite/float", 200, None),
    ("/nonfinite/model", 200, {"x": None}),
    ("/nonfinite/list", 200, [1.5, None]),
])
def test_non_finite_floats_answer_as_fastapi_does(srv, path, status, body):
    # FastAPI 0.165 gives the same statuses for the same handlers, and the same bodies
    # for the 200s (checked under uvicorn); its 500 body is plain text, ours JSON.
    r = srv.get(path)
    assert (r.status, r.json()) == (status, body)


# --------------------------------------------------------------------------- body parameters


def test_a_list_cookie_param_is_refused_at_registration():
    from typing import Annotated

    from karak import Cookie, Karak

    app = Karak()

    def handler(ids: Annotated[list[str], Cookie()]) -> dict:
        return {}

    with pytest.raises(TypeError, match="cannot be a list"):
        app.get("/c")(handler)


# --------------------------------------------------------------------------- response models from other objects


@pytest.mark.parametrize("path, want", [
    ("/rm/model", {"name": "w", "price": 1.5}),
    ("/rm/annotation", {"name": "a", "price": 2.0}),
    ("/rm/dataclass", {"name": "dc", "price": 3.0}),
    ("/rm/orm", {"name": "orm", "price": 3.0}),
    ("/rm/list", [{"name": "x", "price": 1.0}, {"name": "y", "price": 2.0},
                  {"name": "z", "price": 3.5}, {"name": "d", "price": 4.0}]),
])
def test_response_model_reads_other_models_dataclasses_and_attributes(srv, path, want):
    # FastAPI validates the return value with from_attributes=True: the UserIn -> UserOut
    # pattern of its tutorial, dataclasses and ORM rows all work, and extra fields go.
    r = srv.get(path)
    assert r.status == 200, (r, srv.tail())
    assert r.json() == want


def test_response_model_from_attributes_still_validates(srv):
    assert srv.get("/rm/orm-bad").status == 500


# --------------------------------------------------------------------------- constraints


def errs(r):
    return [(e["type"], e["loc"], e["input"], e.get("ctx")) for e in r.json()["detail"]]


def test_annotated_constraints_on_query_params_are_checked(srv):
    # What FastAPI answers for the same code (checked against FastAPI 0.165, pydantic 2.12.3).
    assert srv.get("/c/gt?n=1").json() == {"n": 1}
    r = srv.get("/c/gt?n=0")
    assert r.status == 422
    assert errs(r) == [("greater_than", ["query", "n"], "0", {"gt": 0})]
    assert r.json()["detail"][0]["msg"] == "Input should be greater than 0"
    r = srv.get("/c/field?n=11&s=abcd")
    assert r.status == 422
    assert [e[:2] for e in errs(r)] == [("less_than_equal", ["query", "n"]),
                                        ("string_too_long", ["query", "s"])]
    assert srv.get("/c/field?n=10&s=abc").json() == {"n": 10, "s": "abc"}


def test_query_marker_default_alias_and_constraints(srv):
    assert srv.get("/c/query").json() == {"q": None, "page": 1, "size": 10, "ids": []}
    assert srv.get("/c/query?q=abc&page=2&per-page=100&ids=1&ids=2").json() == \
        {"q": "abc", "page": 2, "size": 100, "ids": [1, 2]}
    r = srv.get("/c/query?q=abcdef&page=0&per-page=101&ids=1&ids=2&ids=3")
    assert r.status == 422
    assert [e[:2] for e in errs(r)] == [
        ("string_too_long", ["query", "q"]), ("greater_than_equal", ["query", "page"]),
        ("less_than_equal", ["query", "per-page"]), ("too_long", ["query", "ids"])]
    r = srv.get("/c/query?q=ABC")
    assert errs(r) == [("string_pattern_mismatch", ["query", "q"], "ABC", {"pattern": "^[a-z]+$"})]


def test_path_header_and_cookie_constraints(srv):
    assert srv.get("/c/path/5").json() == {"item_id": 5}
    for bad, kind in (("0", "greater_than"), ("1000", "less_than"), ("x", "int_parsing")):
        r = srv.get(f"/c/path/{bad}")
        assert r.status == 422 and errs(r)[0][:3] == (kind, ["path", "item_id"], bad)
    assert srv.get("/c/header", headers={"X-N": "0.5"}).json() == {"x_n": 0.5, "x_tag": "zz"}
    r = srv.get("/c/header", headers={"X-N": "0.4", "X-Tag": "a"})
    assert [e[:2] for e in errs(r)] == [("greater_than_equal", ["header", "x-n"]),
                                        ("string_too_short", ["header", "x-tag"])]
    assert srv.get("/c/cookie", headers={"Cookie": "sid=abcd"}).json() == {"sid": "abcd"}
    r = srv.get("/c/cookie", headers={"Cookie": "sid=abc"})
    assert errs(r)[0][:3] == ("string_too_short", ["cookie", "sid"], "abc")


def test_marker_misuse_is_refused_at_registration():
    from typing import Annotated

    from karak import Karak, Path, Query

    app = Karak()
    def a(q: Annotated[int, Query(3)]) -> dict:  # FastAPI refuses this too
        return {}

    def b(n: Annotated[int, Path(gt=0)]) -> dict:
        return {}

    with pytest.raises(TypeError, match="cannot set a default"):
        app.get("/a")(a)
    with pytest.raises(TypeError, match="template has no"):
        app.get("/b")(b)
    with pytest.raises(TypeError, match="no alias"):
        Path(alias="x")
    with pytest.raises(TypeError):
        Query(maxlength=3)  # a misspelt constraint is an error, never ignored


def test_422_errors_come_in_fastapis_order(srv):
    # FastAPI (solve_dependencies): dependencies first, depth first, then path, query,
    # header, cookie and body parameters. This list is FastAPI 0.165's answer to the
    # same route and request.
    r = srv.request("POST", "/order/x", headers={"Content-Type": "application/json"})
    assert r.status == 422
    assert [e["loc"] for e in r.json()["detail"]] == [
        ["query", "z"], ["query", "b"], ["header", "x-h"], ["path", "p"], ["query", "a"],
        ["header", "x-own"], ["cookie", "c"], ["body"]]


def test_header_alias_is_matched_in_any_case_and_reported_as_written(srv):
    assert srv.get("/header-alias", headers={"x-custom_name": "5"}).json() == {"v": 5}
    r = srv.get("/header-alias", headers={"X-CUSTOM_NAME": "x"})
    # FastAPI's answer, byte for byte: the loc is the alias as written
    assert r.body == (b'{"detail":[{"type":"int_parsing","loc":["header","X-Custom_Name"],'
                      b'"msg":"Input should be a valid integer, unable to parse string as an '
                      b'integer","input":"x"}]}')
    assert srv.get("/header-alias").json()["detail"][0]["loc"] == ["header", "X-Custom_Name"]
