"""Body parameters: several of them, Body(embed=True), Body() on a scalar, aliases,
defaults, members read by dependencies (tests/apps/body_app.py).

The expected answers are FastAPI's: the same app run on FastAPI 0.165.0 + uvicorn,
asked the same requests on 2026-12-02, answered exactly these statuses and bodies.
Where Karak answers differently on purpose (malformed JSON: pydantic's json_invalid
error at ["body"], as for a single body model), the test says so below.
"""
import json

import pytest

from karak import Body, Karak


@pytest.fixture
def srv(server_pool):
    return server_pool.get("body_app:app")


# (path, body, Content-Type or None, FastAPI's status, FastAPI's JSON body)
FASTAPI = [
    ('/two', '{"item":{"name":"a","price":1.5},"user":{"username":"u"}}', 'application/json', 200,
     "{\"item\": {\"name\": \"a\", \"price\": 1.5}, \"user\": {\"username\": \"u\"}}"),
    ('/two', '{"name":"a","price":1.5}', 'application/json', 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\", \"item\"], \"msg\": \"Field required\", \"input\": null}, {\"type\": \"missing\", \"loc\": [\"body\", \"user\"], \"msg\": \"Field required\", \"input\": null}]}"),
    ('/two', '', None, 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\", \"item\"], \"msg\": \"Field required\", \"input\": null}, {\"type\": \"missing\", \"loc\": [\"body\", \"user\"], \"msg\": \"Field required\", \"input\": null}]}"),
    ('/two', '[1]', 'application/json', 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\", \"item\"], \"msg\": \"Field required\", \"input\": null}, {\"type\": \"missing\", \"loc\": [\"body\", \"user\"], \"msg\": \"Field required\", \"input\": null}]}"),
    ('/two', 'null', 'application/json', 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\", \"item\"], \"msg\": \"Field required\", \"input\": null}, {\"type\": \"missing\", \"loc\": [\"body\", \"user\"], \"msg\": \"Field required\", \"input\": null}]}"),
    ('/two', '{"item":{"name":"a","price":1.5},"user":{"username":"u"}}', 'text/plain', 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\", \"item\"], \"msg\": \"Field required\", \"input\": null}, {\"type\": \"missing\", \"loc\": [\"body\", \"user\"], \"msg\": \"Field required\", \"input\": null}]}"),
    ('/two', '{"item":{"name":"a","price":"x"},"user":{}}', 'application/json', 422,
     "{\"detail\": [{\"type\": \"float_parsing\", \"loc\": [\"body\", \"item\", \"price\"], \"msg\": \"Input should be a valid number, unable to parse string as a number\", \"input\": \"x\"}, {\"type\": \"missing\", \"loc\": [\"body\", \"user\", \"username\"], \"msg\": \"Field required\", \"input\": {}}]}"),
    ('/embed', '{"item":{"name":"a","price":1.5}}', 'application/json', 200,
     "{\"item\": {\"name\": \"a\", \"price\": 1.5}}"),
    ('/embed', '{"name":"a","price":1.5}', 'application/json', 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\", \"item\"], \"msg\": \"Field required\", \"input\": null}]}"),
    ('/embed', '', None, 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\", \"item\"], \"msg\": \"Field required\", \"input\": null}]}"),
    ('/scalar', '{"item":{"name":"a","price":1.5},"importance":5}', 'application/json', 200,
     "{\"item\": {\"name\": \"a\", \"price\": 1.5}, \"importance\": 5}"),
    ('/scalar', '{"item":{"name":"a","price":1.5},"importance":"5"}', 'application/json', 200,
     "{\"item\": {\"name\": \"a\", \"price\": 1.5}, \"importance\": 5}"),
    ('/scalar', '{"item":{"name":"a","price":1.5},"importance":0}', 'application/json', 422,
     "{\"detail\": [{\"type\": \"greater_than\", \"loc\": [\"body\", \"importance\"], \"msg\": \"Input should be greater than 0\", \"input\": 0, \"ctx\": {\"gt\": 0}}]}"),
    ('/scalar', '{"item":{"name":"a","price":1.5}}', 'application/json', 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\", \"importance\"], \"msg\": \"Field required\", \"input\": null}]}"),
    ('/single_scalar', '5', 'application/json', 200,
     "{\"x\": 5}"),
    ('/single_scalar', '"5"', 'application/json', 200,
     "{\"x\": 5}"),
    ('/single_scalar', '{"x":5}', 'application/json', 422,
     "{\"detail\": [{\"type\": \"int_type\", \"loc\": [\"body\"], \"msg\": \"Input should be a valid integer\", \"input\": {\"x\": 5}}]}"),
    ('/single_scalar', '', None, 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\"], \"msg\": \"Field required\", \"input\": null}]}"),
    ('/optional', '{"item":{"name":"a","price":1.5}}', 'application/json', 200,
     "{\"item\": {\"name\": \"a\", \"price\": 1.5}, \"note\": null, \"n\": 3}"),
    ('/optional', '{"item":{"name":"a","price":1.5},"note":null,"n":"7"}', 'application/json', 200,
     "{\"item\": {\"name\": \"a\", \"price\": 1.5}, \"note\": null, \"n\": 7}"),
    ('/optional', '', None, 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\", \"item\"], \"msg\": \"Field required\", \"input\": null}]}"),
    ('/alias', '{"it":{"name":"a","price":1.5},"K":2}', 'application/json', 200,
     "{\"item\": {\"name\": \"a\", \"price\": 1.5}, \"k\": 2}"),
    ('/alias', '{"item":{"name":"a","price":1.5},"k":2}', 'application/json', 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\", \"it\"], \"msg\": \"Field required\", \"input\": null}, {\"type\": \"missing\", \"loc\": [\"body\", \"K\"], \"msg\": \"Field required\", \"input\": null}]}"),
    ('/dep', '{"item":{"name":"a","price":1.5},"extra":"e"}', 'application/json', 200,
     "{\"item\": {\"name\": \"a\", \"price\": 1.5}, \"extra\": \"e\"}"),
    ('/dep', '{"item":{"name":"a","price":1.5}}', 'application/json', 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\", \"extra\"], \"msg\": \"Field required\", \"input\": null}]}"),
    ('/embed_default', '', None, 200,
     "{\"item\": null}"),
    ('/embed_default', '{}', 'application/json', 200,
     "{\"item\": null}"),
    ('/embed_default', '{"item":null}', 'application/json', 200,
     "{\"item\": null}"),
    ('/lst', '{"tags":["a","b"],"item":{"name":"a","price":1.5}}', 'application/json', 200,
     "{\"tags\": [\"a\", \"b\"], \"item\": {\"name\": \"a\", \"price\": 1.5}}"),
    ('/lst', '{"tags":"a","item":{"name":"a","price":1.5}}', 'application/json', 422,
     "{\"detail\": [{\"type\": \"list_type\", \"loc\": [\"body\", \"tags\"], \"msg\": \"Input should be a valid list\", \"input\": \"a\"}]}"),
    ('/two', '{"item":{"name":"a","price":1.5},"user":{"username":"u"},"zzz":1}', 'application/json', 200,
     "{\"item\": {\"name\": \"a\", \"price\": 1.5}, \"user\": {\"username\": \"u\"}}"),
    ('/two', '\ufeff{"item":{"name":"a","price":1.5},"user":{"username":"u"}}', 'application/json', 200,
     "{\"item\": {\"name\": \"a\", \"price\": 1.5}, \"user\": {\"username\": \"u\"}}"),
    ('/shared', '{"name":"a","price":1.5}', 'application/json', 200,
     "{\"item\": {\"name\": \"a\", \"price\": 1.5}, \"upper\": \"A\"}"),
    ('/shared', '{"item":{"name":"a","price":1.5}}', 'application/json', 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\", \"name\"], \"msg\": \"Field required\", \"input\": {\"item\": {\"name\": \"a\", \"price\": 1.5}}}, {\"type\": \"missing\", \"loc\": [\"body\", \"price\"], \"msg\": \"Field required\", \"input\": {\"item\": {\"name\": \"a\", \"price\": 1.5}}}, {\"type\": \"missing\", \"loc\": [\"body\", \"name\"], \"msg\": \"Field required\", \"input\": {\"item\": {\"name\": \"a\", \"price\": 1.5}}}, {\"type\": \"missing\", \"loc\": [\"body\", \"price\"], \"msg\": \"Field required\", \"input\": {\"item\": {\"name\": \"a\", \"price\": 1.5}}}]}"),
    ('/untyped', '{"a":[1,{"x":null}],"b":"s"}', 'application/json', 200,
     "{\"a\": [1, {\"x\": null}], \"b\": \"s\"}"),
    ('/untyped', '{"a":1}', 'application/json', 200,
     "{\"a\": 1, \"b\": 0}"),
    ('/untyped', '{}', 'application/json', 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\", \"a\"], \"msg\": \"Field required\", \"input\": null}]}"),
    ('/embed_default', '[1]', 'application/json', 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\", \"item\"], \"msg\": \"Field required\", \"input\": null}]}"),
    ('/optional', '{"item":{"name":"a","price":1.5},"n":null}', 'application/json', 422,
     "{\"detail\": [{\"type\": \"int_type\", \"loc\": [\"body\", \"n\"], \"msg\": \"Input should be a valid integer\", \"input\": null}]}"),
    ('/embed', '{"item":{"name":"a","price":1.5,"extra":1}}', 'application/json+x', 422,
     "{\"detail\": [{\"type\": \"missing\", \"loc\": [\"body\", \"item\"], \"msg\": \"Field required\", \"input\": null}]}"),
    ('/embed', '{"item":{"name":"a","price":1.5}}', 'application/vnd.api+json', 200,
     "{\"item\": {\"name\": \"a\", \"price\": 1.5}}"),
    ('/embed', '{"item":{"name":"a","price":1.5},"item":{"name":"b","price":2}}', 'application/json', 200,
     "{\"item\": {\"name\": \"b\", \"price\": 2.0}}"),
]


@pytest.mark.parametrize("path, body, ctype, status, want", FASTAPI)
def test_answers_as_fastapi_does(srv, path, body, ctype, status, want):
    r = srv.request("POST", path, body=body.encode(),
                    headers={"Content-Type": ctype} if ctype else {})
    assert (r.status, r.json()) == (status, json.loads(want))


def test_the_body_is_parsed_once_for_all_its_members(srv):
    # Malformed JSON is one error, not one per member; FastAPI reports json.loads's
    # position and message instead (["body", 8], "JSON decode error").
    r = srv.request("POST", "/two", body=b'{"item":', headers={"Content-Type": "application/json"})
    assert r.status == 422
    (err,) = r.json()["detail"]
    assert err["type"] == "json_invalid" and err["loc"] == ["body"], err


def test_members_on_a_keep_alive_connection(srv):
    conn = srv.connection()
    try:
        for i in range(50):
            body = json.dumps({"item": {"name": f"n{i}", "price": i}, "importance": i + 1})
            r = srv.send(conn, "POST", "/scalar", body=body.encode(),
                         headers={"Content-Type": "application/json"})
            assert (r.status, r.json()) == (200, {"item": {"name": f"n{i}", "price": float(i)},
                                                  "importance": i + 1})
    finally:
        conn.close()


def test_two_parameters_reading_one_member_are_refused():
    from typing import Annotated

    def handler(a: Annotated[int, Body(alias="x")], b: Annotated[int, Body(alias="x")]) -> dict:
        return {}

    with pytest.raises(TypeError, match="both read the body member 'x'"):
        Karak().post("/x")(handler)


def test_body_default_in_annotated_is_refused():
    from typing import Annotated

    def handler(a: Annotated[int, Body(3)]) -> dict:
        return {}

    with pytest.raises(TypeError, match="cannot set a default"):
        Karak().post("/x")(handler)


def test_a_path_parameter_cannot_be_body():
    from typing import Annotated

    def handler(id: Annotated[int, Body()]) -> dict:
        return {}

    with pytest.raises(TypeError, match="cannot be Body()"):
        Karak().post("/x/{id}")(handler)


def test_body_repr():
    assert repr(Body()) == "Body()"
    assert repr(Body(embed=True)) == "Body(embed=True)"
    assert repr(Body(1, alias="a", embed=True)) == "Body(1, alias='a', embed=True)"
