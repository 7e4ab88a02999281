"""Planner: a request, what the resolve step found for it, the prompt analysis and the device → a plan.

Pure: no I/O. Each value comes from the user when given, else from the prompt analysis (size), the
catalog (a chosen checkpoint, recommended LoRAs, distilled retuning) or the family profile and preset,
and each is recorded as a Decision with its reason.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from .._assets import local_path
from ..catalog.families import Family, PredictionType
from ..errors import RequestError
from ..output.metadata import normalize_format
from ..output.naming import DEFAULT_TEMPLATE as DEFAULT_NAME_TEMPLATE
from ..output.naming import template_tokens
from ..plan import Decision, GenerationPlan, JSONScalar, LoraUse, ModelRef, ResolvedRequest, Source
from ..prompt.analysis import PromptAnalysis
from ..request import GenerationRequest
from ..samplers import AUTOMATIC, parse_sampler, split_sampler
from ..settings import Settings
from .auto import Candidates
from .checks import MAX_SEED, check_request, check_size
from .cpu_policy import plan_storage
from .device import DeviceInfo, choose_dtype
from .hires import auto_hires_size, hires_target, plan_hires
from .inputs import plan_controls, plan_init, plan_ip_adapters
from .lora_cache import IndexCache
from .loras import LoraChoice, Similarity, choose_loras, insert_triggers
from .memory import plan_memory
from .parameters import find_speed, parameter_defaults, test_model_defaults
from .preferences import LearningContext, Preferences
from .profiles import profile_for
from .prompt_schedule import plan_hires_schedule, plan_prompt_schedule, plan_sdxl_empty_negative
from .refiner import plan_refiner
from .seeds import plan_batch_count, plan_variation
from .threads import choose_threads

__all__ = ["DEFAULT_NAME_TEMPLATE", "Planner"]

_V = TypeVar("_V", bound=JSONScalar)


@dataclass(slots=True)
class _Decisions:
    items: list[Decision] = field(default_factory=list)

    def pick(self, name: str, user: _V | None, fallback: _V, source: Source, reason: str) -> _V:
        if user is not None:
            self.items.append(Decision(name, user, Source.USER, "set by the user"))
            return user
        self.items.append(Decision(name, fallback, source, reason))
        return fallback


class Planner:
    """Fills every unset field of a request; holds no state between plans."""

    def __init__(
        self,
        settings: Settings,
        *,
        similarity: Similarity | None = None,
        seed_source: Callable[[], int] | None = None,
        preferences: Preferences | None = None,
        lora_cache: IndexCache | None = None,
    ) -> None:
        self._settings = settings
        self._preferences = preferences  # learned from the history; None or empty: today's planner
        self._similarity = similarity
        self._lora_cache = lora_cache  # the LoRA index per catalog state (None: built per plan)
        self._seed_source = seed_source or (lambda: random.SystemRandom().randrange(MAX_SEED + 1))

    def plan(
        self,
        request: GenerationRequest,
        resolved: ResolvedRequest,
        analysis: PromptAnalysis | None,
        device: DeviceInfo,
    ) -> GenerationPlan:
        """Plan ``request`` with what the resolve step found, on ``device``; raises RequestError on bad input.

        ``analysis`` sets the size from the prompt's aspect; with ``request.auto`` the resolved
        candidates add recommended LoRAs and the model's decision says why it was chosen.
        """
        limits = self._settings.limits
        check_request(request, limits)
        if request.name_template is not None:
            template_tokens(request.name_template)
        model = resolved.model
        family, prediction = Family(model.family), PredictionType(model.prediction_type)
        profile = profile_for(family, prediction)
        d = _Decisions()
        refs = resolved
        if resolved.model_decision is not None:
            d.items.append(resolved.model_decision)
        candidates = (
            Candidates.of(resolved.candidates, similarity=self._similarity, cache=self._lora_cache)
            if request.auto
            else None
        )
        lora_choice = _recommend(request, model, family, resolved.loras, analysis, candidates)
        picks = lora_choice.picks
        drawn = self._seed_source()
        context = LearningContext.of(family.value, analysis)
        if self._preferences is not None and request.auto and candidates is not None:
            exclude = [x for lora in resolved.loras for x in (lora.path, lora.name)]
            limit = candidates.max_loras
            picks = self._preferences.adjust_loras(picks, context, candidates.loras, family, exclude, limit)
        loras = resolved.loras + tuple(p.use for p in picks)
        known = resolved.candidates
        speed = find_speed(model, loras, self._lora_cache.by_path(known) if self._lora_cache else known)
        p = parameter_defaults(profile, prediction, request, analysis, speed)
        if resolved.test_model:
            p = test_model_defaults(p)
        if self._preferences is not None:
            user_seed = request.seed if request.seed not in (None, -1) else drawn
            p = self._preferences.adjust(p, context, analysis, int(user_seed))
        size_source, size_why, default_w, default_h = p.size_source, p.size_reason, p.width, p.height
        if refs.init_image is not None:
            ref = refs.init_image
            default_w, default_h = max(8, ref.width // 8 * 8), max(8, ref.height // 8 * 8)
            size_source, size_why = Source.ANALYSIS, "the init image's size (rounded down to a multiple of 8)"
        width = d.pick("width", request.width, default_w, size_source, size_why)
        height = d.pick("height", request.height, default_h, size_source, size_why)
        check_size(int(width), int(height), limits)
        first_pass = auto_hires_size(
            request, profile, int(width), int(height), img2img=refs.init_image is not None
        )
        auto_resize = None
        if first_pass is not None:
            auto_resize, (width, height) = (int(width), int(height)), first_pass
            why = (
                f"first pass of the hires fix to {auto_resize[0]}x{auto_resize[1]}, at about the native area"
            )
            d.items = [x for x in d.items if x.field not in ("width", "height")]
            d.items += [
                Decision("width", width, Source.PROFILE, why),
                Decision("height", height, Source.PROFILE, why),
            ]
        steps = d.pick("steps", request.steps, p.steps, p.steps_source, p.steps_reason)
        cfg = d.pick("cfg_scale", request.cfg_scale, p.cfg_scale, p.cfg_source, p.cfg_reason)
        if request.sampler is None:
            choice = parse_sampler(p.sampler, request.schedule or p.schedule)
            d.pick("sampler", None, choice.sampler, p.sampler_source, p.sampler_reason)
        else:
            choice = parse_sampler(request.sampler, request.schedule)
            d.pick("sampler", choice.sampler, None, Source.USER, "")
        embedded = split_sampler(request.sampler)[1] if request.sampler else None
        if embedded or request.schedule not in (None, AUTOMATIC):
            d.pick("schedule", choice.schedule, None, Source.USER, "")
        elif request.sampler:
            d.pick(
                "schedule", None, choice.schedule, Source.PROFILE, f"A1111's schedule for {choice.sampler}"
            )
        else:
            d.pick("schedule", None, choice.schedule, p.sampler_source, f"{p.sampler_reason} (schedule)")
        seed = request.seed if request.seed not in (None, -1) else None
        seed = d.pick("seed", seed, drawn, Source.RANDOM, "no seed given: drawn at random")
        batch = d.pick("batch_size", request.batch_size, 1, Source.PROFILE, "one image unless asked")
        clip_skip = d.pick(
            "clip_skip",
            request.clip_skip,
            profile.clip_skip,
            Source.PROFILE,
            f"{family.value} profile: last CLIP layer",
        )
        _check_clip_skip(int(clip_skip), resolved.clip_layers)
        dtype = choose_dtype(device, family)
        d.items.append(Decision("device", device.kind, Source.DEVICE, device.name or "detected device"))
        d.items.append(Decision("dtype", dtype.dtype, Source.DEVICE, dtype.reason))
        threads = 0
        if device.kind == "cpu":
            requested = self._settings.threads
            policy = choose_threads(
                device.cores, device.busy_cores, params=resolved.unet_params, requested=requested
            )
            threads = policy.threads
            source = Source.USER if requested is not None else Source.DEVICE
            d.items.append(Decision("threads", threads, source, policy.reason))
        hires = plan_hires(
            request,
            width=int(width),
            height=int(height),
            limits=limits,
            upscaler_path=resolved.upscaler_path,
            upscaler_hash=resolved.upscaler_hash,
            auto_resize=auto_resize,
            items=d.items,
            first_schedule=choice.schedule,
            checkpoint=resolved.hires_checkpoint,
        )
        peak_w, peak_h = int(width), int(height)
        if hires is not None:  # the second pass is the larger one
            target = hires_target(peak_w, peak_h, hires)
            peak_w, peak_h = target.upscale_width, target.upscale_height
        shape = (peak_w, peak_h, int(batch), float(cfg))
        storage = plan_storage(resolved, device, dtype.dtype, shape, d.items)
        if hires is None:  # a hires checkpoint named with the hires fix off is not loaded
            resolved = dataclasses.replace(resolved, hires_checkpoint=None, hires_checkpoint_params=None)
        memory = plan_memory(request, resolved, device, dtype.dtype, shape, d.items, storage)
        out = d.pick(
            "output_dir", request.output_dir, str(self._settings.outputs), Source.PROFILE, "settings"
        )
        template = d.pick(
            "name_template", request.name_template, DEFAULT_NAME_TEMPLATE, Source.PROFILE, "A1111-style names"
        )
        if request.image_format is not None:
            fmt = normalize_format(request.image_format)[1].lstrip(".")
            d.pick("image_format", fmt, None, Source.USER, "")
        else:
            fmt = str(
                d.pick("image_format", None, "png", Source.PROFILE, "PNG keeps full metadata, lossless")
            )
        init = plan_init(request, refs, d.items)  # runs init.steps_run(steps) >= 1 steps, as A1111
        controls = plan_controls(request, refs, d.items)
        ip_adapters = plan_ip_adapters(request, refs)
        for lora in loras[: len(loras) - len(picks)]:
            d.items.append(
                Decision(
                    "lora", f"{lora.name}:{lora.te_weight:g}:{lora.unet_weight:g}", Source.USER, "requested"
                )
            )
        d.items.extend(pick.decision for pick in picks)
        if not picks and lora_choice.decision is not None:
            d.items.append(lora_choice.decision)  # "lora: none" and what was missing
        refiner = plan_refiner(request, model, resolved.refiner, resolved.refiner_decision, d.items)
        variation = plan_variation(request, self._seed_source, d.items)
        batch_count = plan_batch_count(request, int(batch), d.items)
        prompt = insert_triggers(request.prompt, (pick.trigger for pick in picks))
        if prompt != request.prompt:
            added = ", ".join(str(pick.trigger) for pick in picks if pick.trigger)
            d.items.append(Decision("prompt", prompt, Source.CATALOG, f"added trigger words: {added}"))
        for e in resolved.embeddings:
            d.items.append(Decision("embedding", e.name, Source.CATALOG, f"named in the prompt; {e.path}"))
        if hires is not None:  # A1111 schedules the second pass's prompts over the hires steps
            hires = dataclasses.replace(
                hires,
                prompt_schedule=plan_hires_schedule(
                    hires, prompt, request.negative_prompt, int(steps), choice.sampler
                ),
            )
        empty_negative, why_negative = plan_sdxl_empty_negative(family, self._settings.sdxl_empty_negative)
        d.items.extend([why_negative] if why_negative is not None else [])
        return GenerationPlan(
            prompt=prompt,
            negative_prompt=request.negative_prompt,
            model=model,
            width=int(width),
            height=int(height),
            steps=int(steps),
            cfg_scale=float(cfg),
            sampler=choice.sampler,
            schedule=choice.schedule,
            seed=int(seed),
            batch_size=int(batch),
            clip_skip=int(clip_skip),
            device=device.kind,
            dtype=dtype.dtype,
            output_dir=str(out),
            name_template=str(template),
            image_format=fmt,
            loras=loras,
            controls=controls,
            embeddings=resolved.embeddings,
            ip_adapters=ip_adapters,
            init=init,
            decisions=tuple(d.items),
            threads=threads,
            memory=memory,
            prompt_schedule=plan_prompt_schedule(prompt, request.negative_prompt, int(steps), choice.sampler),
            sdxl_empty_negative=empty_negative,
            hires=hires,
            refiner=refiner,
            variation=variation,
            batch_count=batch_count,
            storage_dtype=storage,
        )


def _check_clip_skip(clip_skip: int, layers: int | None) -> None:
    if layers is not None and clip_skip > layers:
        raise RequestError(
            f"clip skip {clip_skip} is more than this model's text encoder has layers ({layers}); "
            f"use --clip-skip {layers} or less (1 = last layer)."
        )


def _recommend(
    request: GenerationRequest,
    model: ModelRef,
    family: Family,
    loras: tuple[LoraUse, ...],
    analysis: PromptAnalysis | None,
    candidates: Candidates | None,
) -> LoraChoice:
    if not request.auto or candidates is None or candidates.loras is None:
        return LoraChoice(())
    exclude = [x for lora in loras for x in (lora.path, local_path(lora.path), lora.name)]
    return choose_loras(
        request.prompt,
        candidates.loras,
        family,
        analysis,
        exclude=exclude,
        limit=candidates.max_loras,
        similarity=candidates.similarity,
    )
