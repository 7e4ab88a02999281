"""One walked file or folder → a :class:`ModelRecord`: header probe, sidecars, derivative, speed LoRA.

Nothing here fails the scan: an unreadable or malformed file becomes a BROKEN record with the reason,
and a pickle becomes an UNSAFE record without ever being opened.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import ModelNotFoundError, ModelUnreadableError
from .families import CONTEXT_FAMILIES, Family
from .header import read_header
from .kinds import identify_header
from .lineage import civitai_base, derivative_of, speed_hint
from .probe import TEST_MARK, marked_for_tests, probe_diffusers_folder
from .records import MODEL_SUFFIXES, ModelInfo, ModelKind, ModelRecord, Sidecar, Status, StorageFormat
from .sidecars import read_sidecar, sidecar_signature
from .walk import Found

__all__ = ["folder_stamp", "identify"]

log = logging.getLogger(__name__)

_COMPONENTS: dict[str, ModelKind] = {
    "AutoencoderKL": ModelKind.VAE,
    "ControlNetModel": ModelKind.CONTROLNET,
    "FluxControlNetModel": ModelKind.CONTROLNET,
    "SD3ControlNetModel": ModelKind.CONTROLNET,
    "T2IAdapter": ModelKind.CONTROLNET,
    "UNet2DConditionModel": ModelKind.UNET,
    "FluxTransformer2DModel": ModelKind.UNET,
    "SD3Transformer2DModel": ModelKind.UNET,
}
_SD_VERSION = {"sd1": Family.SD1, "sd2": Family.SD2, "sdxl": Family.SDXL}


def folder_stamp(found: Found) -> tuple[int, int]:
    """(size, mtime_ns) that changes when a file changes; for a diffusers folder, its index file's."""
    if not found.folder:
        return (found.stat.st_size, found.stat.st_mtime_ns) if found.stat else (0, 0)
    for index in ("model_index.json", "config.json"):
        if index in found.siblings:
            try:
                st = found.siblings[index].stat()
                return st.st_size, st.st_mtime_ns
            except OSError:
                break
    return 0, 0


def _folder_bytes(folder: Path) -> int:
    """Weight bytes of a diffusers folder: a pipeline's components only (not other folders kept inside it)."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = None
    if isinstance(index, dict):
        parts = [folder / k for k, v in index.items() if isinstance(v, list) and v and v[0]]
        return sum(_folder_bytes(p) for p in parts if p.is_dir())
    total = 0
    for dirpath, _dirs, files in os.walk(folder, followlinks=True):
        for name in files:
            if Path(name).suffix.lower() in MODEL_SUFFIXES:
                try:
                    total += os.stat(os.path.join(dirpath, name)).st_size
                except OSError:
                    continue
    return total


def _component(folder: Path) -> ModelInfo:
    config: dict[str, Any] = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    cls = str(config.get("_class_name", ""))
    kind = _COMPONENTS.get(cls, ModelKind.UNKNOWN)
    family = (
        Family.FLUX if cls.startswith("Flux") else Family.SD3 if cls.startswith("SD3") else Family.UNKNOWN
    )
    dim = config.get("cross_attention_dim")
    if family is Family.UNKNOWN and isinstance(dim, int):
        family = CONTEXT_FAMILIES.get(dim, Family.UNKNOWN)
    variant = f"{config.get('latent_channels')}-channel" if kind is ModelKind.VAE else ""
    return ModelInfo(kind, family, f"diffusers {cls} folder (config.json)", variant=variant)


def _check_components(folder: Path) -> None:
    """ModelUnreadableError unless every component model_index.json names is there, each model component
    (a folder with config.json) with its weights, and at least one has weights."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnreadableError(f"Cannot read {folder / 'model_index.json'}: {exc}.") from exc
    if not isinstance(index, dict):
        raise ModelUnreadableError(f"{folder / 'model_index.json'} is not a JSON object.")
    named = [k for k, v in index.items() if isinstance(v, list) and len(v) == 2 and all(v)]
    weighted = 0
    for name in named:
        sub = folder / name
        if not sub.is_dir():
            raise ModelUnreadableError(
                f"model_index.json names a {name!r} component but {sub} does not exist: an incomplete "
                "download or not a diffusers model; download it again."
            )
        if (sub / "config.json").is_file():
            if not any(f.suffix.lower() in MODEL_SUFFIXES for f in sub.iterdir() if f.is_file()):
                raise ModelUnreadableError(
                    f"The {name!r} component in {sub} has no weights file (.safetensors): an incomplete "
                    "download; download it again."
                )
            weighted += 1
    if not weighted:
        raise ModelUnreadableError(
            f"{folder / 'model_index.json'} names no component with weights: not a diffusers model."
        )


def _probe_folder(found: Found) -> ModelInfo:
    if (found.path / "model_index.json").is_file():
        _check_components(found.path)
        guess = probe_diffusers_folder(found.path)
        return ModelInfo(ModelKind.CHECKPOINT, guess.family, guess.reason, guess.prediction_type,
                         standard=guess.standard, test_model=marked_for_tests(found.path))  # fmt: skip
    return _component(found.path)


def _sniff(path: Path) -> str:
    """What a file that is not safetensors looks like, from its first bytes (never unpickled)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError:
        return ""
    if head.startswith(b"PK\x03\x04"):
        return "; it is a zip archive (torch.save format, a pickle inside): never opened"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "; it is a pickle: never opened"
    return ""


def _enrich(info: ModelInfo, meta: dict[str, str], sidecar: Sidecar | None, stem: str) -> ModelInfo:
    """Family/derivative from Civitai and A1111 sidecars, derivative names, speed-LoRA hints."""
    reason, family = info.reason, info.family
    base = civitai_base(sidecar.base_model) if sidecar and sidecar.base_model else None
    if base and base.family and family is Family.UNKNOWN:
        family = base.family
        reason += f"; family from {base.reason}"
    elif base and base.family is not family:
        reason += f"; {base.reason} disagrees with the header ({family.value})"
    sd_version = (sidecar.sd_version or "").lower() if sidecar else ""
    if family is Family.UNKNOWN and sd_version in _SD_VERSION:
        family = _SD_VERSION[sd_version]
        reason += f"; family from the A1111 sidecar 'sd version' {sd_version!r}"
    evidence = [
        ("modelspec.title", meta.get("modelspec.title", "")),
        ("ss_sd_model_name", meta.get("ss_sd_model_name", "")),
        ("ss_output_name", meta.get("ss_output_name", "")),
        ("Civitai model name", sidecar.civitai_name or "" if sidecar else ""),
        ("file name", stem),
    ]
    derivative = base.derivative if base else None
    if derivative:
        reason += f"; derivative {derivative} from Civitai baseModel"
    elif family in (Family.SDXL, Family.UNKNOWN) and (found := derivative_of(evidence)):
        derivative = found.derivative
        reason += f"; derivative {derivative} from {found.reason}"
    lora = info.lora
    if lora is not None:
        speed = speed_hint([e for e in evidence if e[0] != "ss_sd_model_name"])
        lora = dataclasses.replace(lora, speed=speed)
    test_model = bool(meta.get(TEST_MARK))
    return dataclasses.replace(
        info, family=family, derivative=derivative, reason=reason, lora=lora, test_model=test_model
    )


def _record(found: Found, status: Status, info: ModelInfo, now: float, **kw: Any) -> ModelRecord:
    size, mtime = folder_stamp(found)
    stem = found.path.name if found.folder else found.path.stem
    name = (
        found.model_dir.label
        if found.folder and found.model_dir.label and found.path == found.model_dir.path
        else stem
    )
    kw.setdefault("weights_bytes", size)
    return ModelRecord(
        path=str(found.path),
        name=name,
        rel_name=found.rel_name,
        root=str(found.model_dir.root),
        layout=found.model_dir.layout,
        format=found.format,
        status=status,
        info=info,
        size=size,
        mtime_ns=mtime,
        sidecar_sig=sidecar_signature(stem, found.siblings) if not found.folder else "",
        first_seen=now,
        updated=now,
        **kw,
    )


def identify(found: Found, now: float) -> ModelRecord | None:
    """The record of one walked file or folder (None when it vanished before it could be read)."""
    hint = found.model_dir.kind or ModelKind.UNKNOWN
    where = f" (in a {hint.value} folder)" if found.model_dir.kind else ""
    if found.problem:
        info = ModelInfo(hint, Family.UNKNOWN, found.problem)
        return _record(found, Status.BROKEN, info, now)
    sidecar = read_sidecar(found.path, found.siblings) if not found.folder else None
    if found.folder:
        try:
            info = _probe_folder(found)
        except (ModelUnreadableError, OSError, ValueError) as exc:
            return _record(found, Status.BROKEN, ModelInfo(hint, Family.UNKNOWN, str(exc)), now)
        return _record(found, Status.OK, info, now, weights_bytes=_folder_bytes(found.path))
    if found.format is StorageFormat.PICKLE:
        reason = (
            f"pickle file ({found.path.suffix}){where}: never opened, since loading it could run code; "
            "`ml-diffusion models convert NAME --allow-pickle` writes a safetensors copy"
        )
        info = _enrich(ModelInfo(hint, Family.UNKNOWN, reason), {}, sidecar, found.path.stem)
        return _record(found, Status.UNSAFE, info, now, sidecar=sidecar)
    try:
        header = read_header(found.path)
    except ModelNotFoundError:
        log.info("%s vanished during the scan", found.path)
        return None
    except ModelUnreadableError as exc:
        info = ModelInfo(hint, Family.UNKNOWN, f"{exc}{_sniff(found.path)}")
        return _record(found, Status.BROKEN, info, now, sidecar=sidecar)
    info = identify_header(header)
    if found.model_dir.kind and info.kind is not found.model_dir.kind:
        info = dataclasses.replace(info, reason=info.reason + where)
    info = _enrich(info, dict(header.metadata), sidecar, found.path.stem)
    record = _record(found, Status.OK, info, now, sidecar=sidecar, fingerprint=header.fingerprint)
    stamp = header.stamp
    if stamp and found.stat and (stamp.ino, stamp.size, stamp.mtime_ns) != (
        found.stat.st_ino, found.stat.st_size, found.stat.st_mtime_ns
    ):  # fmt: skip
        # Replaced between the listing and the read: what was read is the new file; record its stamp.
        note = "; the file was replaced during the scan (this is the new file)"
        info = dataclasses.replace(record.info, reason=record.info.reason + note)
        record = dataclasses.replace(
            record, size=stamp.size, mtime_ns=stamp.mtime_ns, weights_bytes=stamp.size, info=info
        )
    return record
