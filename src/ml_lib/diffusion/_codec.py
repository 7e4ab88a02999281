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
from collections.abc import Callable
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


def _scalar(tp: type, value: Any, where: _Where) -> Any:
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and tp is not bool:
        raise _Bad(f"{_at(where)} must be {tp.__name__}, got {value!r}")
    if not isinstance(value, tp):
        raise _Bad(f"{_at(where)} must be {tp.__name__}, got {value!r}")
    return value


#: Where a value is: a path ("GenerationPlan.loras[]"), or (parent, suffix) pairs joined only for an error.
_Where = str | tuple[Any, str]


def _at(where: _Where) -> str:
    """The path of ``where`` as text."""
    parts: list[str] = []
    while isinstance(where, tuple):
        where, suffix = where
        parts.append(suffix)
    return where + "".join(reversed(parts))


#: ``convert(value, where)``: the value rebuilt for one type hint (``where``: its path, for errors).
_Converter = Callable[[Any, _Where], Any]


def _same(value: Any, where: _Where) -> Any:
    return value


def _to_float(value: Any, where: _Where) -> Any:
    return float(value) if isinstance(value, int) else value


@functools.cache
def _converter(tp: Any, strict: bool) -> _Converter:
    """The converter of one type hint, worked out once per hint (not once per value)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _union(typing.get_args(tp), strict)
    if origin is tuple:
        return _tuple(typing.get_args(tp), strict)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _DataclassConverter(tp, strict)
    if isinstance(tp, type) and issubclass(tp, Enum):
        enum = tp

        def to_enum(value: Any, where: _Where) -> Any:
            try:
                return enum(value)
            except ValueError:
                raise _Bad(f"Bad value {value!r} for {_at(where)}") from None

        return to_enum
    if tp in _SCALARS and strict:
        return functools.partial(_scalar, tp)
    return _to_float if tp is float else _same


def _union(args: tuple[Any, ...], strict: bool) -> _Converter:
    nullable = type(None) in args
    inner = [a for a in args if a is not type(None)]
    if all(a in _SCALARS for a in inner) and len(inner) > 1:
        allowed, names = tuple(inner), ", ".join(a.__name__ for a in inner)

        def scalars(value: Any, where: _Where) -> Any:
            if (value is None and nullable) or isinstance(value, allowed):
                return value
            raise _Bad(f"{_at(where)} must be one of {names}, got {value!r}")

        return scalars
    first = _converter(inner[0], strict)

    def optional(value: Any, where: _Where) -> Any:
        return None if value is None and nullable else first(value, where)

    return optional


def _tuple(args: tuple[Any, ...], strict: bool) -> _Converter:
    if len(args) == 2 and args[1] is Ellipsis:
        item = _converter(args[0], strict)

        def items(value: Any, where: _Where) -> Any:
            if not isinstance(value, list | tuple):
                raise _Bad(f"{_at(where)} must be a list")
            inner = (where, "[]")
            return tuple(item(v, inner) for v in value)

        return items
    parts = tuple(_converter(a, strict) for a in args)

    def fixed(value: Any, where: _Where) -> Any:
        if not isinstance(value, list | tuple):
            raise _Bad(f"{_at(where)} must be a list")
        if len(parts) != len(value):
            raise _Bad(f"{_at(where)} must have {len(parts)} items")
        inner = (where, "[]")
        return tuple(c(v, inner) for c, v in zip(parts, value, strict=True))

    return fixed


class _DataclassConverter:
    """Rebuilds one dataclass; its fields' converters are worked out on first use (so a dataclass may
    contain itself)."""

    def __init__(self, cls: type, strict: bool) -> None:
        self.cls, self.strict = cls, strict
        self.fields: tuple[tuple[str, _Converter, bool], ...] | None = None
        self.names: frozenset[str] = frozenset()
        self.table: dict[str, tuple[_Converter, str]] = {}

    def _compile(self) -> tuple[tuple[str, _Converter, bool], ...]:
        hints = _hints(self.cls)
        fields = dataclasses.fields(self.cls)
        self.names = frozenset(f.name for f in fields)
        self.fields = tuple(
            (
                f.name,
                _converter(hints[f.name], self.strict),
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in fields
        )
        self.table = {name: (convert, "." + name) for name, convert, _ in self.fields}
        return self.fields

    def __call__(self, data: Any, where: _Where) -> Any:
        fields = self.fields if self.fields is not None else self._compile()
        if not isinstance(data, dict):
            raise _Bad(f"{_at(where)} must be a JSON object")
        if self.strict:
            unknown = set(data) - self.names
            if unknown:
                raise _Bad(f"Unknown field(s) in {_at(where)}: {', '.join(sorted(unknown))}")
        kwargs = {}
        if not self.strict:  # stored records: unknown keys ignored, plain values taken as they are
            table = self.table
            for name, value in data.items():
                entry = table.get(name)
                if entry is not None:
                    convert, dotted = entry
                    kwargs[name] = value if convert is _same else convert(value, (where, dotted))
            return self.cls(**kwargs)
        for name, convert, required in fields:
            if name in data:
                kwargs[name] = convert(data[name], (where, "." + name))
            elif required:
                raise _Bad(f"Missing field {_at(where)}.{name}")
        return self.cls(**kwargs)


def from_jsonable(cls: type[T], data: Any, *, error: type[Exception], strict: bool = False) -> T:
    """Rebuild ``cls`` from :func:`to_jsonable` output; problems raise ``error`` with the field path."""
    try:
        return typing.cast(T, _converter(typing.cast(Any, cls), strict)(data, cls.__name__))
    except (_Bad, TypeError) as exc:
        raise error(f"{exc}.") from exc
