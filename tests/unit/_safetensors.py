"""Write header-realistic safetensors files without real data (sparse files keep them tiny on disk)."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

_SIZES = {"F16": 2, "BF16": 2, "F32": 4, "I64": 8, "U8": 1}


def write_fake_safetensors(
    path: Path, tensors: dict[str, tuple[str, tuple[int, ...]]], metadata: dict[str, str] | None = None
) -> Path:
    """A valid safetensors file with the given tensor names, dtypes and shapes; data is all zeros."""
    header: dict[str, object] = {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = _SIZES[dtype] * math.prod(shape)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    if metadata is not None:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(8 + len(raw) + offset)
    return path


UNET_K = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
LABEL_EMB = "model.diffusion_model.label_emb.0.0.weight"
CONV_IN = "model.diffusion_model.input_blocks.0.0.weight"

SD1 = {
    CONV_IN: ("F16", (320, 4, 3, 3)),
    UNET_K: ("F16", (320, 768)),
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": ("F16", (49408, 768)),
}
SD2 = {
    CONV_IN: ("F16", (320, 4, 3, 3)),
    UNET_K: ("F16", (320, 1024)),
    "cond_stage_model.model.token_embedding.weight": ("F16", (49408, 1024)),
}
SDXL = {
    CONV_IN: ("F16", (320, 4, 3, 3)),
    LABEL_EMB: ("F16", (1280, 2816)),
    "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": ("F16", (49408, 768)),
    "conditioner.embedders.1.model.token_embedding.weight": ("F16", (49408, 1280)),
}
REFINER = {
    CONV_IN: ("F16", (384, 4, 3, 3)),
    LABEL_EMB: ("F16", (1536, 2560)),
    "conditioner.embedders.0.model.token_embedding.weight": ("F16", (49408, 1280)),
}
SD3 = {"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": ("F16", (4608, 1536))}
FLUX = {"double_blocks.0.img_attn.qkv.weight": ("BF16", (9216, 3072))}
LORA = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": ("F16", (8, 320))}
