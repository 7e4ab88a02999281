"""JSON round trip for frozen dataclass trees, driven by their type hints.

Handles str/int/float/bool/None, str-valued Enums, unions (``X | None`` and scalar unions),
``tuple[X, ...]``, fixed tuples and nested dataclasses. A field whose metadata has ``OMIT_DEFAULT`` is left
out while it holds its default, so a field added later does not change the JSON of records that do not
use it (older readers keep reading them). ``strict`` (plans) rejects unknown keys,
missing required keys and wrong types; lenient mode (stored records) ignores unknown keys and lets
missing ones take their defaults.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from enum import Enum
from pathlib import PurePath
from typing import Any, TypeVar

__all__ = ["OMIT_DEFAULT", "from_jsonable", "to_jsonable"]

#: Field metadata: leave the field out of the JSON while it holds its default.
OMIT_DEFAULT = {"omit_default": True}

T = TypeVar("T")
_SCALARS = (str, int, float, bool)


def to_jsonable(value: Any) -> Any:
    """A JSON-ready copy of a dataclass tree (enums by value, tuples as lists, paths as text)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (f.metadata.get("omit_default") and getattr(value, f.name) == f.default)
        }
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, PurePath):
        return str(value)
    return value


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


class _Bad(ValueError):
    pass


def _scalar(tp: type, value: Any, where: str) -> Any:
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and tp is not bool:
        raise _Bad(f"{where} must be {tp.__name__}, got {value!r}")
    if not isinstance(value, tp):
        raise _Bad(f"{where} must be {tp.__name__}, got {value!r}")
    return value


def _convert(tp: Any, value: Any, where: str, strict: bool) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if all(a in _SCALARS for a in inner) and len(inner) > 1:
            if isinstance(value, tuple(inner)):
                return value
            raise _Bad(f"{where} must be one of {', '.join(a.__name__ for a in inner)}, got {value!r}")
        return _convert(inner[0], value, where, strict)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise _Bad(f"{where} must be a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[]", strict) for v in value)
        if len(args) != len(value):
            raise _Bad(f"{where} must have {len(args)} items")
        return tuple(_convert(a, v, f"{where}[]", strict) for a, v in zip(args, value, strict=True))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, where, strict)
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError:
            raise _Bad(f"Bad value {value!r} for {where}") from None
    if tp in _SCALARS and strict:
        return _scalar(tp, value, where)
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def _build(cls: type[T], data: Any, where: str, strict: bool) -> T:
    if not isinstance(data, dict):
        raise _Bad(f"{where} must be a JSON object")
    hints = _hints(typing.cast(type, cls))  # mypy: type[T] is not Hashable
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if strict:
        unknown = set(data) - {f.name for f in fields}
        if unknown:
            raise _Bad(f"Unknown field(s) in {where}: {', '.join(sorted(unknown))}")
    kwargs = {}
    for f in fields:
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}", strict)
        elif strict and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _Bad(f"Missing field {where}.{f.name}")
    return cls(**kwargs)


def from_jsonable(cls: type[T], data: Any, *, error: type[Exception], strict: bool = False) -> T:
    """Rebuild ``cls`` from :func:`to_jsonable` output; problems raise ``error`` with the field path."""
    try:
        return _build(cls, data, cls.__name__, strict)
    except (_Bad, TypeError) as exc:
        raise error(f"{exc}.") from exc
