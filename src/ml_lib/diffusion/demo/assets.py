"""Where the shipped demo model lives inside the package (no torch)."""

from __future__ import annotations

from pathlib import Path

from .._assets import asset_path
from ..errors import ModelNotFoundError

__all__ = [
    "LORA_FILE",
    "TRIGGER_WORD",
    "demo_controlnet_dir",
    "demo_folder",
    "demo_lora_path",
    "demo_model_dir",
    "has_demo_model",
]

LORA_FILE = "lora/dmoutline.safetensors"
TRIGGER_WORD = "dmoutline"


def demo_folder() -> Path:
    """Where the demo model lives in the package (whether or not it is there)."""
    return asset_path("demo")


def has_demo_model() -> bool:
    """Whether the package carries the trained demo model (its UNet weights are present)."""
    return (demo_folder() / "model_index.json").is_file() and any(
        (demo_folder() / "unet").glob("*.safetensors")
    )


def demo_model_dir() -> Path:
    """The demo model's diffusers folder (``StableDiffusionPipeline``, fp16 safetensors, 64x64)."""
    if not has_demo_model():
        raise ModelNotFoundError(
            f"The demo model is not in {demo_folder()}; train and export it with "
            "'python scripts/train_demo.py all' then 'python scripts/train_demo.py export', or reinstall ml-lib."
        )
    return demo_folder()


def demo_lora_path() -> Path:
    """The demo style LoRA (kohya format, trigger word ``dmoutline``: a complementary-colour outline)."""
    path = demo_model_dir() / LORA_FILE
    if not path.is_file():
        raise ModelNotFoundError(
            f"The demo LoRA {path} is missing; run 'python scripts/train_demo.py lora export'."
        )
    return path


def demo_controlnet_dir() -> Path:
    """The demo ControlNet (object mask → image), a diffusers ``ControlNetModel`` folder."""
    path = demo_model_dir() / "controlnet"
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"The demo ControlNet {path} is missing; run the 'controlnet' and 'export' stages."
        )
    return path
