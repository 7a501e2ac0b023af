"""Response shapes: when the C engine may write a response model's JSON itself.

A handler annotated ``-> Model`` (or ``list[Model]``, ``dict[str, Model]``,
``Optional[Model]``) normally has its return value validated and serialised by
pydantic-core. When the model is *plain* (fields of JSON types, nested plain models,
nothing that changes how a value is written) the engine can write an instance of
exactly that class from its ``__dict__``, field by field, with its own encoder: same
keys, same order, same values. Anything it does not recognise on the way (a subclass,
a dict instead of an instance, a missing field, a NaN) makes it fall back to pydantic
for that response, so the result is pydantic's answer or the same JSON written faster.

``compile_shape(core_schema)`` returns the shape the engine walks, or None when the
type is not plain. Shapes are tuples, built once at registration and then only read:

    None                                   any JSON value, written as json.dumps would
    (SHAPE_MODEL, cls, names, shapes)      an instance of exactly cls: {"name": value, ...}
    (SHAPE_LIST, shape)                    a list whose items have that shape
    (SHAPE_DICT, shape)                    a dict with str keys whose values have it
    (SHAPE_OPTIONAL, shape)                None, or that shape

A bare ``None`` shape (a plain value) is only allowed inside a model: an instance
returned by a handler was validated when it was made, while a plain value outside a
model (``-> list[int]``) would be coerced by pydantic, so it is left to pydantic.

What is not plain: aliases, serializers (field, model, ``PlainSerializer`` ...),
computed fields, excluded fields, ``extra='allow'``, ``revalidate_instances``, root
models, recursive models, and every type other than str, int, float, bool, None, list,
dict, Optional, Literal of those, and plain models. (A model used in several places is
a pydantic "definition": it is followed, once per use, unless it refers to itself.)
"""
from __future__ import annotations

from typing import Any, Optional

SHAPE_MODEL, SHAPE_LIST, SHAPE_DICT, SHAPE_OPTIONAL = 1, 2, 3, 4

_LEAVES = {"str", "int", "float", "bool", "none"}
# Keys that never change how a value is serialised (validation constraints, docs).
_HARMLESS = {
    "type", "metadata", "ref", "strict", "min_length", "max_length", "pattern", "gt", "ge",
    "lt", "le", "multiple_of", "allow_inf_nan", "strip_whitespace", "to_lower", "to_upper",
    "coerce_numbers_to_str", "fail_fast", "regex_engine",
}
_MODEL_KEYS = {"cls", "schema", "config", "custom_init", "root_model", "post_init",
               "generic_origin"} | _HARMLESS
_FIELDS_KEYS = {"fields", "computed_fields", "model_name", "extra_behavior", "from_attributes"} \
    | _HARMLESS
_FIELD_KEYS = {"schema", "validation_alias", "frozen"} | _HARMLESS
_DEFAULT_KEYS = {"schema", "default", "default_factory", "default_factory_takes_data",
                 "on_error", "validate_default"} | _HARMLESS


class _NotPlain(Exception):
    pass


def _only(schema: dict, allowed: set) -> None:
    extra = set(schema) - allowed
    if extra:
        raise _NotPlain(f"{schema.get('type')}: {sorted(extra)}")


class _Compiler:
    def __init__(self) -> None:
        self.definitions: dict[str, dict] = {}
        self.open: set[str] = set()  # definitions being compiled (a ref back = recursion)

    def shape(self, schema: dict, in_model: bool) -> Any:
        kind = schema.get("type")
        if kind == "definitions":
            _only(schema, {"type", "schema", "definitions", "metadata"})
            for d in schema["definitions"]:
                self.definitions[d["ref"]] = d
            return self.shape(schema["schema"], in_model)
        if kind == "definition-ref":
            _only(schema, _HARMLESS | {"schema_ref"})
            ref = schema["schema_ref"]
            if ref in self.open or ref not in self.definitions:
                raise _NotPlain("recursive definition")
            self.open.add(ref)
            try:
                return self.shape(self.definitions[ref], in_model)
            finally:
                self.open.discard(ref)
        return _shape(self, schema, in_model)


def _shape(comp: _Compiler, schema: dict, in_model: bool) -> Any:
    kind = schema.get("type")
    if kind in _LEAVES:
        _only(schema, _HARMLESS)
        if not in_model:
            raise _NotPlain("plain value outside a model")
        return None
    if kind == "literal":
        _only(schema, _HARMLESS | {"expected"})
        if not in_model or not all(v is None or type(v) in (str, int, bool)
                                   for v in schema["expected"]):
            raise _NotPlain("literal")
        return None
    if kind == "default":
        _only(schema, _DEFAULT_KEYS)
        return comp.shape(schema["schema"], in_model)
    if kind == "nullable":
        _only(schema, _HARMLESS | {"schema"})
        inner = comp.shape(schema["schema"], in_model)
        return None if inner is None else (SHAPE_OPTIONAL, inner)
    if kind == "list":
        _only(schema, _HARMLESS | {"items_schema"})
        if "items_schema" not in schema:
            raise _NotPlain("list of Any")
        inner = comp.shape(schema["items_schema"], in_model)
        return None if inner is None else (SHAPE_LIST, inner)
    if kind == "dict":
        _only(schema, _HARMLESS | {"keys_schema", "values_schema"})
        keys = schema.get("keys_schema", {})
        if keys.get("type") != "str" or set(keys) - _HARMLESS or "values_schema" not in schema:
            raise _NotPlain("dict keys")
        inner = comp.shape(schema["values_schema"], in_model)
        return None if inner is None else (SHAPE_DICT, inner)
    if kind == "model":
        return _model(comp, schema)
    raise _NotPlain(str(kind))


def _model(comp: _Compiler, schema: dict) -> tuple:
    _only(schema, _MODEL_KEYS)
    config = schema.get("config", {})
    if schema.get("root_model") or config.get("extra_fields_behavior") == "allow" \
            or config.get("revalidate_instances", "never") != "never" \
            or any(k.startswith("ser") for k in config):
        raise _NotPlain("model config")
    fields = schema["schema"]
    if fields.get("type") != "model-fields":
        raise _NotPlain("model schema")
    _only(fields, _FIELDS_KEYS)
    if fields.get("computed_fields") or fields.get("extra_behavior") == "allow":
        raise _NotPlain("computed or extra fields")
    names, shapes = [], []
    for name, field in fields["fields"].items():
        if field.get("type") != "model-field":
            raise _NotPlain("field")
        _only(field, _FIELD_KEYS)
        names.append(name)
        shapes.append(comp.shape(field["schema"], True))
    return (SHAPE_MODEL, schema["cls"], tuple(names), tuple(shapes))


def compile_shape(core_schema: dict) -> Optional[tuple]:
    """The shape of a response type's core schema, or None when it is not plain."""
    try:
        return _Compiler().shape(core_schema, False)
    except (_NotPlain, KeyError, TypeError, AttributeError):
        return None
