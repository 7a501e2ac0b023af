"""Response models written by Karak's own encoder (karak/_shapes.py, json.c) must give
pydantic's bytes exactly; values that do not fit a plain shape must go to pydantic.

Each case of tests/apps/shapes_app.py is served for real and its body compared with
what pydantic-core makes of the same value in this process: validate_python, then
to_json, which is Karak's path for response models that are not plain."""
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))
from shapes_app import CASES, Mixed  # noqa: E402

from karak._shapes import SHAPE_LIST, SHAPE_MODEL, compile_shape  # noqa: E402


@pytest.fixture
def srv(server_pool):
    return server_pool.get("shapes_app:app", workers=2)


def pydantic_answer(case):
    """(status, body) Karak gives when pydantic serialises the value."""
    adapter = TypeAdapter(case.type)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return 200, adapter.serializer.to_json(adapter.validator.validate_python(case.build()))
    except Exception:
        return 500, None


@pytest.mark.parametrize("name", sorted(CASES))
def test_body_is_pydantics(srv, name):
    case = CASES[name]
    status, body = pydantic_answer(case)
    reply = srv.get(f"/case/{name}")
    assert reply.status == status, reply
    if status == 200:
        assert reply.body == body
        assert reply.header("Content-Type") == "application/json"


@pytest.mark.parametrize("name", sorted(CASES))
def test_which_types_are_plain(name):
    case = CASES[name]
    shape = compile_shape(TypeAdapter(case.type).core_schema)
    assert (shape is not None) == case.plain


def test_shape_of_a_list_of_models_names_the_fields_in_order():
    from shapes_app import Leaf
    shape = compile_shape(TypeAdapter(list[Leaf]).core_schema)
    assert shape == (SHAPE_LIST, (SHAPE_MODEL, Leaf, ("s", "i", "f", "b", "n"),
                                  (None, None, None, None, None)))


def test_plain_values_outside_a_model_are_left_to_pydantic():
    # pydantic coerces them ("1" -> 1 for list[int]); only model instances are trusted.
    assert compile_shape(TypeAdapter(list[int]).core_schema) is None
    assert compile_shape(TypeAdapter(dict[str, float]).core_schema) is None


# Random values: whatever the engine writes for a plain model must be pydantic's bytes.
finite = st.floats(allow_nan=False, allow_infinity=False)
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
ints = st.integers() | st.integers(min_value=-(2**200), max_value=2**200)
leaves = st.builds(dict, s=texts, i=ints, f=finite, b=st.booleans(), n=st.none())
mixed = st.fixed_dictionaries({}, optional={
    "fs": st.lists(finite, max_size=30), "ints": st.lists(ints, max_size=10),
    "texts": st.lists(texts, max_size=5), "by_key": st.dictionaries(texts, finite, max_size=5),
    "leaves": st.lists(leaves, max_size=3), "maybe": st.none() | finite,
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mixed)
def test_random_plain_models_are_written_as_pydantic_writes_them(srv, value):
    expected = Mixed.model_validate(value).model_dump_json().encode()
    reply = srv.request("POST", "/echo/mixed", json=value)
    assert reply.status == 200, reply
    assert reply.body == expected


def test_the_random_model_is_plain():
    # Else the test above would compare pydantic with itself.
    assert compile_shape(TypeAdapter(Mixed).core_schema) is not None
