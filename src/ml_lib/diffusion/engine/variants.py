"""txt2img / img2img / inpaint (with or without ControlNets) views of one loaded pipeline.

Views are made with diffusers' ``AutoPipelineFor*.from_pipe``: they share the base pipeline's modules
(no reload, no copy), so LoRAs and IP-Adapters applied to the base apply to every view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..plan import GenerationPlan

if TYPE_CHECKING:
    from .pool import LoadedPipeline

__all__ = ["mode_of", "pipeline_view"]


def mode_of(plan: GenerationPlan) -> str:
    """ "txt2img", "img2img" or "inpaint"."""
    if plan.init is None:
        return "txt2img"
    return "inpaint" if plan.init.mask is not None else "img2img"


def pipeline_view(
    loaded: LoadedPipeline, mode: str, controls: tuple[str, ...] = (), controlnets: tuple[Any, ...] = ()
) -> Any:
    """The pipeline for ``mode`` (with the ControlNet modules of the models ``controls``) sharing the base
    pipeline's components, its scheduler included (the current one); kept in ``loaded.views``."""
    base = loaded.pipe
    if mode == "txt2img" and not controlnets:
        return base
    cache = loaded.views
    key = (mode, controls)
    if key not in cache:
        import diffusers

        auto = {
            "txt2img": diffusers.AutoPipelineForText2Image,
            "img2img": diffusers.AutoPipelineForImage2Image,
            "inpaint": diffusers.AutoPipelineForInpainting,
        }[mode]
        kwargs: dict[str, Any] = {}
        if controlnets:
            kwargs["controlnet"] = controlnets[0] if len(controlnets) == 1 else list(controlnets)
        view = auto.from_pipe(base, **kwargs)
        view.set_progress_bar_config(disable=True)
        cache[key] = view
    view = cache[key]
    if view.scheduler is not base.scheduler:  # the base's scheduler is replaced when the sampler changes
        view.scheduler = base.scheduler
    return view
