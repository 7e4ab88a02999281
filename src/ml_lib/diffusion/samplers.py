"""A1111 sampler and schedule names, and the diffusers scheduler recipe behind each (pure data).

Both infotext forms are read: the pre-1.9 ``"DPM++ 2M Karras"`` and the 1.9+ pair
``Sampler: DPM++ 2M, Schedule type: Karras``. ``Automatic`` resolves to the schedule A1111 uses for
that sampler. The engine turns a :class:`SchedulerRecipe` into a diffusers scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnknownSamplerError

__all__ = [
    "AUTOMATIC",
    "SAMPLERS",
    "SCHEDULES",
    "SamplerChoice",
    "SamplerSpec",
    "SchedulerRecipe",
    "parse_sampler",
    "scheduler_recipe",
    "split_sampler",
]

AUTOMATIC = "Automatic"
_SIGMA_SCHEDULES = ("Uniform", "Karras", "Exponential", "SGM Uniform", "Beta")
_SPACING_SCHEDULES = ("Uniform", "SGM Uniform")

#: Schedule name -> scheduler constructor arguments.
SCHEDULES: dict[str, tuple[tuple[str, object], ...]] = {
    "Uniform": (),
    "Karras": (("use_karras_sigmas", True),),
    "Exponential": (("use_exponential_sigmas", True),),
    "SGM Uniform": (("timestep_spacing", "trailing"),),
    "Beta": (("use_beta_sigmas", True),),
}


@dataclass(frozen=True, slots=True)
class SamplerSpec:
    """An A1111 sampler and the diffusers scheduler that implements it."""

    name: str
    scheduler_class: str
    kwargs: tuple[tuple[str, object], ...] = ()
    default_schedule: str = "Uniform"
    schedules: tuple[str, ...] = _SIGMA_SCHEDULES
    aliases: tuple[str, ...] = ()
    #: Two model calls per step (A1111's ``second_order``): its prompt schedules count twice the steps.
    second_order: bool = False
    #: A1111's ``discard_next_to_last_sigma``: the levels of ``steps + 1`` steps, the penultimate dropped.
    discard_penultimate_sigma: bool = False


@dataclass(frozen=True, slots=True)
class SamplerChoice:
    """A sampler with a concrete (never ``Automatic``) schedule."""

    sampler: str
    schedule: str


@dataclass(frozen=True, slots=True)
class SchedulerRecipe:
    """Class name in ``diffusers`` and the constructor arguments to apply over the model's config."""

    class_name: str
    kwargs: tuple[tuple[str, object], ...]
    discard_penultimate_sigma: bool = False


_DPMPP = "DPMSolverMultistepScheduler"
SAMPLERS: dict[str, SamplerSpec] = {
    s.name: s
    for s in (
        SamplerSpec("Euler", "EulerDiscreteScheduler", aliases=("euler", "k_euler")),
        SamplerSpec(
            "Euler a",
            "EulerAncestralDiscreteScheduler",
            schedules=_SPACING_SCHEDULES,
            aliases=("euler_a", "k_euler_a", "euler_ancestral", "k_euler_ancestral"),
        ),
        SamplerSpec("Heun", "HeunDiscreteScheduler", aliases=("heun", "k_heun"), second_order=True),
        SamplerSpec("LMS", "LMSDiscreteScheduler", aliases=("lms", "k_lms")),
        SamplerSpec(
            "DPM2",
            "KDPM2DiscreteScheduler",
            default_schedule="Karras",
            aliases=("dpm_2", "k_dpm_2"),
            second_order=True,
            discard_penultimate_sigma=True,
        ),
        SamplerSpec(
            "DPM2 a",
            "KDPM2AncestralDiscreteScheduler",
            default_schedule="Karras",
            aliases=("dpm_2_ancestral", "k_dpm_2_a"),
            second_order=True,
            discard_penultimate_sigma=True,
        ),
        SamplerSpec(
            "DPM++ 2M",
            _DPMPP,
            (("algorithm_type", "dpmsolver++"), ("solver_order", 2)),
            default_schedule="Karras",
            aliases=("dpmpp_2m", "k_dpmpp_2m"),
        ),
        SamplerSpec(
            "DPM++ 2M SDE",
            _DPMPP,
            (("algorithm_type", "sde-dpmsolver++"), ("solver_order", 2)),
            default_schedule="Exponential",
            aliases=("dpmpp_2m_sde", "k_dpmpp_2m_sde"),
        ),
        SamplerSpec(
            "DPM++ SDE",
            "DPMSolverSDEScheduler",
            default_schedule="Karras",
            aliases=("dpmpp_sde", "k_dpmpp_sde"),
            second_order=True,
        ),
        SamplerSpec(
            "DPM++ 3M",
            _DPMPP,
            (("algorithm_type", "dpmsolver++"), ("solver_order", 3)),
            default_schedule="Karras",
            aliases=("dpmpp_3m",),
        ),
        SamplerSpec(
            "DPM++ 3M SDE",
            _DPMPP,
            (("algorithm_type", "sde-dpmsolver++"), ("solver_order", 3)),
            default_schedule="Exponential",
            aliases=("dpmpp_3m_sde", "k_dpmpp_3m_sde"),
            discard_penultimate_sigma=True,  # A1111 >= 1.6 marks it so (sd_samplers_kdiffusion.py)
        ),
        SamplerSpec("DDIM", "DDIMScheduler", schedules=_SPACING_SCHEDULES, aliases=("ddim",)),
        SamplerSpec(
            "PLMS",
            "PNDMScheduler",
            (("skip_prk_steps", True),),
            schedules=_SPACING_SCHEDULES,
            aliases=("plms",),
        ),
        SamplerSpec("DDPM", "DDPMScheduler", schedules=_SPACING_SCHEDULES, aliases=("ddpm",)),
        SamplerSpec("UniPC", "UniPCMultistepScheduler", aliases=("uni_pc", "unipc")),
        SamplerSpec("DEIS", "DEISMultistepScheduler", aliases=("deis",)),
        SamplerSpec("LCM", "LCMScheduler", schedules=_SPACING_SCHEDULES, aliases=("lcm",)),
        SamplerSpec("TCD", "TCDScheduler", schedules=_SPACING_SCHEDULES, aliases=("tcd",)),
    )
}

_BY_LOWER: dict[str, str] = {}
for _spec in SAMPLERS.values():
    for _alias in (_spec.name, *_spec.aliases):
        _BY_LOWER[_alias.lower()] = _spec.name
_SCHEDULE_BY_LOWER = {s.lower(): s for s in (*SCHEDULES, AUTOMATIC)}
_SCHEDULE_BY_LOWER["sgm_uniform"] = "SGM Uniform"
del _spec, _alias


def _unknown_sampler(text: str) -> UnknownSamplerError:
    return UnknownSamplerError(
        f"Unknown sampler {text!r}. Known samplers: {', '.join(SAMPLERS)} "
        f"(optionally followed by a schedule: {', '.join(SCHEDULES)})."
    )


def _canonical_schedule(text: str) -> str:
    try:
        return _SCHEDULE_BY_LOWER[text.strip().lower()]
    except KeyError:
        raise UnknownSamplerError(
            f"Unknown schedule {text!r}. Known schedules: {AUTOMATIC}, {', '.join(SCHEDULES)}."
        ) from None


def split_sampler(text: str) -> tuple[str, str | None]:
    """Canonical sampler name and the schedule embedded in a pre-1.9 name ("DPM++ 2M Karras"), if any."""
    key = " ".join(text.split()).lower()
    if key in _BY_LOWER:
        return _BY_LOWER[key], None
    for sched_lower, sched in _SCHEDULE_BY_LOWER.items():
        prefix = key[: -len(sched_lower) - 1]
        if key.endswith(" " + sched_lower) and prefix in _BY_LOWER:
            return _BY_LOWER[prefix], sched
    raise _unknown_sampler(text)


def parse_sampler(text: str, schedule: str | None = None) -> SamplerChoice:
    """Read a sampler name in either A1111 form and return it with a concrete schedule.

    ``parse_sampler("DPM++ 2M Karras")`` and ``parse_sampler("DPM++ 2M", "Karras")`` give the same choice;
    a schedule named in both places must agree. No schedule, or ``Automatic``, gives A1111's default
    schedule for the sampler.
    """
    name, embedded = split_sampler(text)
    chosen = _canonical_schedule(schedule) if schedule else None
    if embedded and chosen and chosen not in (embedded, AUTOMATIC):
        raise UnknownSamplerError(
            f"Sampler {text!r} names schedule {embedded!r} but schedule {chosen!r} was also given; give one."
        )
    final = embedded or chosen or AUTOMATIC
    spec = SAMPLERS[name]
    if final == AUTOMATIC:
        final = spec.default_schedule
    if final not in spec.schedules:
        raise UnknownSamplerError(
            f"Sampler {name!r} does not support schedule {final!r} in diffusers; "
            f"supported: {', '.join(spec.schedules)}."
        )
    return SamplerChoice(name, final)


def scheduler_recipe(choice: SamplerChoice) -> SchedulerRecipe:
    """The diffusers scheduler class and arguments for a sampler choice."""
    spec = SAMPLERS[choice.sampler]
    return SchedulerRecipe(
        spec.scheduler_class, spec.kwargs + SCHEDULES[choice.schedule], spec.discard_penultimate_sigma
    )
