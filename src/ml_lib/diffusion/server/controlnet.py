"""``alwayson_scripts.controlnet`` (the sd-webui-controlnet extension's unit fields) → ControlRequests."""

from __future__ import annotations

from typing import Any

from ..errors import RequestError
from ..request import ControlRequest
from .limits import ServerLimits, check_name, decode_image

__all__ = ["control_units"]

MAX_UNITS = 4


def _strip_hash(name: str) -> str:
    return name.rsplit(" [", 1)[0] if name.endswith("]") else name


def _unit_image(unit: dict[str, Any], label: str, limits: ServerLimits, fallback: bytes | None) -> bytes:
    image = unit.get("image") or unit.get("input_image")
    if isinstance(image, dict):  # {"image": b64, "mask": b64} in the extension's newer form
        image = image.get("image")
    if isinstance(image, str) and image:
        return decode_image(image, label, limits)
    if fallback is not None:  # img2img: the extension uses the init image when a unit has none
        return fallback
    raise RequestError(f"{label}: a ControlNet unit needs an image (the 'image' field, base64).")


def _number(unit: dict[str, Any], key: str, default: float, label: str) -> float:
    value = unit.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"{label}.{key} must be a number, not {value!r}.")
    return float(value)


def control_units(
    scripts: dict[str, Any], limits: ServerLimits, init_image: bytes | None = None
) -> tuple[ControlRequest, ...]:
    """The enabled units of ``scripts["controlnet"]["args"]`` (other scripts are ignored, as unknown)."""
    entry = next((v for k, v in scripts.items() if k.lower() == "controlnet"), None)
    if entry is None:
        return ()
    units = entry.get("args", []) if isinstance(entry, dict) else None
    if not isinstance(units, list) or not all(isinstance(u, dict) for u in units):
        raise RequestError("alwayson_scripts.controlnet.args must be a list of unit objects.")
    enabled = [u for u in units if u.get("enabled", True) and u.get("model") not in (None, "", "None")]
    if len(enabled) > MAX_UNITS:
        raise RequestError(f"{len(enabled)} ControlNet units; at most {MAX_UNITS} are allowed.")
    out = []
    for i, unit in enumerate(enabled):
        label = f"alwayson_scripts.controlnet.args[{i}]"
        module = str(unit.get("module") or "none")
        out.append(
            ControlRequest(
                model=check_name(_strip_hash(str(unit["model"])), f"{label}.model"),
                image=_unit_image(unit, label, limits, init_image),
                control_type="none" if module.lower() in ("none", "") else module,
                scale=_number(unit, "weight", 1.0, label),
                guidance_start=_number(unit, "guidance_start", 0.0, label),
                guidance_end=_number(unit, "guidance_end", 1.0, label),
            )
        )
    return tuple(out)
