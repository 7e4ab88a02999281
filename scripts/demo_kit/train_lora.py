"""Stage ``lora``: a style LoRA (trigger ``dmoutline``: a thick outline in the complementary colour).

Rank-4 LoRA (peft) on the UNet's attention, feed-forward, projection and resnet convolution layers
(kohya's LoCon set) and on the text encoder's attention and MLP, trained on outline-style scenes whose
captions carry the trigger word and, in half of each batch, plain scenes without it; base model frozen,
AdamW 1e-3 with warm-up and cosine decay. Saved in kohya format (``lora_unet_…`` and
``lora_te_text_model_…``, ``lora_down/lora_up/alpha``) with kohya-style ``ss_*`` metadata at every
checkpoint. The checkpoint records the UNet step it was trained against; when the base has moved on, the
stage starts over.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .train_common import (
    Budget,
    load_checkpoint,
    loss_weight,
    make_batch,
    optimizer_step,
    save_checkpoint,
    stage_logger,
)
from .train_unet import alphas_cumprod, encode_text, load_base
from .world import IMAGE_SIZE, OUTLINE_TRIGGER

__all__ = ["LORA_RANK", "LORA_STEPS", "kohya_lora", "train_lora"]

# 500 at first; 2,000 with a cosine decay kept the object's colour under the style in world 1 (90%, against 70% at
# 1,000); world 2 (17 object colours on 21 backgrounds) drew the outline 75% of the time at 2,000: 4,000, resumed
LORA_STEPS = 4000
LORA_RANK = 4
_ALPHA = 4.0
_BATCH = 16
_LR = 1e-3
_WARMUP = 50
_TARGETS = (
    "to_q",
    "to_k",
    "to_v",
    "to_out.0",
    "proj_in",
    "proj_out",
    "ff.net.0.proj",
    "ff.net.2",
    "conv1",
    "conv2",
)
#: The text encoder's LoRA (kohya ``lora_te_…``): the trigger's tokens were never trained into the base text
#: encoder, and first in a caption they scramble every later word's hidden state (the encoder is causal).
_TE_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
_STREAM = 3
_OUTLINED = 0.5  # the rest plain, without the trigger: the LoRA learns to change only what the trigger asks
_OUTPUT_NAME = "dmoutline"

log = stage_logger("lora")


def _lr(step: int) -> float:
    """Warm-up over the first :data:`_WARMUP` steps, then a cosine decay to a tenth of :data:`_LR`."""
    warm = min(1.0, (step + 1) / _WARMUP)
    return _LR * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / LORA_STEPS)))


def _lora_config(targets: tuple[str, ...] = _TARGETS) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=LORA_RANK, lora_alpha=_ALPHA, target_modules=list(targets), init_lora_weights="gaussian"
    )


def kohya_lora(
    unet: Any, text_encoder: Any, *, steps: int, base_step: int, seed: int
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The UNet's and the text encoder's LoRA as kohya tensors (fp16) and ``ss_*`` metadata."""
    from peft import get_peft_model_state_dict

    tensors: dict[str, torch.Tensor] = {}
    for prefix, model in (("lora_unet_", unet), ("lora_te_text_model_", text_encoder)):  # kohya's names
        for key, value in get_peft_model_state_dict(model).items():
            module, kind = key.rsplit(".lora_", 1)
            name = prefix + module.removeprefix("text_model.").replace(".", "_")
            suffix = "lora_down.weight" if kind.startswith("A") else "lora_up.weight"
            tensors[f"{name}.{suffix}"] = value.detach().to(torch.float16).contiguous()
            tensors[f"{name}.alpha"] = torch.tensor(_ALPHA, dtype=torch.float16)
    tags: Counter[str] = Counter()
    for step in range(0, 40):
        for caption in make_batch(seed, step, _BATCH, outline_fraction=1.0, stream=_STREAM).captions:
            tags.update(t.strip() for t in caption.split(",") if t.strip())
    metadata = {
        "ss_output_name": _OUTPUT_NAME,
        "ss_base_model_version": "demo",
        "ss_sd_model_name": "ml-lib-demo",
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(LORA_RANK),
        "ss_network_alpha": str(_ALPHA),
        "ss_resolution": f"({IMAGE_SIZE}, {IMAGE_SIZE})",
        "ss_learning_rate": str(_LR),
        "ss_lr_scheduler": "cosine",
        "ss_lr_warmup_steps": str(_WARMUP),
        "ss_unet_lr": str(_LR),
        "ss_text_encoder_lr": str(_LR),
        "ss_network_train_unet_only": "False",
        "ss_max_train_steps": str(LORA_STEPS),
        "ss_steps": str(steps),
        "ss_batch_size_per_device": str(_BATCH),
        "ss_seed": str(seed),
        "ss_training_comment": f"trigger word: {OUTLINE_TRIGGER}; base demo UNet step {base_step}",
        "ss_tag_frequency": json.dumps({f"1_{OUTLINE_TRIGGER}": dict(tags.most_common(60))}),
        "ss_num_train_images": str(_BATCH * LORA_STEPS),
        "modelspec.title": "demo outline style",
        "modelspec.trigger_phrase": OUTLINE_TRIGGER,
    }
    return tensors, metadata


def train_lora(state: Path, budget: Budget, *, seed: int = 0) -> bool:
    """Train (or resume) the style LoRA until :data:`LORA_STEPS`; True when complete."""
    path = state / "lora.pt"
    pipe, base_step = load_base(state)
    ckpt = load_checkpoint(path)
    if ckpt is not None and ckpt["base_step"] != base_step:
        log.info("lora: base UNet moved from step %d to %d, starting over", ckpt["base_step"], base_step)
        ckpt = None
    if ckpt is not None and "lora_te" not in ckpt:
        log.info("lora: the checkpoint has no text-encoder part (an earlier recipe), starting over")
        ckpt = None
    if ckpt is not None and ckpt["step"] >= LORA_STEPS:
        return True
    unet, vae, tokenizer, text_encoder = pipe.unet, pipe.vae, pipe.tokenizer, pipe.text_encoder
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
    torch.manual_seed(seed + 2)
    unet.add_adapter(_lora_config())
    text_encoder.add_adapter(_lora_config(_TE_TARGETS))
    params = [p for m in (unet, text_encoder) for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=_LR, weight_decay=0.0)
    step, seconds, started = 0, 0.0, time.monotonic()
    if ckpt is not None:
        seconds = float(ckpt.get("seconds", 0.0))
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(unet, ckpt["lora"])
        set_peft_model_state_dict(text_encoder, ckpt["lora_te"])
        opt.load_state_dict(ckpt["opt"])
        step = ckpt["step"]
        log.info("lora: resumed at step %d", step)

    def save() -> None:
        from peft import get_peft_model_state_dict

        save_checkpoint(
            path,
            {
                "lora": get_peft_model_state_dict(unet),
                "lora_te": get_peft_model_state_dict(text_encoder),
                "opt": opt.state_dict(),
                "step": step,
                "seconds": seconds + time.monotonic() - started,
                "base_step": base_step,
            },
        )

    acp = alphas_cumprod()
    scale = float(vae.config.scaling_factor)
    unet.train()
    losses: list[float] = []
    while step < LORA_STEPS and not budget.expired():
        batch = make_batch(seed, step, _BATCH, outline_fraction=_OUTLINED, stream=_STREAM)
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        with torch.no_grad():
            latents = vae.encode(batch.images).latent_dist.mean * scale
        context = encode_text(tokenizer, text_encoder, batch.captions)
        t = torch.randint(0, 1000, (_BATCH,), generator=gen)
        noise = torch.randn(latents.shape, generator=gen)
        a = acp[t].view(-1, 1, 1, 1)
        pred = unet(a.sqrt() * latents + (1 - a).sqrt() * noise, t, context).sample
        snr = acp[t] / (1 - acp[t])
        loss = ((pred - noise).pow(2).mean(dim=(1, 2, 3)) * loss_weight(snr)).mean()
        losses.append(optimizer_step(opt, loss, params, _lr(step)))
        step += 1
        if step % 50 == 0:
            log.info("lora step %d loss %.4f", step, float(np.mean(losses)))
            losses.clear()
        if budget.save_due():
            save()
    save()
    from safetensors.torch import save_file

    tensors, metadata = kohya_lora(unet, text_encoder, steps=step, base_step=base_step, seed=seed)
    save_file(tensors, str(state / f"{_OUTPUT_NAME}.safetensors"), metadata=metadata)
    log.info("lora: %d tensors at step %d of %d", len(tensors), step, LORA_STEPS)
    return step >= LORA_STEPS
