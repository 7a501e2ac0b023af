"""Routes for tests/test_response_shapes.py: one per case in CASES, each returning
CASES[name].build() with response model CASES[name].type.

Plain models are written by Karak's own encoder (karak/_shapes.py); the others, and
values that are not instances of exactly the model, by pydantic. Either way the bytes
must be pydantic's; the test computes those in its own process from the same cases.
"""
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_serializer

from karak import Karak


class Leaf(BaseModel):
    s: str
    i: int
    f: float
    b: bool
    n: None = None


class Plain(BaseModel):
    name: str
    count: int = 0
    ratio: Optional[float] = None
    flags: list[bool] = []
    scores: dict[str, float] = {}
    grid: list[list[int]] = []
    kind: Literal["a", "b"] = "a"
    leaf: Leaf
    leaves: list[Leaf] = []
    by_name: dict[str, Leaf] = {}
    maybe: Optional[Leaf] = None


class Floats(BaseModel):
    fs: list[float]
    one: float = 0.0


class Node(BaseModel):
    v: int
    children: list["Node"] = []


class SubPlain(Plain):
    secret: str = "not in Plain's fields"


class Aliased(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True)
    name: str = Field(serialization_alias="fullName")


class WithSerializer(BaseModel):
    when: int

    @field_serializer("when")
    def _when(self, v: int) -> str:
        return f"t+{v}"


class WithComputed(BaseModel):
    a: int

    @computed_field
    @property
    def double(self) -> int:
        return self.a * 2


class Extra(BaseModel):
    model_config = ConfigDict(extra="allow")
    a: int


class Excluded(BaseModel):
    a: int
    hidden: str = Field(default="x", exclude=True)


def leaf(k: int) -> Leaf:
    return Leaf(s=f"s{k}", i=k, f=k / 4, b=k % 2 == 0)


def plain() -> Plain:
    return Plain(name="p", count=3, ratio=0.5, flags=[True, False], scores={"x": 1.25},
                 grid=[[1, 2], [3]], kind="b", leaf=leaf(1), leaves=[leaf(2), leaf(3)],
                 by_name={"k": leaf(4)}, maybe=leaf(5))


FLOATS = [1e16, 1e-5, 2.5e-5, 1.5e-7, 123.456, -0.0, 1e22, 2.5e-300, 1e15, 0.1, 1 / 3,
          9007199254740993.0, 1.7976931348623157e308, 5e-324, 1e-4, -1e-5]

TEXT = 'quote " backslash \\ newline \n tab \t nul \x00 unit \x1f del \x7f é 😀 \u2028 </script>'


@dataclass
class Case:
    type: Any
    build: Callable[[], Any]
    plain: bool  # karak/_shapes.py finds the type plain (the value may still not fit)


CASES = {
    "plain": Case(Plain, plain, True),
    "defaults": Case(Plain, lambda: Plain(name="d", leaf=leaf(0)), True),
    "floats": Case(Floats, lambda: Floats(fs=FLOATS, one=1e-5), True),
    "nan": Case(Leaf, lambda: Leaf(s="n", i=1, f=float("nan"), b=True), True),
    "infinity": Case(Floats, lambda: Floats(fs=[1.0, float("-inf")]), True),
    "text": Case(Leaf, lambda: Leaf(s=TEXT, i=2**70, f=1.0, b=False), True),
    "list": Case(list[Leaf], lambda: [leaf(1), leaf(2)], True),
    "empty_list": Case(list[Leaf], lambda: [], True),
    "dict": Case(dict[str, Leaf], lambda: {"a": leaf(1), "é": leaf(2)}, True),
    "optional_none": Case(Optional[Leaf], lambda: None, True),
    "optional_some": Case(Optional[Leaf], lambda: leaf(7), True),
    "dict_for_model": Case(Leaf, lambda: {"s": "x", "i": "5", "f": 2, "b": True}, True),
    "dict_in_list": Case(list[Leaf], lambda: [leaf(1), {"s": "y", "i": 2, "f": 1, "b": 0}], True),
    "subclass": Case(Plain, lambda: SubPlain(**plain().model_dump()), True),
    "missing_field": Case(Leaf, lambda: Leaf.model_construct(s="m", i=1, b=True), True),
    "aliased": Case(Aliased, lambda: Aliased(name="n"), False),
    "serializer": Case(WithSerializer, lambda: WithSerializer(when=5), False),
    "computed": Case(WithComputed, lambda: WithComputed(a=21), False),
    "extra": Case(Extra, lambda: Extra(a=1, b=2), False),
    "excluded": Case(Excluded, lambda: Excluded(a=1, hidden="no"), False),
    "recursive": Case(Node, lambda: Node(v=1, children=[Node(v=2, children=[Node(v=3)])]), False),
}

app = Karak()


def _route(case: Case) -> Callable[[], Any]:
    def handler():
        return case.build()
    return handler


for _name, _case in CASES.items():
    app.get(f"/case/{_name}", response_model=_case.type)(_route(_case))


class Mixed(BaseModel):
    """A plain model for random values: the test posts them, pydantic validates the body,
    and the handler's instance comes back through Karak's encoder."""
    fs: list[float] = []
    ints: list[int] = []
    texts: list[str] = []
    by_key: dict[str, float] = {}
    leaves: list[Leaf] = []
    maybe: Optional[float] = None


@app.post("/echo/mixed")
def echo_mixed(body: Mixed) -> Mixed:
    return body
