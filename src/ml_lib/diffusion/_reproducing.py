"""``ImageGenerator.reproduce``: an image of ours from its embedded plan, another tool's from its settings."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import MetadataError, ModelNotFoundError, PlanError
from .plan import GenerationPlan
from .result import GenerationResult

if TYPE_CHECKING:
    from .facade import ImageGenerator
    from .output.metadata import ImageMetadata

__all__ = ["reproduce_image"]

log = logging.getLogger(__name__)


def reproduce_image(
    gen: ImageGenerator,
    image: str | Path,
    *,
    output_dir: str | Path | None,
    save: bool,
    allow_hub: bool,
    model: str | None,
) -> GenerationResult:
    """The body of :meth:`ImageGenerator.reproduce` (see there)."""
    from .planning.validate import validate_plan

    meta = gen.info(image)
    foreign = meta.foreign is not None or meta.foreign_error is not None
    if meta.plan is None and meta.plan_error is None and foreign:  # a damaged plan of ours is not bypassed
        return _reproduce_foreign(gen, image, meta, output_dir=output_dir, save=save, model=model)
    if meta.plan is not None and model is not None:
        log.warning("%s carries its plan: --model is for other tools' images and is not used.", image)
    if meta.plan is None:
        why = f" ({meta.plan_error})" if meta.plan_error else ""
        raise MetadataError(
            f"{image} carries no ml-diffusion plan{why} and no settings of another tool "
            "(A1111, Forge, SD.Next, ComfyUI, InvokeAI, Fooocus) to reproduce."
        )
    try:
        validate_plan(meta.plan, gen.settings.limits, allow_hub=allow_hub)
    except PlanError as exc:
        raise PlanError(f"{image}: the plan inside it cannot be reproduced. {exc}") from exc
    plan = dataclasses.replace(meta.plan, output_dir=str(output_dir or gen.settings.outputs))
    plan = dataclasses.replace(plan, model=gen._relocate(plan.model))
    if save:
        from .output.writer import check_output_dir

        check_output_dir(Path(plan.output_dir))
    # The whole batch is regenerated (batching changes floating-point results); keep this image.
    index = _image_index(plan, meta.parsed)
    seed = plan.seeds[index]
    full = gen.execute(plan, save=False)
    t0 = time.perf_counter()
    images = full.images[index : index + 1]
    paths = (
        gen._save(plan, images, (seed,), full.generation_id, first=index, retries=full.retries)
        if save
        else ()
    )
    if paths:
        gen._record_outputs(full.generation_id, paths)
    timings = dataclasses.replace(full.timings, save=time.perf_counter() - t0)
    return GenerationResult(
        images, (seed,), plan, paths, timings, full.generation_id, full.retries, full.memory
    )


def _reproduce_foreign(
    gen: ImageGenerator,
    image: str | Path,
    meta: ImageMetadata,
    *,
    output_dir: str | Path | None,
    save: bool,
    model: str | None,
) -> GenerationResult:
    """Plan and run the request another tool's image records."""
    from .output.foreign import foreign_request

    request = foreign_request(image, meta.foreign, meta.foreign_error, model=model)
    output = str(output_dir or gen.settings.outputs)
    try:
        return gen.generate(dataclasses.replace(request, output_dir=output), save=save)
    except ModelNotFoundError as exc:
        if model is not None:
            raise
        raise ModelNotFoundError(
            f"{exc} The image names {request.model!r}: give your copy with --model."
        ) from exc


def _image_index(plan: GenerationPlan, parsed: Any) -> int:
    """Which image of ``plan`` an infotext describes: by its variation seed when the seeds are all one
    (A1111 with a variation strength), else by its seed; the first image when neither matches."""
    if parsed is None:
        return 0
    subseed = parsed.get("Variation seed")
    if plan.subseeds and subseed is not None and subseed.strip().isdigit():
        value = int(subseed)
        if value in plan.subseeds and len(set(plan.seeds)) == 1:
            return plan.subseeds.index(value)
    return plan.seeds.index(parsed.seed) if parsed.seed in plan.seeds else 0
