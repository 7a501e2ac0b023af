"""The C JSON encoder (src/_karak/json.c).

The encoder under test is karak._karak.json_dumps, the same function the
engine uses for responses.

The reference is json.dumps(obj, ensure_ascii=False, allow_nan=False,
separators=(",", ":")).encode(), byte for byte.
"""

import collections
import dataclasses
import datetime
import decimal
import enum
import json
import math
import os
import random
import struct
import sys
import threading
import uuid
from pathlib import Path

import pydantic
import pydantic_core
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent

from karak._karak import json_dumps

IMPL = "karak._karak.json_dumps"

MAX_DEPTH = 512


def ref(obj):
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def same(obj):
    got = json_dumps(obj)
    assert got == ref(obj), (IMPL, obj)
    return got


# ---------------------------------------------------------------- hand-picked


class Color(enum.IntEnum):
    RED = 1
    BIG = 2**70


class Name(str, enum.Enum):  # a StrEnum on any version
    A = "alpha"
    Q = 'qu"ote'


class MyStr(str):
    pass


class MyInt(int):
    pass


class MyFloat(float):
    pass


class MyList(list):
    pass


class Reversed(list):
    def __iter__(self):  # json.dumps encodes list subclasses through iter()
        return reversed(self)


class MyDict(dict):
    pass


Point = collections.namedtuple("Point", "x y")

SCALARS = [
    None, True, False,
    0, 1, -1, 7, 10, 99, 100, 12345, 2**31, 2**53, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1,
    2**64, -(2**64), 10**100, -(10**100), 3**200,
    0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 1 / 3, 2.5, 1e15, 1e16, 1e17, 1e22, 1e-4, 1e-5, 1.5e-07,
    123456789.125, 9007199254740991.0, 9007199254740992.0, 9007199254740994.0, -9007199254740992.0,
    float(2**63), float(-(2**63)), float(2**64), 1e308, -1e308, 1.7976931348623157e308,
    5e-324, -5e-324, 2.2250738585072014e-308, 4.35, 100.0, 1234567890123456.0,
    "", "a", "hello world", '"', "\\", "/", "\x00", "\x1f", "\x7f", "\x80", "\n\r\t\b\f",
    "\x0b\x0e\x1b", "é", "ß", "\u2028\u2029", "\ufeff", "\uffff", "日本語", "😀", "\U0010ffff",
    "mixed 😀 \"quoted\" \\ back\nslash é", "x" * 1000, "é" * 1000, "a\x00b" * 300,
    Color.RED, Color.BIG, Name.A, Name.Q, MyStr("sub"), MyStr("süb\n"), MyInt(5), MyInt(-(2**80)),
    MyFloat(2.5), MyFloat(-0.0),
]


@pytest.mark.parametrize("value", SCALARS, ids=repr)
def test_scalar_matches_json_dumps(value):
    same(value)
    same([value, value])
    same({"k": value})


def test_integers_at_every_digit_count_boundary():
    # The encoder sizes an int's decimal form before writing it in place: each
    # length boundary (10**k - 1, 10**k) and the 64-bit ends, both signs, both the
    # one-digit (|v| < 2**30) and the long long paths, and in a buffer that
    # already holds text, so an off-by-one would overwrite or leave a byte.
    values = [0, 2**30 - 1, 2**30, 2**62, 2**63 - 1, -(2**63)]
    for k in range(1, 20):
        values += [10**k - 1, 10**k, 10**k + 1]
    values += [-v for v in values]
    for v in values:
        same(v)
        same(["pad", v, "pad"])
        same({"k": v, "after": v})


def test_containers():
    same([])
    same({})
    same(())
    same([[]])
    same([{}, [], ()])
    same({"a": {"b": {"c": []}}})
    same((1, (2, (3,))))
    same(Point(1, "two"))
    same({"p": Point([1], {"x": None})})
    same(MyList([1, 2, 3]))
    assert same(Reversed([1, 2, 3])) == b"[3,2,1]"
    same(MyDict(a=1, b=[2]))
    same(collections.defaultdict(list, {"x": [1]}))
    same(list(range(1000)))
    same({str(i): i for i in range(1000)})


def test_ordered_dict_order_is_its_own():
    od = collections.OrderedDict([("a", 1), ("b", 2), ("c", 3)])
    od.move_to_end("a")
    assert same(od) == b'{"b":2,"c":3,"a":1}'


def test_dict_subclass_overriding_items_is_honoured():
    class Weird(dict):
        def items(self):
            return [("only", 1)]

    assert same(Weird(a=1, b=2)) == b'{"only":1}'


def test_key_conversions():
    assert same({1: "a"}) == b'{"1":"a"}'
    assert same({-(2**70): 0}) == b'{"-1180591620717411303424":0}'
    assert same({1.5: 0, -0.0: 1, 1e16: 2, 5e-324: 3}) == b'{"1.5":0,"-0.0":1,"1e+16":2,"5e-324":3}'
    assert same({True: 1, False: 2, None: 3}) == b'{"true":1,"false":2,"null":3}'
    assert same({Color.RED: 0, Color.BIG: 1}) == b'{"1":0,"1180591620717411303424":1}'
    assert same({Name.A: 0, MyStr("s\n"): 1}) == b'{"alpha":0,"s\\n":1}'
    assert same({MyInt(3): 0, MyFloat(0.25): 1}) == b'{"3":0,"0.25":1}'
    same({"\x00": 1, '"': 2, "\\": 3, "😀": 4, "é" * 40: 5})


@pytest.mark.parametrize("special", ["\x00", "\x01", "\x08", "\x0c", "\x1f", '"', "\\", "é", "😀"])
def test_escape_at_every_offset(special):
    # The scanner works in 8- and 16-byte words: put the special character at
    # every offset of strings of every length around those sizes.
    for n in range(0, 40):
        for pos in range(n + 1):
            s = "a" * pos + special + "b" * (n - pos)
            assert json_dumps(s) == ref(s), (n, pos)
            assert json_dumps({s: s}) == ref({s: s}), (n, pos)
    many = special * 100
    same(many)
    same("0123456789abcdef" * 3 + many + "0123456789abcdef" * 3)


def test_big_strings():
    same("a" * 10_000_000)
    same("é" * 1_000_000)
    same(("x" * 63 + "\n") * 100_000)
    same(["%d\t" % i for i in range(10_000)])


def test_bool_is_not_int():
    assert same([True, False, 1, 0]) == b"[true,false,1,0]"


# ---------------------------------------------------------------- hypothesis

no_surrogates = st.characters(blacklist_categories=("Cs",))
texts = st.text(no_surrogates) | st.text(
    st.sampled_from(['"', "\\", "\x00", "\x1f", "\x7f", "\n", "\t", "a", "é", "\u2028", "😀", "\uffff"])
)
finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**300), max_value=2**300)
    | finite | texts
)
keys = texts | st.integers() | finite | st.booleans() | st.none()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner) | st.lists(inner).map(tuple) | st.dictionaries(keys, inner),
    max_leaves=60,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_hypothesis_matches_json_dumps(value):
    assert json_dumps(value) == ref(value)


@settings(max_examples=500, deadline=None)
@given(st.text(no_surrogates, min_size=0, max_size=300))
def test_hypothesis_strings(s):
    assert json_dumps(s) == ref(s)
    assert json_dumps({s: [s]}) == ref({s: [s]})


@settings(max_examples=1000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers())
def test_hypothesis_numbers(x):
    assert json_dumps(x) == ref(x)
    assert json_dumps({x: x}) == ref({x: x})


def test_float_sweep_matches_repr():
    # The encoder prints "short" decimals itself and defers the rest to
    # CPython's repr; probe both sides of every boundary it uses.
    rnd = random.Random(1234)
    vals = []
    for d in range(16):
        vals += [round(rnd.uniform(-1e6, 1e6), d) for _ in range(1000)]
        vals += [round(rnd.uniform(-1, 1), d) for _ in range(1000)]
        vals += [round(rnd.uniform(-1e-3, 1e-3), d + 3) for _ in range(500)]
    vals += [i / 100 for i in range(-20000, 20000)]
    vals += [i * 1.1 for i in range(20000)]
    vals += [struct.unpack("d", struct.pack("Q", rnd.getrandbits(64)))[0] for _ in range(20000)]
    vals += [rnd.random() * 10 ** rnd.randrange(-8, 18) for _ in range(20000)]
    for e in range(-6, 17):
        b = 10.0**e
        vals += [b, -b, math.nextafter(b, 0), math.nextafter(b, math.inf)]
    for k in range(20):
        b = 2.0**50 / 10**k
        vals += [b, math.nextafter(b, 0), math.nextafter(b, math.inf), b * 0.999999, b * 1.0000001]
    vals = [v for v in vals if math.isfinite(v)]
    got, want = json_dumps(vals), ref(vals)
    if got != want:
        bad = [(g, w) for g, w in zip(got[1:-1].split(b","), want[1:-1].split(b",")) if g != w]
        pytest.fail(f"{len(bad)} floats differ from repr, e.g. {bad[:5]}")


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), MyFloat("nan")])
def test_non_finite_floats_refused(bad):
    for obj in (bad, [1, bad], {"k": bad}, {bad: 1}):
        with pytest.raises(ValueError, match="^Out of range float values are not JSON compliant"):
            json_dumps(obj)
    with pytest.raises(ValueError) as ours:
        json_dumps(bad)
    with pytest.raises(ValueError) as theirs:
        ref(bad)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("s", ["\ud800", "a\udfff", "😀\udc80z", MyStr("\ud83d")])
def test_lone_surrogates_refused(s):
    for obj in (s, [s], {"k": s}, {s: 1}):
        with pytest.raises(UnicodeEncodeError):
            json_dumps(obj)


@pytest.mark.parametrize("key", [(1, 2), b"bytes", frozenset(), object(), decimal.Decimal(1)])
def test_bad_key_types(key):
    with pytest.raises(TypeError) as ours:
        json_dumps({key: 1})
    assert str(ours.value).startswith("keys must be str, int, float, bool or None, not ")
    assert type(key).__name__ in str(ours.value)
    with pytest.raises(TypeError, match="keys must be"):
        json_dumps({"ok": 1, key: 1}, fallback=lambda o: b"0")


@pytest.mark.parametrize(
    "obj", [object(), b"bytes", bytearray(b"x"), {1, 2}, decimal.Decimal("1.5"), datetime.date(2020, 1, 1)]
)
def test_unknown_type_without_fallback(obj):
    with pytest.raises(TypeError) as ours:
        json_dumps({"a": [obj]})
    with pytest.raises(TypeError) as theirs:
        ref({"a": [obj]})
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(TypeError):
        json_dumps(obj, fallback=None)


def test_fallback_bytes_inserted_raw():
    seen = []

    def fb(o):
        seen.append(o)
        return b'{"raw":true}'

    o = object()
    assert json_dumps({"a": [1, o, 2]}, fallback=fb) == b'{"a":[1,{"raw":true},2]}'
    assert seen == [o]
    assert json_dumps([o, o], fallback=fb) == b'[{"raw":true},{"raw":true}]'
    # natives never reach the fallback
    seen.clear()
    json_dumps(SCALARS, fallback=fb)
    assert seen == []


@pytest.mark.parametrize("result", ["str", bytearray(b"1"), memoryview(b"1"), None, 1])
def test_fallback_must_return_bytes(result):
    with pytest.raises(TypeError, match="must return bytes"):
        json_dumps([object()], fallback=lambda o: result)


def test_fallback_exception_propagates():
    class Boom(Exception):
        pass

    def fb(o):
        raise Boom("no")

    with pytest.raises(Boom):
        json_dumps({"a": {"b": object()}}, fallback=fb)


def nested_lists(n):
    x = []
    for _ in range(n - 1):
        x = [x]
    return x


def nested_dicts(n):
    x = {}
    for _ in range(n - 1):
        x = {"k": x}
    return x


def test_depth_limit_boundary():
    for make in (nested_lists, nested_dicts):
        ok = make(MAX_DEPTH)
        assert json_dumps(ok) == ref(ok)
        with pytest.raises(RecursionError):
            json_dumps(make(MAX_DEPTH + 1))
    t = ()
    for _ in range(MAX_DEPTH + 1):
        t = (t,)
    with pytest.raises(RecursionError):
        json_dumps(t)


def test_very_deep_nesting_is_an_error_not_a_crash():
    for make in (nested_lists, nested_dicts):
        with pytest.raises(RecursionError):
            json_dumps(make(100_000))
    mixed = None
    for i in range(100_000):
        mixed = [mixed] if i % 2 else {"k": mixed}
    with pytest.raises(RecursionError):
        json_dumps(mixed)


def test_circular_structures_are_an_error():
    a = [1]
    a.append(a)
    d = {"x": 1}
    d["self"] = d
    mix = {"l": []}
    mix["l"].append(mix)
    for obj in (a, d, mix):
        with pytest.raises(RecursionError):
            json_dumps(obj)
    # and the encoder is still fine afterwards
    same({"after": [1, 2]})


def test_fallback_mutating_the_containers_being_encoded():
    # The encoder must hold what it is encoding, not borrow it from the
    # container: here the fallback drops the only other reference to the value
    # (or list) under encoding. Without the encoder's own references this is a
    # use-after-free (reliably caught under ASan with PYTHONMALLOC=malloc).
    class Hook:
        pass

    d = {"a": [Hook(), "x" * 100, ["nested"] * 50], "b": 2}

    def clear_dict(o):
        d.clear()
        return b"0"

    out = json_dumps(d, fallback=clear_dict)
    assert json.loads(out) == {"a": [0, "x" * 100, ["nested"] * 50]}

    items = [[Hook(), "tail" * 30], "b"]

    def drop_item(o):
        items[0] = None
        return b"1"

    assert json.loads(json_dumps(items, fallback=drop_item)) == [[1, "tail" * 30], "b"]

    # grow the dict while it is iterated (forces a resize of its table)
    g = {"first": Hook(), "second": 1}

    def grow(o):
        for i in range(1000):
            g["k%d" % i] = "v" * 50
        return b"0"

    out = json_dumps(g, fallback=grow)
    assert json.loads(out)["first"] == 0

    # a list shrunk while encoded ends early, still valid JSON
    shrink = [Hook(), "a" * 50, "b" * 50]

    def cut(o):
        del shrink[1:]
        return b"1"

    assert json.loads(json_dumps(shrink, fallback=cut)) == [1]


# ---------------------------------------------------------------- pydantic

class Kind(enum.Enum):
    A = "a"
    B = 2


class Item(pydantic.BaseModel):
    name: str
    price: decimal.Decimal
    when: datetime.datetime
    id: uuid.UUID
    tags: list[str] = []
    kind: Kind = Kind.A


@dataclasses.dataclass
class DC:
    x: int
    y: str


def test_pydantic_fallback_nested_in_natives():
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    m = Item(name="é\"x", price=decimal.Decimal("1.10"), when=when, id=u, tags=["t"], kind=Kind.B)
    payload = {
        "items": [m, {"inner": m}],
        "count": 2,
        "at": when,
        "day": datetime.date(2024, 1, 2),
        "u": u,
        "d": decimal.Decimal("3.14"),
        "e": Kind.A,
        "dc": DC(1, "y"),
        "set": {1},
    }
    out = json_dumps(payload, fallback=pydantic_core.to_json)
    model_json = {
        "name": 'é"x', "price": "1.10", "when": "2024-01-02T03:04:05",
        "id": str(u), "tags": ["t"], "kind": 2,
    }
    assert json.loads(out) == {
        "items": [model_json, {"inner": model_json}],
        "count": 2,
        "at": "2024-01-02T03:04:05",
        "day": "2024-01-02",
        "u": str(u),
        "d": "3.14",
        "e": "a",
        "dc": {"x": 1, "y": "y"},
        "set": [1],
    }
    assert out.startswith(b'{"items":[' + m.model_dump_json().encode() + b',{"inner":')


def test_pydantic_fallback_error_propagates():
    with pytest.raises(pydantic_core.PydanticSerializationError):
        json_dumps({"x": object()}, fallback=pydantic_core.to_json)


# ---------------------------------------------------------------- threads


def test_concurrent_mutation_does_not_crash():
    """8 threads encode a shared structure while 2 threads replace its values
    (freeing the old ones), grow, shrink and clear it. Any output is fine as
    long as it is valid JSON and nothing crashes. On 3.13t an encoder that
    borrows list items instead of holding them crashes here in most runs
    (the deterministic check is the fallback test above, under ASan)."""
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    duration = 1.0 if gil else 2.0

    class Opaque:
        pass

    def fb(o):
        return b'"opaque"'

    slots_d = {f"k{i}": [] for i in range(8)}
    slots_l = [[] for _ in range(8)]
    root = {"d": slots_d, "l": slots_l, "t": (slots_l, slots_d)}
    stop = threading.Event()
    errors = []
    counts = []

    def fresh(rnd):
        r = rnd.randrange(5)
        if r == 0:
            return [[str(i), {"v": i * 0.5, "s": "é\n😀"}] for i in range(rnd.randrange(40))]
        if r == 1:
            return {str(i): ["x" * i, Opaque(), None] for i in range(rnd.randrange(40))}
        if r == 2:
            return ["é\"" * rnd.randrange(50) for _ in range(20)]
        if r == 3:
            return (rnd.randrange(-(2**100), 2**100), rnd.random(), True)
        return [rnd.randrange(2**62) for _ in range(20)]

    def encoder():
        try:
            n = 0
            while not stop.is_set():
                json.loads(json_dumps(root, fallback=fb))
                n += 1
            counts.append(n)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def mutator(seed):
        rnd = random.Random(seed)
        try:
            while not stop.is_set():
                slots_d[f"k{rnd.randrange(8)}"] = fresh(rnd)
                try:
                    slots_l[rnd.randrange(8)] = fresh(rnd)
                except IndexError:  # the other mutator emptied it
                    pass
                op = rnd.randrange(40)
                if op == 0:  # grow and shrink the list
                    slots_l.extend(fresh(rnd) for _ in range(8))
                    del slots_l[8:]
                elif op == 1:  # grow the dict (table resize), then drop the extras
                    slots_d.update({f"x{i}": fresh(rnd) for i in range(30)})
                    for i in range(30):
                        slots_d.pop(f"x{i}", None)
                elif op == 2:  # empty both for a moment
                    slots_d.clear()
                    del slots_l[:]
                    slots_d.update({f"k{i}": [] for i in range(8)})
                    slots_l.extend([] for _ in range(8))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=encoder) for _ in range(8)]
    threads += [threading.Thread(target=mutator, args=(s,)) for s in range(2)]
    for t in threads:
        t.start()
    stop.wait(duration)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert len(counts) == 8 and all(n > 0 for n in counts)
