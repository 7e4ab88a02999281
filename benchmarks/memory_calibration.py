"""Calibrate planning/memory.py: peak RSS per phase of real-size SD1.5 modules (random weights, fp32, CPU).

Run: ``python benchmarks/memory_calibration.py [--cases unet:256 unet:512 vae:256 vae:512 vae_tiled:1024]``.

Each case runs in its own process (one thread): the UNet forward with CFG (batch 2) or the VAE decode of
one image, RSS polled every 5 ms; it prints the peak above the loaded weights next to the estimate's
``activation_bytes`` / ``decode_bytes`` and the error. Figures of 2026-12-07 on this 2-core machine:
UNet 256² 204 MB, 512² 477 MB; VAE 256² 343 MB, 512² 1050 MB (the estimate is fitted through them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[1] / "src/ml_lib/diffusion/assets/configs/sd1"
SD15 = {"unet_params": 859_520_964, "text_encoder_params": 123_060_480, "vae_params": 83_653_863}


def _measure(which: str, size: int) -> dict[str, int]:
    import psutil
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.set_num_threads(1)
    proc = psutil.Process()
    peak = [0]
    running = [True]

    def poll() -> None:
        while running[0]:
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    with torch.no_grad():
        if which == "unet":
            model: torch.nn.Module = UNet2DConditionModel.from_config(
                UNet2DConditionModel.load_config(str(CONFIG / "unet"))
            ).eval()
            args: tuple[object, ...] = (torch.randn(2, 4, size // 8, size // 8), 10, torch.randn(2, 77, 768))
        else:
            vae = AutoencoderKL.from_config(AutoencoderKL.load_config(str(CONFIG / "vae"))).eval()
            if which == "vae_tiled":
                vae.enable_tiling()
            model, args = vae, (torch.randn(1, 4, size // 8, size // 8),)
        base = peak[0] = proc.memory_info().rss
        thread = threading.Thread(target=poll)
        thread.start()
        model.decode(*args) if which != "unet" else model(*args)  # type: ignore[operator]
        running[0] = False
        thread.join()
    return {"peak_delta": max(peak[0], proc.memory_info().rss) - base}


def main() -> None:
    """Run each case in a child process and compare with the estimate."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", nargs="*", default=["unet:256", "unet:512", "vae:256", "vae:512"])
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        which, size = args.child.split(":")
        print(json.dumps(_measure(which, int(size))))
        return
    from ml_lib.diffusion.catalog.families import Family
    from ml_lib.diffusion.planning.memory import Strategy, Workload, estimate

    for case in args.cases:
        which, size = case.split(":")
        out = (
            subprocess.run(
                [sys.executable, __file__, "--child", case], capture_output=True, text=True, check=True
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        measured = json.loads(out)["peak_delta"]
        w = Workload(Family.SD1, **SD15, width=int(size), height=int(size))
        e = estimate(w, Strategy.AGGRESSIVE if which == "vae_tiled" else Strategy.NONE)
        est = e.activation_bytes if which == "unet" else e.decode_bytes
        print(
            f"{case:16} measured {measured / 1e6:8.0f} MB  estimated {est / 1e6:8.0f} MB  "
            f"error {(est - measured) / measured:+.0%}"
        )


if __name__ == "__main__":
    main()
