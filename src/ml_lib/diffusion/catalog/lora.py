"""LoRA and LyCORIS files from their header: format, network, rank, trained parts, base family, and the
kohya (``ss_*``) / modelspec training metadata (tags with counts, trigger words, resolution)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

import orjson

from .families import CONTEXT_FAMILIES, Family, PredictionType
from .header import SafetensorsHeader
from .lineage import family_from_base_version, family_from_modelspec
from .records import LoraDetails, ModelInfo, ModelKind, TagCount

__all__ = ["TOP_TAGS", "analyse_lora", "is_lora", "tag_counts", "trigger_words"]

TOP_TAGS = 20

#: LyCORIS tensor-name endings → network (first hit wins).
_NETWORK_NAMES = {"hada_w1_a": "LoHa", "lokr_w1": "LoKr", "lokr_w1_a": "LoKr", "oft_blocks": "OFT",
                  "oft_diag": "OFT", "on_input": "IA3", "a1.weight": "GLoRA", "diff": "Full",
                  "dora_scale": "DoRA"}  # fmt: skip
_LORA_RE = re.compile(r"(?:\.lora_down\.weight|\.lora_A\.weight|[._]lora\.down\.weight|\.hada_w1_a|\.lokr_w1"
                      r"|\.lokr_w1_a|\.oft_blocks|\.oft_diag|\.on_input)\n")  # fmt: skip
#: Prefixes no LoRA file has: a full model is told apart without scanning its names.
_MODEL_PREFIXES = ("model.diffusion_model.", "first_stage_model.", "conditioner.", "cond_stage_model.")
_DOWN_SUFFIXES = (
    ".lora_down.weight",
    ".lora_A.weight",
    ".lora.down.weight",
    "_lora.down.weight",
    ".hada_w1_b",
)
_TO_K = re.compile(r"^[^\n]*attn2[._](?:processor[._])?to_k[^\n]*$", re.M)
_ALGOS = {"locon": "LoCon", "loha": "LoHa", "lokr": "LoKr", "ia3": "IA3", "glora": "GLoRA", "full": "Full"}
_FLUX_PREFIXES = ("lora_unet_double_blocks_", "lora_unet_single_blocks_", "transformer.single_transformer_blocks.",
                  "double_blocks.", "single_blocks.", "diffusion_model.double_blocks.", "lycoris_double_blocks",
                  "lora_transformer_single_transformer_blocks_")  # fmt: skip
_SD3_PREFIXES = (
    "lora_unet_joint_blocks_",
    "diffusion_model.joint_blocks.",
    "joint_blocks.",
    "lycoris_joint_blocks",
)
_CONV_PARTS = ("resnets", "samplers_")


def is_lora(h: SafetensorsHeader) -> bool:
    """Whether the tensor names are those of a LoRA/LyCORIS."""
    if any(h.has_prefix(p) for p in _MODEL_PREFIXES):
        return False
    return next(h.matching(_LORA_RE), None) is not None


def _style(h: SafetensorsHeader) -> str:
    if h.has_prefix("lora_unet_") or h.has_prefix("lora_te") or h.has_prefix("lora_transformer_"):
        return "kohya"
    if h.has_prefix("lycoris_"):
        return "lycoris"
    if h.has_prefix("double_blocks.") and h.has_part(".processor."):
        return "xlabs"
    if h.has_part(".lora_A."):
        return "peft"
    return "diffusers"


def _network(h: SafetensorsHeader) -> tuple[str, str]:
    module = h.metadata.get("ss_network_module", "")
    try:
        args = orjson.loads(h.metadata.get("ss_network_args", "") or "{}")
    except orjson.JSONDecodeError:
        args = {}
    algo = str(args.get("algo", "")).lower() if isinstance(args, dict) else ""
    if "lycoris" in module and algo in _ALGOS:
        return _ALGOS[algo], f"ss_network_args algo {algo!r}"
    if "dylora" in module:
        return "DyLoRA", f"ss_network_module {module!r}"
    # Every module of a LyCORIS file carries its markers: the first and last names are enough to look at.
    sample = h.sample_names(4096, 2048)
    for marker, name in _NETWORK_NAMES.items():
        if marker + "\n" in sample:
            return name, f"'.{marker}' tensors"
    if any(h.has_part(p) for p in _CONV_PARTS) or (isinstance(args, dict) and "conv_dim" in args):
        return "LoCon", "LoRA on convolution layers too"
    return "LoRA", "low-rank down/up pairs"


def _rank(h: SafetensorsHeader, network: str) -> tuple[int | None, str | None]:
    """Rank from the first down projection, and the tensor-name ending it was found under."""
    suffix = {"LoHa": ".hada_w1_b", "LoKr": ".lokr_w2_b"}.get(network)
    for s in (suffix,) if suffix else _DOWN_SUFFIXES:
        key = h.first(suffix=s)
        if key is not None:
            shape = h.tensors[key].shape
            return (shape[0] if shape else None), s
    dim = h.metadata.get("ss_network_dim", "")
    return (int(dim) if dim.isdigit() else None), None


def _parts(h: SafetensorsHeader) -> tuple[str, ...]:
    parts = []
    if any(
        h.has_prefix(p) for p in ("lora_unet_", "unet.", "lycoris_", "diffusion_model.", "model.diffusion")
    ):
        parts.append("unet")
    if any(
        h.has_prefix(p) for p in ("transformer.", "lora_transformer_", "double_blocks.", "single_blocks.")
    ):
        parts.append("transformer")
    if any(h.has_prefix(p) for p in ("lora_te_", "lora_te1_", "text_encoder.", "te.", "te1.")):
        parts.append("text_encoder")
    if h.has_prefix("lora_te2_") or h.has_prefix("text_encoder_2.") or h.has_prefix("te2."):
        parts.append("text_encoder_2")
    if h.has_prefix("lora_te3_") or h.has_prefix("text_encoder_3."):
        parts.append("text_encoder_3")
    return tuple(parts)


def _family_from_keys(h: SafetensorsHeader) -> tuple[Family, str] | None:
    if any(h.has_prefix(p) for p in _FLUX_PREFIXES):
        return Family.FLUX, "Flux double/single-stream block names"
    if any(h.has_prefix(p) for p in _SD3_PREFIXES):
        return Family.SD3, "SD3 MMDiT joint-block names"
    key = h.first(prefix="transformer.transformer_blocks.0.attn.to_k.")
    if key is not None:
        width = h.tensors[key].shape[-1]
        return (Family.FLUX if width == 3072 else Family.SD3), f"transformer attention width {width}"
    for name in h.matching(_TO_K):
        if name.endswith(_DOWN_SUFFIXES):
            width = h.tensors[name].shape[-1]
            if width in CONTEXT_FAMILIES:
                return CONTEXT_FAMILIES[width], f"cross-attention input width {width}"
    if h.has_prefix("lora_te1_") or h.has_prefix("text_encoder_2.") or h.has_prefix("lora_te2_"):
        return Family.SDXL, "two text encoders"
    key = h.first(prefix="lora_te_", suffix=".lora_down.weight") or h.first(
        prefix="text_encoder.", part="lora"
    )
    if key is not None:
        width = h.tensors[key].shape[-1]
        if width in (768, 1024):
            return CONTEXT_FAMILIES[width], f"text-encoder width {width}"
    return None


def _json_object(text: str) -> Any:
    try:
        return orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        return None


def tag_counts(raw: str | dict[str, Any] | None) -> tuple[TagCount, ...]:
    """Tags of kohya's ``ss_tag_frequency`` (JSON text or parsed) merged over its datasets, most frequent first."""
    data = _json_object(raw) if isinstance(raw, str) else raw
    counts: Counter[str] = Counter()
    if isinstance(data, dict):
        for tags in data.values():
            if isinstance(tags, dict):
                for tag, n in tags.items():
                    if isinstance(n, int) and str(tag).strip():
                        counts[str(tag).strip()] += n
    return tuple(TagCount(t, n) for t, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def trigger_words(meta: Mapping[str, str], tag_frequency: Any = None) -> tuple[str, ...]:
    """Trigger words: modelspec trigger phrase, kohya class tokens and ``N_name`` dataset folders."""
    words: list[str] = [w.strip() for w in meta.get("modelspec.trigger_phrase", "").split(",")]
    datasets = _json_object(meta.get("ss_datasets", ""))
    for dataset in datasets if isinstance(datasets, list) else ():
        for subset in dataset.get("subsets", ()) if isinstance(dataset, dict) else ():
            if isinstance(subset, dict) and isinstance(subset.get("class_tokens"), str):
                words.append(subset["class_tokens"].strip())
    if tag_frequency is None:
        tag_frequency = _json_object(meta.get("ss_tag_frequency", ""))
    for folder in tag_frequency if isinstance(tag_frequency, dict) else ():
        found = re.match(r"^\d+_(.+)$", str(folder).strip())
        if found:
            words.append(found.group(1).strip())
    return tuple(dict.fromkeys(w for w in words if w))


def _resolution(meta: dict[str, str]) -> tuple[int, int] | None:
    for key in ("ss_resolution", "modelspec.resolution"):
        numbers = [int(n) for n in re.findall(r"\d+", meta.get(key, ""))]
        if numbers:
            return (numbers[0], numbers[1] if len(numbers) > 1 else numbers[0])
    return None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def analyse_lora(h: SafetensorsHeader) -> ModelInfo | None:
    """A LoRA/LyCORIS ModelInfo from the header; None when the tensors are not a LoRA's."""
    if not is_lora(h):
        return None
    meta = dict(h.metadata)
    network, network_why = _network(h)
    reasons = [f"{network}: {network_why}"]
    by_keys = _family_from_keys(h)
    version = meta.get("ss_base_model_version", "")
    by_meta = family_from_base_version(version) if version else None
    spec = family_from_modelspec(meta.get("modelspec.architecture", ""))
    v_pred = bool(by_meta and by_meta.v_prediction) or meta.get("ss_v_parameterization", "").lower() == "true"
    family = Family.UNKNOWN
    if by_keys:
        family = by_keys[0]
        reasons.append(f"base {family.value} from {by_keys[1]}")
        if by_meta and by_meta.family is not family:
            reasons.append(f"ss_base_model_version {version!r} disagrees; shapes win")
    elif by_meta and by_meta.family:
        family = by_meta.family
        reasons.append(f"base {family.value} from ss_base_model_version {version!r}")
    elif spec:
        family = spec
        reasons.append(f"base {family.value} from modelspec.architecture")
    else:
        reasons.append("base family unknown: no telling shapes or metadata")
    frequency = _json_object(meta.get("ss_tag_frequency", ""))
    tags = tag_counts(frequency)
    images = meta.get("ss_num_train_images", "")
    rank, rank_suffix = _rank(h, network)
    details = LoraDetails(
        style=_style(h),
        network=network,
        rank=rank,
        alpha=_number(meta.get("ss_network_alpha")),
        parts=_parts(h),
        modules=h.count_suffix(rank_suffix or ".alpha"),
        base_model_version=version or None,
        training_model=meta.get("ss_sd_model_name") or None,
        output_name=meta.get("ss_output_name") or None,
        network_module=meta.get("ss_network_module") or None,
        resolution=_resolution(meta),
        trigger_words=trigger_words(meta, frequency),
        top_tags=tags[:TOP_TAGS],
        images=int(images) if images.isdigit() else None,
    )
    return ModelInfo(
        kind=ModelKind.LORA,
        family=family,
        reason="; ".join(reasons),
        prediction_type=PredictionType.V_PREDICTION if v_pred else PredictionType.EPSILON,
        variant=network,
        title=meta.get("modelspec.title") or None,
        tensors=len(h.tensors),
        lora=details,
    )
