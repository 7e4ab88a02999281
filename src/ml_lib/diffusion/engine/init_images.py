"""img2img / inpaint inputs: the stored init image and mask, sized, blurred and pasted back like A1111.

"Inpaint only masked" crops the masked area (plus padding, grown to the output aspect) from the
init image, generates it at the full output size and pastes it back; otherwise the whole image is
generated. Either way the original pixels are kept exactly where the (blurred) mask is black.
Masked content other than "original" paints the masked area with the surrounding colours first (A1111's
``masking.fill``); the latent modes then go on in ``inpaint_fill``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..plan import GenerationPlan, ImageRef

if TYPE_CHECKING:
    from PIL import Image

    from ..imaging.masks import Box

__all__ = ["PreparedInit", "load_ref", "prepare_init"]


def load_ref(ref: ImageRef) -> Image.Image:
    """The image a plan refers to, verified against its sha256."""
    from ..imaging.store import InputStore

    path = Path(ref.path)
    return InputStore(path.parent).get(path, ref.sha256)


@dataclass(frozen=True, slots=True)
class PreparedInit:
    """Call kwargs for the pipeline, and what is needed to paste results back over the original."""

    kwargs: dict[str, Any]
    init: Image.Image | None = None
    mask: Image.Image | None = None
    box: Box | None = None

    def finish(self, images: list[Image.Image]) -> list[Image.Image]:
        """Keep the original pixels outside the mask (A1111's overlay); no-op without a mask."""
        if self.mask is None or self.init is None:
            return images
        from ..imaging.masks import composite, paste_crop

        if self.box is not None:
            return [paste_crop(self.init, image, self.box, self.mask) for image in images]
        return [composite(self.init, image, self.mask) for image in images]


def prepare_init(plan: GenerationPlan) -> PreparedInit:
    """Pipeline kwargs for the plan's mode (size for txt2img; image/strength[/mask] otherwise)."""
    if plan.init is None:
        return PreparedInit({"width": plan.width, "height": plan.height})
    from ..imaging.resize import ResizeMode, resize_image

    size = (plan.width, plan.height)
    init = resize_image(load_ref(plan.init.image).convert("RGB"), *size, ResizeMode(plan.init.resize_mode))
    if plan.init.mask is None:
        return PreparedInit({"image": init, "strength": plan.init.pipeline_strength(plan.steps)})
    from ..imaging.intake import load_mask
    from ..imaging.masks import blur_mask, crop_region, crop_to_box, expand_to_aspect

    mask = load_mask(load_ref(plan.init.mask), size)
    if plan.init.mask_blur:
        mask = blur_mask(mask, plan.init.mask_blur)
    box = None
    image, region = init, mask
    if plan.init.inpaint_full_res:
        box = expand_to_aspect(crop_region(mask, plan.init.inpaint_padding), *size, size)
        image, region = crop_to_box(init, box, *size), crop_to_box(mask, box, *size)
    if plan.init.inpainting_fill != "original":  # A1111 fills before encoding for fill and both latent modes
        from ..imaging.masks import fill_masked

        image = fill_masked(image, region)
    kwargs = {
        "image": image,
        "mask_image": region,
        "strength": plan.init.pipeline_strength(plan.steps),
        "width": size[0],
        "height": size[1],
    }
    return PreparedInit(kwargs, init, mask, box)
