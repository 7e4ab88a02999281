"""Typed reads of untrusted JSON values: a wrong type gives None (and the caller lists it as unmapped)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ...errors import ForeignMetadataError

__all__ = ["as_float", "as_int", "as_text", "field_text", "load_json", "size_pair"]

_PAIR = re.compile(r"^\s*\(?\s*'?(\d{1,6})'?\s*[,x*]\s*'?(\d{1,6})'?\s*\)?\s*$")


def load_json(text: str, what: str) -> Any:
    """Parse ``text`` as JSON; ForeignMetadataError (one line) when it is not JSON or nests absurdly deep."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ForeignMetadataError(
            f"The {what} in the image is not valid JSON: {exc.msg} at character {exc.pos}."
        ) from exc
    except RecursionError as exc:
        raise ForeignMetadataError(f"The {what} in the image nests too deeply to be real metadata.") from exc


def as_int(value: Any) -> int | None:
    """An integer from an int, an integral float or a decimal string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,20}\s*", value):
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    """A finite float from a number or a numeric string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def as_text(value: Any) -> str | None:
    """A string value, else None."""
    return value if isinstance(value, str) else None


def size_pair(value: Any) -> tuple[int, int] | None:
    """``(1152, 896)``, ``"(1152, 896)"``, ``"1152x896"`` or ``"1152*896"`` → (1152, 896); else None."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        first, second = as_int(value[0]), as_int(value[1])
        return (first, second) if first is not None and second is not None else None
    if isinstance(value, str) and (match := _PAIR.match(value)):
        return int(match.group(1)), int(match.group(2))
    return None


def field_text(data: Mapping[str, Any], key: str) -> str:
    """A value as short display text for the unmapped list."""
    value = data.get(key)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)[:200]
