"""Real-size SD 1.5 / SDXL checkpoints with random weights, in the A1111 single-file layout (fp16 on disk).

Built once per (family, seed) under ``$ML_DIFFUSION_BENCH_DIR`` (default ``/tmp/ml-diffusion-bench``) and
reused: a build takes a minute and ~5 GB (SD 1.5) or ~14 GB (SDXL) of RAM while the fp32 modules exist.
The config folder shipped with the package is what ``from_single_file`` loads the file with.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "src/ml_lib/diffusion/assets/configs"


def bench_dir() -> Path:
    """Where built checkpoints are kept."""
    folder = Path(os.environ.get("ML_DIFFUSION_BENCH_DIR", "/tmp/ml-diffusion-bench"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def checkpoint(family: str = "sd1", seed: int = 0) -> Path:
    """The fp16 single file of a real-size ``family`` ("sd1" or "sdxl") with random weights, built if missing."""
    path = bench_dir() / f"{family}-random-{seed}-fp16.safetensors"
    if path.exists():
        return path
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from ml_lib.diffusion.testing.export import save_single_file

    torch.manual_seed(seed)
    config = CONFIGS / family
    # build in fp16: the file is fp16 anyway, and an SDXL UNet in fp32 alone is 10 GB
    torch.set_default_dtype(torch.float16)
    try:
        parts: dict[str, object] = {
            "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(config / "unet"))),
            "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(str(config / "vae"))),
            "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(str(config / "text_encoder"))),
        }
        if family == "sdxl":
            parts["text_encoder_2"] = CLIPTextModelWithProjection(
                CLIPTextConfig.from_pretrained(str(config / "text_encoder_2"))
            )
    finally:
        torch.set_default_dtype(torch.float32)
    save_single_file(parts, path, dtype=torch.float16, metadata={"modelspec.title": f"{family} random"})
    return path


class PeakRss:
    """Peak resident set size of this process: RSS polled every 5 ms and ``ru_maxrss``, whichever is larger."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._running = True
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while self._running:
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.005)

    def stop(self) -> int:
        """Stop polling; the peak in bytes (``ru_maxrss`` is in KiB on Linux)."""
        self._running = False
        self._thread.join()
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (
            1 if sys.platform == "darwin" else 1024
        )
        return max(self.peak, maxrss)


if __name__ == "__main__":
    print(checkpoint(sys.argv[1] if len(sys.argv) > 1 else "sd1"))
