"""Reading a handler's signature once, at registration, into a C plan.

Each parameter becomes one step the engine executes per request:

- a name that appears in the path template: a path parameter;
- ``Request``: the request object;
- ``Annotated[T, Depends(fn)]`` or ``= Depends(fn)``: a dependency (its own plan,
  called at most once per request);
- ``Annotated[T, Cookie()]``: a cookie (by the parameter's name);
- ``Annotated[T, Header()]``: a request header (``x_token`` reads ``x-token``;
  ``list[T]`` gets every field of that name);
- a pydantic model (or another structured type: ``dict``, ``list[Model]`` ...), or
  ``Annotated[T, Body()]``: the JSON body, validated by pydantic-core from the raw
  bytes. With more than one body parameter in the handler and its dependencies, or
  ``Body(embed=True)``, the body is a JSON object with one member per parameter
  (named by the parameter, or its ``alias``), as in FastAPI;
- anything else (``str``, ``int``, ``float``, ``bool``, ``Optional`` of those, enums,
  ``Literal``, UUID, dates ...; ``Annotated[list[T], Query()]`` for repeated values):
  a query parameter.

``int``, ``float``, ``bool`` and ``str`` are converted in C; other scalar types by
their pydantic validator, and so is any value with constraints (``Query(max_length=5)``,
``Path(gt=0)``, ``Annotated[int, Gt(0)]``): the marker's and the ``Annotated``
metadata are put back into ``Annotated[T, ...]`` for its ``TypeAdapter``.
"""
from __future__ import annotations

import inspect
import re
import types
import typing
from typing import Any, Callable, Optional

from pydantic import BaseModel, Field, TypeAdapter

from . import _karak
from ._shapes import compile_shape

_EMPTY = inspect.Parameter.empty
PATH_PARAM_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::path)?\}")


class Depends:
    """Marks a parameter as a dependency: ``Annotated[T, Depends(fn)]`` or ``x=Depends(fn)``.

    ``fn`` is called (with its own parameters resolved the same way) at most once
    per request; its value is shared by every parameter that depends on it. A
    generator function is run up to its ``yield`` before the handler and finished
    after it. ``Depends()`` with no function uses the annotated type itself.
    """

    __slots__ = ("dependency",)

    def __init__(self, dependency: Optional[Callable[..., Any]] = None) -> None:
        self.dependency = dependency

    def __repr__(self) -> str:
        name = getattr(self.dependency, "__name__", repr(self.dependency))
        return f"Depends({name})"


class _Param:
    """Where a parameter is read from, with FastAPI's signature: a default (``...``
    or nothing: required), an ``alias``, and pydantic's constraints, which are
    checked by pydantic's own validator with FastAPI's 422 errors
    (``Query(max_length=50)``, ``Path(gt=0)``, ``Header(pattern=...)``)."""

    __slots__ = ("default", "alias", "constraints")

    def __init__(self, default: Any = _EMPTY, *, alias: Optional[str] = None,
                 gt: Any = None, ge: Any = None, lt: Any = None, le: Any = None,
                 multiple_of: Any = None, min_length: Optional[int] = None,
                 max_length: Optional[int] = None, pattern: Optional[str] = None) -> None:
        self.default = _EMPTY if default is ... else default
        self.alias = alias
        given = {"gt": gt, "ge": ge, "lt": lt, "le": le, "multiple_of": multiple_of,
                 "min_length": min_length, "max_length": max_length, "pattern": pattern}
        self.constraints = {k: v for k, v in given.items() if v is not None}

    def metadata(self) -> tuple:
        """The constraints as pydantic metadata for ``Annotated[T, ...]``."""
        return (Field(**self.constraints),) if self.constraints else ()

    def __repr__(self) -> str:
        args = [] if self.default is _EMPTY else [repr(self.default)]
        args += [f"alias={self.alias!r}"] if self.alias else []
        args += [f"{k}={v!r}" for k, v in self.constraints.items()]
        return f"{type(self).__name__}({', '.join(args)})"


class Query(_Param):
    """A query parameter (the default for scalars; needed for ``list[T]`` of
    repeated values)."""

    __slots__ = ()


class Path(_Param):
    """A path parameter (named in the route's template); for its constraints."""

    __slots__ = ()

    def __init__(self, default: Any = _EMPTY, **constraints: Any) -> None:
        if "alias" in constraints:
            raise TypeError("Path() has no alias: a path parameter is named by the template")
        super().__init__(default, **constraints)


class Header(_Param):
    """A request header (``x_token`` reads ``x-token`` unless ``convert_underscores``
    is false); ``list[T]`` gets every field of that name."""

    __slots__ = ("convert_underscores",)

    def __init__(self, default: Any = _EMPTY, *, alias: Optional[str] = None,
                 convert_underscores: bool = True, **constraints: Any) -> None:
        super().__init__(default, alias=alias, **constraints)
        self.convert_underscores = convert_underscores


class Cookie(_Param):
    """A cookie of the request's Cookie header (by the parameter's name, or ``alias``)."""

    __slots__ = ()


class Body(_Param):
    """The JSON body, or with ``embed=True`` (implied when the handler and its
    dependencies read more than one body parameter) the member of the body's JSON
    object named by the parameter or ``alias``: ``importance: Annotated[int, Body()]``
    beside ``item: Item`` reads ``{"item": {...}, "importance": 5}``."""

    __slots__ = ("embed",)

    def __init__(self, default: Any = _EMPTY, *, embed: bool = False,
                 alias: Optional[str] = None, **constraints: Any) -> None:
        super().__init__(default, alias=alias, **constraints)
        self.embed = embed

    def __repr__(self) -> str:
        r = super().__repr__()
        if not self.embed:
            return r
        return r[:-1] + ("embed=True)" if r.endswith("()") else ", embed=True)")


class _BodyParam:
    """A body parameter as read from a signature, before the whole plan tree is known:
    whether the body is that one value or an object of members is decided by how many
    body parameters the handler and its dependencies have (PlanBuilder.root)."""

    __slots__ = ("where", "name", "key", "required", "default", "ann", "embed")

    def __init__(self, where: str, name: str, key: str, required: bool, default: Any,
                 ann: Any, embed: bool) -> None:
        self.where, self.name, self.key = where, name, key
        self.required, self.default, self.ann, self.embed = required, default, ann, embed

    def step(self, embedded: bool) -> tuple:
        """The engine's step. The whole body is validated from its JSON bytes
        (validate_json, a model by its own validator); a member, from the value the
        body's object has under ``key`` (validate_python), as FastAPI does."""
        tp, meta = _split_annotated(self.ann)
        if not embedded and _is_model(tp) and not meta:
            validator = tp.__pydantic_validator__
        else:
            validator = TypeAdapter(self.ann).validator
        return (_karak.STEP_BODY, self.name, self.key, 0, self.required, self.default,
                validator, embedded, -1)


_NONE_TYPES = (type(None), None)
_SCALAR_CONV = {str: _karak.CONV_STR, int: _karak.CONV_INT, float: _karak.CONV_FLOAT,
                bool: _karak.CONV_BOOL}
_UNCHECKED = (dict, list, tuple)
# int and float values take a fast path in C for their common form (sign and digits);
# everything else (underscores, "1.0", Unicode spaces, 4300-digit ints) goes to
# pydantic's own validator, so its lax rules and its errors are the ones users see.
_SCALAR_VALIDATOR = {int: TypeAdapter(int).validator, float: TypeAdapter(float).validator}


def _is_union(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin is typing.Union or origin is types.UnionType


def _strip_optional(tp: Any) -> Any:
    """``Optional[T]`` / ``T | None`` -> T; anything else unchanged."""
    if _is_union(tp):
        args = [a for a in typing.get_args(tp) if a not in _NONE_TYPES]
        if len(args) == 1:
            return args[0]
    return tp


def _split_annotated(tp: Any) -> tuple[Any, tuple]:
    if typing.get_origin(tp) is typing.Annotated:
        args = typing.get_args(tp)
        return args[0], tuple(args[1:])
    return tp, ()


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _is_structured(tp: Any) -> bool:
    """A type read from the JSON body rather than from a query string."""
    tp = _strip_optional(tp)
    if _is_model(tp):
        return True
    origin = typing.get_origin(tp)
    if origin in (list, dict, set, frozenset, tuple) or tp in (list, dict, set, frozenset, tuple):
        return True
    if _is_union(tp):
        return any(_is_structured(a) for a in typing.get_args(tp))
    return inspect.isclass(tp) and hasattr(tp, "__dataclass_fields__")


def _unchecked(tp: Any) -> bool:
    """Would pydantic's validation of a return value against this annotation change
    nothing? Then the C encoder writes the value as it is: no annotation, Any, None,
    the bare containers (dict, list, tuple), and unions of these. Everything else
    (int, list[int], dict[str, Model] ...) is validated, and so converted or refused,
    as FastAPI does with a return annotation or response_model."""
    if tp is _EMPTY or tp is Any or tp in _NONE_TYPES or tp in _UNCHECKED:
        return True
    tp, meta = _split_annotated(tp)
    if meta:
        return False  # constraints (Field(gt=0) ...) are checked by pydantic
    origin = typing.get_origin(tp)
    if origin in (dict, list) and all(a is Any for a in typing.get_args(tp)):
        return True
    if _is_union(tp):
        return all(_unchecked(a) for a in typing.get_args(tp))
    return False


def _involves_response(tp: Any) -> bool:
    if inspect.isclass(tp) and issubclass(tp, _karak.Response):
        return True
    return _is_union(tp) and any(_involves_response(a) for a in typing.get_args(tp))


def check_sync(fn: Callable[..., Any], what: str) -> None:
    """Refuses coroutine and async-generator functions, with the reason."""
    target = fn.__call__ if not inspect.isroutine(fn) and not inspect.isclass(fn) else fn
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(target) or \
            inspect.isasyncgenfunction(fn) or inspect.isasyncgenfunction(target):
        name = getattr(fn, "__qualname__", repr(fn))
        raise TypeError(
            f"{what} {name} is 'async def': Karak runs plain functions in parallel on worker "
            f"threads (free-threaded Python) and has no event loop to await it. "
            f"Define it with 'def'; blocking calls are fine, they hold only their own worker."
        )


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:
        return dict(getattr(target, "__annotations__", {}) or {})


class PlanBuilder:
    """Compiles a handler and all its dependencies into one root plan.

    Dependencies get indices in a table shared by the whole tree, so the engine
    caches each one once per request.
    """

    def __init__(self, path_params: set[str]) -> None:
        self.path_params = path_params
        self.dep_index: dict[Any, int] = {}
        self.dep_plans: list[Any] = []
        self._building: list[Any] = []
        # (fn, steps, is_generator) of each dependency, by index: made into plans once
        # the whole tree is read, when the body's form is known.
        self._dep_specs: list[tuple] = []

    def root(self, fn: Callable[..., Any], status_code: int, response_model: Any) -> Any:
        check_sync(fn, "handler")
        steps = self._steps(fn)
        self._finish_body(fn, [steps] + [spec[1] for spec in self._dep_specs])
        self.dep_plans = [_karak.Plan(dfn, dsteps, 200, None, None, None, is_gen)
                          for dfn, dsteps, is_gen in self._dep_specs]
        ret_validator = ret_serializer = ret_shape = None
        model = response_model
        if model is _EMPTY:
            model = _hints(fn).get("return", _EMPTY)
        if model is not None and not _involves_response(model) and not _unchecked(model):
            adapter = TypeAdapter(model)
            ret_validator, ret_serializer = adapter.validator, adapter.serializer
            ret_shape = compile_shape(adapter.core_schema)
        return _karak.Plan(fn, steps, status_code, tuple(self.dep_plans),
                           ret_validator, ret_serializer, False, ret_shape)

    def _dependency(self, fn: Callable[..., Any]) -> int:
        if fn in self.dep_index:
            return self.dep_index[fn]
        if fn in self._building:
            raise TypeError(f"dependency cycle through {getattr(fn, '__qualname__', fn)!r}")
        check_sync(fn, "dependency")
        self._building.append(fn)
        steps = self._steps(fn)
        self._building.pop()
        self.dep_index[fn] = len(self._dep_specs)
        self._dep_specs.append((fn, steps, inspect.isgeneratorfunction(fn)))
        return self.dep_index[fn]

    @staticmethod
    def _finish_body(fn: Any, step_lists: list[list]) -> None:
        """Turns every body parameter of the tree into its step, in place. FastAPI's
        rule: the body is the one parameter's value, unless there are several (by
        name: dependencies that read the same name read the same member) or it says
        Body(embed=True); then each reads its member of the body's JSON object."""
        params = [st for steps in step_lists for st in steps if isinstance(st, _BodyParam)]
        if not params:
            return
        names = {p.name for p in params}
        embedded = len(names) > 1 or any(p.embed for p in params)
        by_key: dict[str, _BodyParam] = {}
        for p in params:
            first = by_key.setdefault(p.key, p)
            if embedded and first.name != p.name:
                raise TypeError(f"{fn.__qualname__}: {first.where} and {p.where} both read "
                                f"the body member {p.key!r}")
        for steps in step_lists:
            for i, st in enumerate(steps):
                if isinstance(st, _BodyParam):
                    steps[i] = st.step(embedded)

    def _steps(self, fn: Callable[..., Any]) -> list[tuple]:
        sig = inspect.signature(fn)
        hints = _hints(fn)
        steps = []
        for name, p in sig.parameters.items():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue  # *args/**kwargs receive nothing, as in FastAPI
            if p.kind is p.POSITIONAL_ONLY:
                raise TypeError(f"{fn.__qualname__}: positional-only parameter {name!r} "
                                f"cannot be filled from a request")
            steps.append(self._step(fn, name, p, hints.get(name, p.annotation)))
        # FastAPI's order (solve_dependencies): dependencies first, then path, query,
        # header, cookie and body parameters, each in signature order. Arguments are
        # passed by name, so this orders only the work and the 422 errors.
        steps.sort(key=lambda st: _STEP_RANK[_karak.STEP_BODY if isinstance(st, _BodyParam)
                                             else st[0]])
        return steps

    def _step(self, fn: Any, name: str, p: inspect.Parameter, ann: Any) -> tuple:
        tp, meta = _split_annotated(ann)
        default = p.default
        where = f"{getattr(fn, '__qualname__', fn)}: parameter {name!r}"
        marker = next((m for m in meta if isinstance(m, _MARKERS)), None)
        if isinstance(marker, _Param) and marker.default is not _EMPTY:
            raise TypeError(f"{where}: {type(marker).__name__}() in Annotated cannot set a "
                            f"default; write '= value' instead")
        if isinstance(default, _MARKERS):
            if marker is not None:
                raise TypeError(f"{where}: two markers ({marker!r} and {default!r})")
            marker = default
            default = marker.default if isinstance(marker, _Param) else _EMPTY
        required = default is _EMPTY
        dflt = None if required else default
        # Constraints: pydantic metadata written in Annotated (Gt(0), Field(le=9) ...)
        # and the marker's own; with any, the value goes to pydantic's validator whole.
        extra = tuple(m for m in meta if not isinstance(m, _MARKERS))
        if isinstance(marker, _Param):
            extra += marker.metadata()
        vtp = typing.Annotated[(str if tp is _EMPTY else tp, *extra)] if extra else tp

        if isinstance(marker, Depends):
            dep = marker.dependency if marker.dependency is not None else tp
            if not callable(dep):
                raise TypeError(f"{fn.__qualname__}: Depends() on {name!r} needs a callable")
            idx = self._dependency(dep)
            return (_karak.STEP_DEP, name, name, 0, True, None, None, False, idx)
        if inspect.isclass(tp) and issubclass(tp, _karak.Request):
            return (_karak.STEP_REQUEST, name, name, 0, True, None, None, False, -1)
        if isinstance(marker, Header):
            key = marker.alias or (name.replace("_", "-") if marker.convert_underscores else name)
            if _is_sequence(tp):  # every field of that name, as headers.getlist(name)
                return (_karak.STEP_HEADER, name, key, _karak.CONV_VALIDATOR, required,
                        dflt, _list_validator(tp, extra), True, -1)
            conv, validator = self._converter(vtp)
            return (_karak.STEP_HEADER, name, key, conv, required, dflt, validator,
                    False, -1)
        if isinstance(marker, Cookie):
            if _is_sequence(tp):
                raise TypeError(f"{where}: a Cookie() parameter cannot be a list: a cookie "
                                f"name has one value")
            conv, validator = self._converter(vtp)
            return (_karak.STEP_COOKIE, name, marker.alias or name, conv, required, dflt,
                    validator, False, -1)
        if isinstance(marker, Path) and name not in self.path_params:
            raise TypeError(f"{where}: Path() but the route's template has no {{{name}}}")
        if name in self.path_params:
            if isinstance(marker, (Query, Body)):  # Header() and Cookie() returned above
                raise TypeError(f"{where}: named in the path template, so it cannot be "
                                f"{type(marker).__name__}()")
            conv, validator = self._converter(vtp)
            return (_karak.STEP_PATH, name, name, conv, required, dflt, validator, False, -1)
        if isinstance(marker, Body) or (marker is None and tp is not _EMPTY and
                                        _is_structured(tp)):
            btp = Any if tp is _EMPTY else tp
            return _BodyParam(where, name, (marker.alias if marker else None) or name,
                              required, dflt, typing.Annotated[(btp, *extra)] if extra else btp,
                              bool(marker and marker.embed))
        key = marker.alias if isinstance(marker, Query) and marker.alias else name
        if _is_sequence(tp):
            return (_karak.STEP_QUERY, name, key, _karak.CONV_VALIDATOR, required, dflt,
                    _list_validator(tp, extra), True, -1)
        conv, validator = self._converter(vtp)
        return (_karak.STEP_QUERY, name, key, conv, required, dflt, validator, False, -1)

    @staticmethod
    def _converter(tp: Any) -> tuple[int, Any]:
        """(conv, validator) for one value of type tp: the C fast path for plain
        str/int/float/bool, pydantic's validator for anything else, constraints
        (an Annotated tp) included."""
        if tp is _EMPTY or tp is Any:
            return _karak.CONV_STR, None
        inner = _strip_optional(tp)
        conv = _SCALAR_CONV.get(inner)
        if conv is not None:
            return conv, _SCALAR_VALIDATOR.get(inner)
        return _karak.CONV_VALIDATOR, TypeAdapter(tp).validator


_MARKERS = (Depends, Query, Path, Header, Cookie, Body)
_STEP_RANK = {_karak.STEP_DEP: 0, _karak.STEP_REQUEST: 0, _karak.STEP_PATH: 1,
              _karak.STEP_QUERY: 2, _karak.STEP_HEADER: 3, _karak.STEP_COOKIE: 4,
              _karak.STEP_BODY: 5}


def _list_validator(tp: Any, extra: tuple) -> Any:
    """The validator of a repeated parameter: list[T] (Optional stripped, the
    constraints applied to the list, as in FastAPI: max_length counts items)."""
    inner = _strip_optional(tp)
    return TypeAdapter(typing.Annotated[(inner, *extra)] if extra else inner).validator


def _is_sequence(tp: Any) -> bool:
    """list[T], set[T], tuple[...] (or Optional of one): a parameter given by repeating it."""
    inner = _strip_optional(tp)
    return typing.get_origin(inner) in (list, set, frozenset, tuple) or inner in (list, set, tuple)


def path_param_names(path: str) -> set[str]:
    return set(PATH_PARAM_RE.findall(path))
