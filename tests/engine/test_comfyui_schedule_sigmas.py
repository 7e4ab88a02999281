"""A ComfyUI graph's prompt schedule switches at A1111's sampler call, checked by running ComfyUI's own rules.

ComfyUI's code is reproduced here with torch as it is written (float32 buffers, torch.linspace, the
float32 comparison of a call's sigma with ``timestep_start``/``timestep_end``), independently of
``output/comfyui_sigmas.py`` (pure float64 Python): ``ModelSamplingDiscrete`` and ``percent_to_sigma``
(comfy/model_sampling.py), ``make_beta_schedule`` (comfy/ldm/modules/diffusionmodules/util.py), the
schedulers, ``KSampler.calculate_sigmas``/``set_steps``, ``calculate_start_end_timesteps`` and
``get_area_and_mult`` (comfy/samplers.py), where each sampler calls the model (comfy/k_diffusion/sampling.py),
and the conditioning lists of the nodes (nodes.py). The commits are in tests/fixtures/comfyui_nodes.json.
A1111's side is its rule: ``[from:to:when]`` keeps ``from`` while the call counter is <= ``int(when * total)``
(``total`` twice the steps for second-order samplers); ``[a|b]`` gives ``a`` at 1-based step ``k`` for odd
``k`` and keeps it while the 0-based call counter is <= ``k``: calls 0 and 1 use ``a``, then they alternate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from ml_lib.diffusion.engine.executor import execute
from ml_lib.diffusion.engine.pool import LoadedPipeline
from ml_lib.diffusion.output.comfyui import comfy_graph
from ml_lib.diffusion.output.comfyui_names import to_comfy_sampler
from ml_lib.diffusion.output.comfyui_prompts import comfy_pieces
from ml_lib.diffusion.plan import HiresPlan
from ml_lib.diffusion.planning.prompt_schedule import plan_hires_schedule, plan_prompt_schedule
from ml_lib.diffusion.samplers import SAMPLERS, SamplerChoice

from ..unit.test_comfyui_graph import by_type, check_against_schema, make_plan
from .test_prompt_schedule import by_hand, capture, one_thread, pipes  # noqa: F401 (fixtures)
from .test_prompt_schedule import make_plan as tiny_plan


class ComfyDiscrete:
    """comfy/model_sampling.py ModelSamplingDiscrete with the default (SD 1.x / SDXL) sampling settings."""

    def __init__(self) -> None:
        betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
        self.sigmas = sigmas.float()
        self.log_sigmas = sigmas.log().float()

    @property
    def sigma_min(self) -> torch.Tensor:
        return self.sigmas[0]

    @property
    def sigma_max(self) -> torch.Tensor:
        return self.sigmas[-1]

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        dists = sigma.log() - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape)

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        t = torch.clamp(timestep.float(), min=0, max=(len(self.sigmas) - 1))
        low_idx, high_idx, w = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - w) * self.log_sigmas[low_idx] + w * self.log_sigmas[high_idx]).exp()

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return float(self.sigma(torch.tensor((1.0 - percent) * 999.0)).item())


def scheduler_sigmas(s: ComfyDiscrete, scheduler: str, steps: int) -> torch.Tensor:
    if scheduler in ("normal", "sgm_uniform"):
        start, end = s.timestep(s.sigma_max), s.timestep(s.sigma_min)
        if scheduler == "sgm_uniform":
            timesteps = torch.linspace(start, end, steps + 1)[:-1]
        else:
            timesteps = torch.linspace(start, end, steps)
        return torch.FloatTensor([float(s.sigma(ts)) for ts in timesteps] + [0.0])
    if scheduler == "karras":
        ramp = torch.linspace(0, 1, steps)
        lo, hi = float(s.sigma_min) ** (1 / 7.0), float(s.sigma_max) ** (1 / 7.0)
        sigmas = (hi + ramp * (lo - hi)) ** 7.0
        return torch.cat([sigmas, sigmas.new_zeros([1])])
    if scheduler == "exponential":
        sigmas = torch.linspace(math.log(float(s.sigma_max)), math.log(float(s.sigma_min)), steps).exp()
        return torch.cat([sigmas, sigmas.new_zeros([1])])
    if scheduler == "ddim_uniform":
        sigs: list[float] = [0.0]
        ss = max(len(s.sigmas) // steps, 1)
        x = 1
        while x < len(s.sigmas):
            sigs += [float(s.sigmas[x])]
            x += ss
        return torch.FloatTensor(sigs[::-1])
    if scheduler == "beta":  # beta_scheduler(model_sampling, steps, alpha=0.6, beta=0.6)
        stats = pytest.importorskip("scipy.stats")
        total_timesteps = len(s.sigmas) - 1
        ts = 1 - np.linspace(0, 1, steps, endpoint=False)
        ts = np.rint(stats.beta.ppf(ts, 0.6, 0.6) * total_timesteps)
        sigs: list[float] = []
        last_t = -1
        for t in ts:
            if t != last_t:
                sigs += [float(s.sigmas[int(t)])]
            last_t = t
        return torch.FloatTensor([*sigs, 0.0])
    raise AssertionError(scheduler)


def ksampler_sigmas(
    s: ComfyDiscrete, sampler: str, scheduler: str, steps: int, denoise: float
) -> torch.Tensor:
    def calculate(n: int) -> torch.Tensor:
        if sampler in ("dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"):
            sigmas = scheduler_sigmas(s, scheduler, n + 1)
            return torch.cat([sigmas[:-2], sigmas[-1:]])
        return scheduler_sigmas(s, scheduler, n)

    if denoise > 0.9999:
        return calculate(steps)
    return calculate(int(steps / denoise))[-(steps + 1) :]


def model_calls(sigmas: torch.Tensor, sampler: str) -> list[torch.Tensor]:
    """The sigma tensor each model call of ``sampler`` receives, in order (k_diffusion/sampling.py)."""
    calls = []
    for i in range(len(sigmas) - 1):
        calls.append(sigmas[i])
        if sigmas[i + 1] == 0 or sampler not in ("heun", "dpm_2", "dpm_2_ancestral", "dpmpp_sde"):
            continue
        if sampler == "heun":
            calls.append(sigmas[i + 1])
        elif sampler == "dpm_2":
            calls.append(sigmas[i].log().lerp(sigmas[i + 1].log(), 0.5).exp())
        elif sampler == "dpm_2_ancestral":
            sigma_from, sigma_to = sigmas[i], sigmas[i + 1]
            sigma_up = min(sigma_to, (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5)
            sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
            calls.append(sigmas[i].log().lerp(sigma_down.log(), 0.5).exp())
        else:  # dpmpp_sde, r = 1/2: lambda = -log sigma
            lambda_s, lambda_t = sigmas[i].log().neg(), sigmas[i + 1].log().neg()
            calls.append((lambda_s + 0.5 * (lambda_t - lambda_s)).neg().exp())
    return calls


def conds(graph: dict[str, Any], link: list[Any]) -> list[dict[str, Any]]:
    """The conditioning list a link carries, as nodes.py builds it (text, strength, percents)."""
    node = graph[link[0]]
    kind, inputs = node["class_type"], node["inputs"]
    if kind == "CLIPTextEncode":
        return [{"text": inputs["text"]}]
    if kind == "ConditioningConcat":
        first = conds(graph, inputs["conditioning_from"])[0]
        return [
            {**c, "text": f"{c['text']} | {first['text']}"} for c in conds(graph, inputs["conditioning_to"])
        ]
    if kind == "ConditioningCombine":
        return conds(graph, inputs["conditioning_1"]) + conds(graph, inputs["conditioning_2"])
    if kind == "ConditioningSetAreaStrength":
        return [{**c, "strength": inputs["strength"]} for c in conds(graph, inputs["conditioning"])]
    if kind == "ConditioningSetTimestepRange":
        return [
            {**c, "start_percent": inputs["start"], "end_percent": inputs["end"]}
            for c in conds(graph, inputs["conditioning"])
        ]
    raise AssertionError(kind)


def active(entries: list[dict[str, Any]], s: ComfyDiscrete, sigma: torch.Tensor) -> list[dict[str, Any]]:
    """calculate_start_end_timesteps + get_area_and_mult's range test for one call."""
    out = []
    for entry in entries:
        start = s.percent_to_sigma(entry["start_percent"]) if "start_percent" in entry else None
        end = s.percent_to_sigma(entry["end_percent"]) if "end_percent" in entry else None
        timestep_in = sigma.reshape(1)
        if start is not None and timestep_in[0] > start:
            continue
        if end is not None and timestep_in[0] < end:
            continue
        out.append(entry)
    return out


def comfy_texts_per_call(graph: dict[str, Any], sampler_node: dict[str, Any], which: str) -> list[str]:
    s = ComfyDiscrete()
    inputs = sampler_node["inputs"]
    sigmas = ksampler_sigmas(
        s, inputs["sampler_name"], inputs["scheduler"], inputs["steps"], inputs["denoise"]
    )
    entries = conds(graph, inputs[which])
    texts = []
    for sigma in model_calls(sigmas, inputs["sampler_name"]):
        used = active(entries, s, sigma)
        assert len(used) == 1, (float(sigma), used)
        texts.append(used[0]["text"])
    return texts


def rendered(text: str) -> str:
    return " | ".join(comfy_pieces(text))


CASES = [
    ("Euler", "Uniform"),
    ("Euler a", "Uniform"),
    ("DPM++ 2M", "Karras"),
    ("DPM++ 2M", "SGM Uniform"),
    ("DPM++ 2M SDE", "Exponential"),
    ("DPM++ SDE", "Karras"),
    ("Heun", "Uniform"),
    ("DPM2", "Karras"),
    ("DPM2 a", "Exponential"),
    ("DDIM", "Uniform"),
    ("LMS", "Karras"),
    ("Euler", "Beta"),
    ("DPM++ 2M", "Beta"),
]


@pytest.mark.parametrize(("sampler", "schedule"), CASES)
def test_cat_dog_switches_at_a1111s_call(sampler: str, schedule: str) -> None:
    prompt, negative, steps = "a [cat:dog:0.5] on a mat", "[ugly:blurry:0.25], lowres", 20
    plan = make_plan(
        prompt=prompt,
        negative_prompt=negative,
        steps=steps,
        sampler=sampler,
        schedule=schedule,
        prompt_schedule=plan_prompt_schedule(prompt, negative, steps, sampler),
    )
    graph = comfy_graph(plan, seed=3)
    assert graph.reason is None
    check_against_schema(graph.nodes)
    (node,) = by_type(graph.nodes, "KSampler")
    assert (node["inputs"]["sampler_name"], node["inputs"]["scheduler"]) == to_comfy_sampler(
        SamplerChoice(sampler, schedule)
    )
    total = steps * (2 if SAMPLERS[sampler].second_order else 1)
    positive = comfy_texts_per_call(graph.nodes, node, "positive")
    negative_texts = comfy_texts_per_call(graph.nodes, node, "negative")
    assert len(positive) in (total, total - 1)  # a second-order sampler's last step makes one call
    switch = int(0.5 * total)  # A1111: "cat" while the call counter is <= int(when * total)
    expected = [
        rendered("a cat on a mat") if c <= switch else rendered("a dog on a mat")
        for c in range(len(positive))
    ]
    assert positive == expected
    negative_switch = int(0.25 * total)
    assert negative_texts == [
        rendered("ugly, lowres") if c <= negative_switch else rendered("blurry, lowres")
        for c in range(len(positive))
    ]


@pytest.mark.parametrize(
    ("sampler", "schedule"), [("Euler a", "Uniform"), ("DPM2", "Karras"), ("DPM++ 2M", "Karras")]
)
def test_alternation_switches_every_call(sampler: str, schedule: str) -> None:
    prompt, steps = "a [cat|dog] BREAK snow", 12
    plan = make_plan(
        prompt=prompt,
        negative_prompt="",
        steps=steps,
        sampler=sampler,
        schedule=schedule,
        prompt_schedule=plan_prompt_schedule(prompt, "", steps, sampler),
    )
    graph = comfy_graph(plan, seed=3)
    assert graph.reason is None
    check_against_schema(graph.nodes)
    (node,) = by_type(graph.nodes, "KSampler")
    texts = comfy_texts_per_call(graph.nodes, node, "positive")
    options = (rendered("a cat BREAK snow"), rendered("a dog BREAK snow"))
    assert texts == [options[max(c - 1, 0) % 2] for c in range(len(texts))]
    assert plan.prompt_schedule is not None
    assert texts == [rendered(plan.prompt_schedule.parts[0].text_at(c)) for c in range(len(texts))]


def test_heun_cannot_switch_between_its_two_calls_at_one_sigma() -> None:
    # [cat:dog:21] switches after call 21, Heun's second call of step 10, made at the sigma of step 11's first.
    prompt = "a [cat:dog:21]"
    plan = make_plan(prompt=prompt, steps=20, sampler="Heun", schedule="Uniform",
                     prompt_schedule=plan_prompt_schedule(prompt, "", 20, "Heun"))  # fmt: skip
    graph = comfy_graph(plan, seed=3)
    assert graph.nodes == {} and graph.reason is not None and "same noise level" in graph.reason


def test_hires_pass_switches_at_a1111s_call_of_its_own_steps() -> None:
    prompt, steps = "a [cat:dog:0.5] on a mat", 20
    hires = HiresPlan(scale=1.5, steps=10, denoise=0.45, sampler="DPM++ 2M", schedule="Karras")
    hires = HiresPlan(**{**{f: getattr(hires, f) for f in hires.__dataclass_fields__},
                         "prompt_schedule": plan_hires_schedule(hires, prompt, "", steps, "Euler a")})  # fmt: skip
    plan = make_plan(
        prompt=prompt,
        negative_prompt="",
        steps=steps,
        sampler="Euler a",
        schedule="Uniform",
        prompt_schedule=plan_prompt_schedule(prompt, "", steps, "Euler a"),
        hires=hires,
    )
    graph = comfy_graph(plan, seed=3)
    assert graph.reason is None
    check_against_schema(graph.nodes)
    _first, second = by_type(graph.nodes, "KSampler")
    assert second["inputs"]["denoise"] == 0.45
    texts = comfy_texts_per_call(graph.nodes, second, "positive")
    assert hires.prompt_schedule is not None and len(texts) == 10
    assert texts == [rendered(hires.prompt_schedule.parts[0].text_at(c)) for c in range(10)]


@pytest.mark.parametrize(
    ("family", "sampler"), [("sd1", "Euler"), ("sd1", "DPM2"), ("sd1", "Heun"), ("sdxl", "Euler a")]
)
def test_our_engine_and_the_graph_condition_each_call_on_the_same_text(
    pipes: dict[str, LoadedPipeline],  # noqa: F811 (the fixture)
    family: str,
    sampler: str,
) -> None:
    """On a tiny pipeline: the text our engine's UNet sees at each call is the one the graph gives ComfyUI."""
    plan = tiny_plan("a [cat:dog:0.5]", "[ugly:blurry:0.4]", family=family, steps=6, sampler=sampler)
    graph = comfy_graph(plan, seed=3)
    assert graph.reason is None
    (node,) = by_type(graph.nodes, "KSampler")
    comfy_positive = comfy_texts_per_call(graph.nodes, node, "positive")
    comfy_negative = comfy_texts_per_call(graph.nodes, node, "negative")
    loaded = pipes[family]
    with capture(loaded.pipe.unet) as seen:
        execute(loaded, plan)
    assert len(seen["hidden"]) == len(comfy_positive)
    positives = {rendered(t): t for t in ("a cat", "a dog")}
    negatives = {rendered(t): t for t in ("ugly", "blurry")}
    assert len(set(comfy_positive)) == len(set(comfy_negative)) == 2  # both switch during the run
    for call, hidden in enumerate(seen["hidden"]):
        expected, _ = by_hand(loaded.pipe, positives[comfy_positive[call]], negatives[comfy_negative[call]])
        assert torch.equal(hidden, expected), call
