"""Writing a plan's images: the A1111 infotext, the plan, the ComfyUI graph (PNG) and the generation id."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..plan import GenerationPlan

if TYPE_CHECKING:
    from ..result import Retry

__all__ = ["save_plan_images"]


def save_plan_images(
    plan: GenerationPlan,
    images: tuple[Any, ...],
    seeds: tuple[int, ...],
    generation_id: str,
    version: str,
    *,
    first: int = 0,
    retries: tuple[Retry, ...] = (),
) -> tuple[Path, ...]:
    """Save ``images`` (the plan's images from index ``first``) into the plan's folder; their paths."""
    from .comfyui import comfy_chunks
    from .infotext import format_infotext
    from .naming import NameContext
    from .writer import save_image

    now = datetime.now()
    plan_json = plan.to_json()
    paths = []
    extra = (("Memory retries", "; ".join(r.describe() for r in retries)),) if retries else ()
    for i, (image, seed) in enumerate(zip(images, seeds, strict=True)):
        text = format_infotext(
            plan, seed=seed, model_hash=plan.model.hash, version=version, index=first + i, extra=extra
        )
        ctx = NameContext.from_plan(plan, seed=seed, now=now)
        subseed = plan.subseeds[first + i] if first + i < len(plan.subseeds) else None
        comfy = comfy_chunks(plan, seed, subseed) if plan.image_format.lower() == "png" else ()
        paths.append(
            save_image(
                image,
                Path(plan.output_dir),
                plan.name_template,
                ctx,
                text,
                plan_json,
                plan.image_format,
                generation_id=generation_id,
                extra_chunks=comfy,
            )
        )
    return tuple(paths)
