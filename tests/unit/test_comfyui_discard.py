"""Samplers whose penultimate sigma A1111 drops and ComfyUI keeps (DPM++ 3M SDE) get no ComfyUI graph, and a
ComfyUI image made with one is read with a note (ComfyUI's DISCARD_PENULTIMATE_SIGMA_SAMPLERS: dpm_2,
dpm_2_ancestral, uni_pc, uni_pc_bh2)."""

from __future__ import annotations

from ml_lib.diffusion.output.comfyui import comfy_graph
from ml_lib.diffusion.output.comfyui_names import from_comfy_sampler, to_comfy_sampler
from ml_lib.diffusion.samplers import SamplerChoice

from .test_comfyui_graph import check_against_schema, make_plan


def test_dpmpp_3m_sde_has_no_graph_and_dpm2_keeps_its_own() -> None:
    assert to_comfy_sampler(SamplerChoice("DPM++ 3M SDE", "Exponential")) is None
    graph = comfy_graph(make_plan(sampler="DPM++ 3M SDE", schedule="Exponential"), seed=1)
    assert graph.nodes == {} and graph.reason is not None and "DPM++ 3M SDE" in graph.reason
    assert to_comfy_sampler(SamplerChoice("DPM2", "Karras")) == ("dpm_2", "karras")  # both drop it
    check_against_schema(comfy_graph(make_plan(sampler="DPM2", schedule="Karras"), seed=1).nodes)


def test_a_comfyui_dpmpp_3m_sde_is_read_with_a_note() -> None:
    choice, note = from_comfy_sampler("dpmpp_3m_sde_gpu", "simple")
    assert choice == SamplerChoice("DPM++ 3M SDE", "Uniform")
    assert note is not None and "keeps the penultimate sigma" in note and "'simple' read as Uniform" in note
    assert from_comfy_sampler("dpmpp_2m", "karras") == (SamplerChoice("DPM++ 2M", "Karras"), None)
