"""A pydantic field's type, constraints and default as a reader of group_data writes them: "integer from 1 to
65535", "string matching `^...$`", "list of [Pm2App](#pm2app)", `"least_conn"`."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable
from typing import Any

import annotated_types
from pydantic import BaseModel, StringConstraints
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from opsrun.settings.values import EnvSecret

NAMES = {str: "string", int: "integer", float: "number", bool: "True or False", type(None): "None", Any: "any value"}
SECRET_REFERENCE = "a [secret reference](#secret-references)"  # noqa: S105 - a link's text, not a password

#: a model -> its link in the page (the caller's anchors)
Link = Callable[[type[BaseModel]], str]


def python(value: Any) -> str:
    """`value` as group_data (Python) writes it, strings in double quotes."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(python(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{python(k)}: {python(v)}" for k, v in value.items()) + "}"
    return repr(value)


def default(info: FieldInfo) -> str:
    """The field's default as Markdown, "required" when it has none."""
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return "its defaults"
    return f"`{python(value)}`"


def _flat(metadata: list[Any]) -> list[Any]:
    """Constraint objects, with those inside a `Field(...)` of an `Annotated` taken out of it."""
    out: list[Any] = []
    for meta in metadata:
        out += _flat(meta.metadata) if isinstance(meta, FieldInfo) else [meta]
    return out


def bounds(metadata: list[Any]) -> dict[str, Any]:
    """ge, gt, le, lt, min_length, max_length and pattern, as far as `metadata` sets them."""
    found: dict[str, Any] = {}
    for meta in _flat(metadata):
        if isinstance(meta, annotated_types.Ge | annotated_types.Gt | annotated_types.Le | annotated_types.Lt):
            name = type(meta).__name__.lower()
            found[name] = getattr(meta, name)
        elif isinstance(meta, annotated_types.MinLen):
            found["min_length"] = meta.min_length
        elif isinstance(meta, annotated_types.MaxLen):
            found["max_length"] = meta.max_length
        elif isinstance(meta, StringConstraints):
            found.update((k, getattr(meta, k)) for k in ("pattern", "min_length", "max_length") if getattr(meta, k))
    return found


def constraints(metadata: list[Any]) -> list[str]:
    """The bounds and pattern of a value, in words."""
    found = bounds(metadata)
    low = f"from {found['ge']}" if "ge" in found else f"above {found['gt']}" if "gt" in found else ""
    high = f"at most {found['le']}" if "le" in found else f"below {found['lt']}" if "lt" in found else ""
    if "ge" in found and "le" in found:
        low, high = f"from {found['ge']} to {found['le']}", ""
    words = [", ".join(w for w in (low, high) if w)] if low or high else []
    lengths = [f"at least {found['min_length']}" if "min_length" in found else ""]
    lengths.append(f"at most {found['max_length']}" if "max_length" in found else "")
    if "min_length" in found and "max_length" in found:
        lengths = [f"{found['min_length']} to {found['max_length']}"]
    if any(lengths):
        words.append("length " + ", ".join(w for w in lengths if w))
    if "pattern" in found:
        words.append(f"matching `{found['pattern']}`")
    return words


def describe(annotation: Any, link: Link, metadata: list[Any] | None = None) -> str:
    """The type of `annotation` in words, with the constraints of `metadata` (a field's own: they bound the
    value, so `float | None` with gt=0 is "number (above 0) or None")."""
    args = typing.get_args(annotation)
    if metadata and _is_union(annotation) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return f"{describe(inner[0], link, metadata)} or None"
    text = _describe(annotation, link)
    extra = constraints(metadata or [])
    return f"{text} ({', '.join(extra)})" if extra else text


def _describe(annotation: Any, link: Link) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return describe(args[0], link, list(annotation.__metadata__))
    if _is_union(annotation):
        if EnvSecret in args:
            return SECRET_REFERENCE
        named = [_describe(a, link) for a in args if a is not type(None)]
        return " or ".join([*named, *(["None"] if type(None) in args else [])])
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{python(a)}`" for a in args) if len(args) > 1 else f"`{python(args[0])}`"
    if origin is list:
        return f"list of {_grouped(args[0], link)}"
    if origin is dict:
        return f"dict of {_grouped(args[0], link)} to {_grouped(args[1], link)}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return link(annotation)
    return NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _grouped(annotation: Any, link: Link) -> str:
    """A list's item or a dict's value type: in parentheses when it is a choice of several."""
    text = _describe(annotation, link)
    return f"({text})" if " or " in text and text != SECRET_REFERENCE else text


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models a field's type holds (its list items, dict values, union members), outermost first."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += [m for m in models_in(arg) if m not in found]
    return found
