"""Draw docs/figures/prompt_schedule.png: the built-in demo model under prompts that change during sampling.

    python scripts/figure_prompt_schedule.py [--out docs/figures/prompt_schedule.png]

Five images of one seed, left to right: a red circle; a blue circle; ``[red:blue:0.5]`` (red for the first
half of the steps, then blue); ``[red|blue]`` (alternating every step); ``red … AND blue …`` (two noise
predictions combined). The demo model was trained on single-colour captions, so the last two show how it
mixes what it knows rather than a meaningful picture.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.demo.assets import demo_model_dir

SCENE = "circle on the left, light blue background"
PROMPTS = (
    f"a red {SCENE}",
    f"a blue {SCENE}",
    f"a [red:blue:0.5] {SCENE}",
    f"a [red|blue] {SCENE}",
    f"a red {SCENE} AND a blue {SCENE}",
)
SCALE, GAP = 2, 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/figures/prompt_schedule.png"))
    args = parser.parse_args()
    model = str(demo_model_dir())  # named, with auto off: no LoRA is recommended into the picture
    with (
        tempfile.TemporaryDirectory() as home,
        ImageGenerator(Settings(home=Path(home), model_roots=())) as gen,
    ):
        images = [
            gen.generate(p, model=model, seed=3, steps=20, auto=False, save=False).images[0] for p in PROMPTS
        ]
    side = images[0].width * SCALE
    strip = Image.new("RGB", (len(images) * (side + GAP) - GAP, side), "white")
    for i, image in enumerate(images):
        strip.paste(image.resize((side, side), Image.Resampling.NEAREST), (i * (side + GAP), 0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    strip.save(args.out, optimize=True)
    print(args.out)


if __name__ == "__main__":
    main()
