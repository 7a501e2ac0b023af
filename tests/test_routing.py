"""Routing: static vs parameter, {name:path}, percent-decoding, methods, 404 and 405."""
import pytest


@pytest.fixture
def srv(server_pool):
    return server_pool.get("routing_app:app")


def allow_set(reply) -> set:
    return {m.strip() for m in (reply.header("Allow") or "").split(",") if m.strip()}


def test_root(srv):
    r = srv.get("/")
    assert r.status == 200
    assert r.json() == {"route": "root"}


def test_parameter_segment(srv):
    r = srv.get("/items/42")
    assert r.status == 200
    assert r.json() == {"route": "item", "method": "GET", "item_id": "42"}


def test_static_beats_parameter_even_when_added_later(srv):
    assert srv.get("/items/special").json() == {"route": "special"}


def test_static_prefix_is_not_a_static_match(srv):
    assert srv.get("/items/specialx").json() == {"route": "item", "method": "GET", "item_id": "specialx"}
    assert srv.get("/items/spec").json() == {"route": "item", "method": "GET", "item_id": "spec"}


def test_backtracks_from_static_into_parameter(srv):
    # "/a/static/..." first tries the static branch, which has no "y"; the parameter branch does.
    assert srv.get("/a/static/x").json() == {"route": "a-static-x"}
    assert srv.get("/a/static/y").json() == {"route": "a-param-y", "p": "static"}


def test_several_parameters_with_conversion(srv):
    r = srv.get("/users/7/posts/hello")
    assert r.status == 200
    assert r.json() == {"user_id": 7, "post_id": "hello"}


def test_path_parameter_takes_the_rest(srv):
    assert srv.get("/files/a/b/c.txt").json() == {"file_path": "a/b/c.txt"}
    assert srv.get("/files/single").json() == {"file_path": "single"}


@pytest.mark.parametrize(
    "raw, decoded",
    [
        ("a%20b", "a b"),
        ("caf%C3%A9", "caf\u00e9"),
        ("100%25", "100%"),
        ("x%2By", "x+y"),
        ("plus+stays", "plus+stays"),  # '+' is a space only in query strings
    ],
)
def test_path_parameters_are_percent_decoded(srv, raw, decoded):
    r = srv.get("/items/" + raw)
    assert r.status == 200
    assert r.json()["item_id"] == decoded


def test_path_parameter_of_path_type_is_percent_decoded(srv):
    assert srv.get("/files/dir%20one/f%C3%BCr.txt").json() == {"file_path": "dir one/f\u00fcr.txt"}


@pytest.mark.parametrize(
    "target, route",
    [
        ("/items/sp%65cial", {"route": "special"}),  # %65 is "e": the static route
        ("/%69tems/42", {"route": "item", "method": "GET", "item_id": "42"}),
        ("/items/%7E%2d%2E%5F%41z%30", {"route": "item", "method": "GET", "item_id": "~-._Az0"}),
        ("/a/st%61tic/x", {"route": "a-static-x"}),
    ],
)
def test_percent_encoded_unreserved_characters_route_as_themselves(srv, target, route):
    # RFC 3986 6.2.2.2: "%65" and "e" are the same path; Starlette routes the decoded
    # path, so FastAPI answers these from the same routes.
    r = srv.get(target)
    assert r.status == 200
    assert r.json() == route


def test_percent_encoded_slash_is_not_a_segment_boundary(srv):
    # Only unreserved characters are decoded before routing: "%2F" stays inside the
    # segment and reaches the parameter decoded (Starlette would route "/items/a/b").
    assert srv.get("/items/a%2Fb").json() == {"route": "item", "method": "GET", "item_id": "a/b"}
    assert srv.get("/items/%2541").json()["item_id"] == "%41"


def test_request_path_is_the_decoded_path_when_routing_normalizes(srv):
    r = srv.get("/echo-p%61th")
    assert r.status == 200
    assert r.json() == {"path": "/echo-path"}


@pytest.mark.parametrize("path", ["/nope", "/items", "/items/1/extra", "/users/5/posts", "/a/static", "/only-getx"])
def test_unknown_path_is_404(srv, path):
    r = srv.get(path)
    assert r.status == 404
    assert r.json() == {"detail": "Not Found"}
    assert r.header("Content-Type").split(";")[0].strip() == "application/json"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_each_method_decorator(srv, method):
    r = srv.request(method, "/items/9")
    assert r.status == 200
    assert r.json() == {"route": "item", "method": method, "item_id": "9"}


def test_full_match_on_parameter_route_beats_405_on_static_route(srv):
    # /items/special only has GET; POST /items/special is served by POST /items/{item_id}.
    r = srv.request("POST", "/items/special")
    assert r.status == 200
    assert r.json() == {"route": "item", "method": "POST", "item_id": "special"}


def test_405_lists_allowed_methods_and_get_implies_head(srv):
    r = srv.request("POST", "/only-get")
    assert r.status == 405
    assert r.json() == {"detail": "Method Not Allowed"}
    assert allow_set(r) == {"GET", "HEAD"}


def test_405_on_post_only_route(srv):
    r = srv.get("/only-post")
    assert r.status == 405
    assert r.json() == {"detail": "Method Not Allowed"}
    assert allow_set(r) == {"POST"}


def test_405_for_a_method_no_route_has(srv):
    r = srv.request("OPTIONS", "/items/3")
    assert r.status == 405
    assert allow_set(r) == {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}


def test_head_decorator(srv):
    r = srv.request("HEAD", "/head-only")
    assert r.status == 200
    assert r.header("X-Head") == "yes"
    assert r.body == b""


def test_head_only_route_rejects_get(srv):
    r = srv.get("/head-only")
    assert r.status == 405
    assert allow_set(r) == {"HEAD"}


def test_options_decorator(srv):
    r = srv.request("OPTIONS", "/opts")
    assert r.status == 200
    assert r.json() == {"route": "options"}


def test_route_with_methods_list(srv):
    assert srv.get("/multi").json() == {"route": "multi", "method": "GET"}
    assert srv.request("POST", "/multi").json() == {"route": "multi", "method": "POST"}
    r = srv.request("PUT", "/multi")
    assert r.status == 405
    assert allow_set(r) == {"GET", "HEAD", "POST"}


def test_head_on_get_route_has_get_headers_and_no_body(srv):
    get = srv.get("/items/5")
    head = srv.request("HEAD", "/items/5")
    assert head.status == 200
    assert head.body == b""
    assert head.header("Content-Length") == get.header("Content-Length") == str(len(get.body))
    assert head.header("Content-Type") == get.header("Content-Type")


def test_a_custom_method_bound_to_a_route_is_served(srv):
    r = srv.request("PROPFIND", "/dav/notes")
    assert r.status == 200
    assert r.json() == {"route": "dav", "method": "PROPFIND", "name": "notes"}
    # a standard method on that path is known, so it is a 405 naming PROPFIND
    r = srv.get("/dav/notes")
    assert r.status == 405
    assert allow_set(r) == {"PROPFIND"}


@pytest.mark.parametrize("method", ["FOO", "get", "Get", "BREW", "MKCOL"])
def test_an_unknown_method_is_501_and_the_connection_stays_usable(srv, method):
    # RFC 9110 15.6.2: a method the server does not recognise for any resource is
    # 501, not 405; methods are case-sensitive, so "get" is not GET. The request
    # is complete, so keep-alive goes on: the next request on the socket works.
    with srv.raw() as c:
        c.send(f"{method} /items/3 HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        r = c.read_reply()
        assert r.status == 501
        assert r.json() == {"detail": "Not Implemented"}
        c.send(b"GET /items/3 HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_reply()
        assert r.status == 200
        assert r.json()["item_id"] == "3"


def test_an_unknown_method_on_an_unknown_path_is_still_501(srv):
    with srv.raw() as c:
        c.send(b"FOO /no/such/path HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_reply().status == 501


@pytest.mark.parametrize("method", ["TRACE", "PUT", "PATCH", "DELETE"])
def test_a_standard_method_a_route_lacks_is_still_405(srv, method):
    r = srv.request(method, "/only-get")
    assert r.status == 405
    assert allow_set(r) == {"GET", "HEAD"}


def test_options_asterisk_lists_the_methods_routes_have(srv):
    with srv.raw() as c:
        c.send(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_reply()
    assert r.status == 200
    allow = [m.strip() for m in r.header("Allow").split(",")]
    assert allow == ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"]


# --------------------------------------------------------------------------- APIRouter


def test_router_routes_are_served_under_the_include_prefix(srv):
    assert srv.get("/api/items").json() == {"route": "router-list"}
    assert srv.get("/api/items/7").json() == {"route": "router-item", "item_id": 7}
    r = srv.request("POST", "/api/items/")
    assert r.status == 201 and r.json() == {"route": "router-create"}
    r = srv.get("/api/items/seven")  # the plan was built for the full path: int conversion holds
    assert r.status == 422
    assert r.json()["detail"][0]["loc"] == ["path", "item_id"]


def test_a_router_included_twice_and_inside_another_router(srv):
    assert srv.get("/v2/acme/items/3").json() == {"route": "router-item", "item_id": 3}
    assert srv.get("/admin/stats").json() == {"route": "admin-stats"}
    assert srv.get("/admin/nested/items").json() == {"route": "router-list"}
    assert srv.get("/admin/nested/items/4").json() == {"route": "router-item", "item_id": 4}


def test_routes_declared_after_include_router_are_not_served(srv):
    assert srv.get("/api/items/late").status == 422  # /api/items/{item_id} with "late"
    assert srv.get("/admin/nested/items/late").status == 422


def test_router_registration_errors():
    from karak import APIRouter, Karak

    for bad in ("items", "/items/", 3):
        with pytest.raises(ValueError, match="prefix"):
            APIRouter(prefix=bad)
    with pytest.raises(ValueError, match="prefix"):
        Karak().include_router(APIRouter(), prefix="/x/")
    with pytest.raises(TypeError, match="APIRouter"):
        Karak().include_router(Karak())
    with pytest.raises(ValueError, match="only on an APIRouter with a prefix"):
        APIRouter().get("")(lambda: None)
    with pytest.raises(ValueError, match="starting with '/'"):
        Karak().get("")(lambda: None)
    # a handler's signature is checked when declared on the router, not at include
    with pytest.raises(TypeError, match="positional-only"):
        APIRouter(prefix="/r").get("/{x}")(eval("lambda x, /: None"))


# --------------------------------------------------------------------------- redirect_slashes


def test_a_trailing_slash_mismatch_is_a_307_to_the_route(srv):
    # FastAPI (Starlette's redirect_slashes): 307 keeps the method and the body.
    with srv.raw() as c:
        for target, location in (("/only-get/", "/only-get"), ("/withslash", "/withslash/"),
                                 ("/only-get/?a=1&b", "/only-get?a=1&b"),
                                 ("/only-get/?", "/only-get?"), ("/items/3/", "/items/3")):
            c.send(f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            r = c.read_reply()
            assert r.status == 307, (target, r)
            assert r.header("Location") == location
            assert r.header("Content-Length") == "0" and r.body == b""
        c.send(b"GET /only-get HTTP/1.1\r\nHost: a\r\n\r\n")  # the connection goes on
        assert c.read_reply().json() == {"route": "only-get"}


def test_redirect_slash_counts_a_route_of_another_method(srv):
    r = srv.request("POST", "/only-get/")
    assert r.status == 307 and r.header("Location") == "/only-get"


def test_no_redirect_when_neither_form_matches_or_for_other_hosts(srv):
    assert srv.get("/nothing/").status == 404
    assert srv.get("/nothing").status == 404
    # "/\\x/" minus its slash matches the route "/\\x", but browsers read a Location
    # "/\\x" as "//x", another host: never sent. ("//x" cannot match a route here.)
    assert srv.get("/\\x").json() == {"route": "backslash-x"}
    for target in ("/\\x/", "//x/", "//"):
        with srv.raw() as c:
            c.send(f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            r = c.read_reply()
        assert r.status == 404, (target, r)
        assert r.header("Location") is None


def test_redirect_slashes_false(server_pool):
    srv = server_pool.get("routing_app:app_noredirect")
    assert srv.get("/only-get").status == 200
    r = srv.get("/only-get/")
    assert r.status == 404 and r.header("Location") is None
