"""Demo training: the shared optimizer step, and state rebuilt from the shipped model on a new machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from demo_kit import train_unet, train_vae
from demo_kit.seed import seed_state, write_resume
from demo_kit.train_common import Budget, load_checkpoint, loss_weight, optimizer_step, save_checkpoint

from ml_lib.diffusion.demo.assets import demo_folder, has_demo_model


def test_optimizer_step_sets_lr_clips_and_updates() -> None:
    w = torch.nn.Parameter(torch.tensor([100.0, -200.0]))
    opt = torch.optim.SGD([w], lr=1.0)
    before = w.detach().clone()
    value = optimizer_step(opt, (w**2).sum(), [w], 0.5, max_norm=1.0)
    assert value == 50_000.0 and opt.param_groups[0]["lr"] == 0.5
    step = (before - w.detach()).norm().item()
    assert abs(step - 0.5) < 1e-5  # SGD step = lr x clipped gradient of norm 1


def test_seeded_state_resumes_from_the_shipped_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new machine has no training state: it is rebuilt from the shipped weights and training goes on."""
    if not has_demo_model():
        pytest.skip("no shipped demo model")
    shipped = json.loads((demo_folder() / "training.json").read_text())["unet"]["steps"]
    assert seed_state(tmp_path, demo_folder(), resume=tmp_path / "none") is True
    assert seed_state(tmp_path, demo_folder(), resume=tmp_path / "none") is False  # never overwrites a state
    seeded = load_checkpoint(tmp_path / "unet.pt")
    assert seeded is not None and seeded["step"] == shipped and seeded["opt"] is None
    monkeypatch.setattr(train_vae, "VAE_STEPS", load_checkpoint(tmp_path / "vae.pt")["step"])  # type: ignore[index]
    monkeypatch.setattr(train_unet, "UNET_STEPS", shipped + 2)
    assert train_unet.train_unet(tmp_path, Budget(5.0)) is True
    resumed = load_checkpoint(tmp_path / "unet.pt")
    assert resumed is not None and resumed["step"] == shipped + 2
    assert resumed["warm_from"] == shipped and resumed["opt"] is not None  # fresh moments, re-warmed
    moved = [k for k, v in resumed["unet"].items() if not torch.equal(v, seeded["unet"][k])]
    assert moved, "two training steps changed the live UNet"
    pipe, step = train_unet.load_base(tmp_path)
    assert step == shipped + 2 and type(pipe).__name__ == "StableDiffusionPipeline"
    rows = pipe.text_encoder.get_input_embeddings().weight
    assert rows.shape[0] == len(pipe.tokenizer)  # grown for world 2's words


def test_a_resume_point_carries_the_vae_to_a_new_machine(tmp_path: Path) -> None:
    if not has_demo_model():
        pytest.skip("no shipped demo model")
    first, resume, second = tmp_path / "first", tmp_path / "resume", tmp_path / "second"
    seed_state(first, demo_folder(), resume=tmp_path / "none")
    vae = load_checkpoint(first / "vae.pt")
    assert vae is not None
    vae["step"] += 7
    vae["model"] = {k: v + 0.5 for k, v in vae["model"].items()}  # as if trained on
    save_checkpoint(first / "vae.pt", vae)
    write_resume(first, resume)
    assert seed_state(second, demo_folder(), resume=resume) is True
    carried = load_checkpoint(second / "vae.pt")
    assert carried is not None and carried["step"] == vae["step"] and carried["opt"] is None
    assert all(torch.equal(carried["model"][k], v) for k, v in vae["model"].items())
    assert carried["config"]["scaling_factor"] == vae["config"]["scaling_factor"]


def test_a_resume_point_carries_the_unet_once_it_trained_past_its_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not has_demo_model():
        pytest.skip("no shipped demo model")
    first, resume, second = tmp_path / "first", tmp_path / "resume", tmp_path / "second"
    seed_state(first, demo_folder(), resume=tmp_path / "none")
    write_resume(first, resume)
    assert not (resume / "unet.safetensors").exists()  # nothing past the shipped step yet
    unet = load_checkpoint(first / "unet.pt")
    assert unet is not None
    unet["step"] += 11
    unet["ema_unet"] = {k: v + 0.25 for k, v in unet["ema_unet"].items()}  # as if trained on
    unet["ema_text"] = {k: v - 0.25 for k, v in unet["ema_text"].items()}
    unet["aux_head"] = {"weight": torch.randn(3, 4), "bias": torch.randn(3)}
    save_checkpoint(first / "unet.pt", unet)
    write_resume(first, resume)
    assert seed_state(second, demo_folder(), resume=resume) is True
    carried = load_checkpoint(second / "unet.pt")
    assert carried is not None and carried["step"] == unet["step"] == carried["seeded_from"]
    assert carried["opt"] is None and carried["seconds"] == unet["seconds"]
    for key, theirs in (("ema_unet", "ema_unet"), ("unet", "ema_unet"), ("ema_text", "ema_text")):
        assert all(torch.equal(carried[key][k], v.half().float()) for k, v in unet[theirs].items())
    assert all(torch.equal(carried["aux_head"][k], v) for k, v in unet["aux_head"].items())
    monkeypatch.setattr(train_vae, "VAE_STEPS", load_checkpoint(second / "vae.pt")["step"])  # type: ignore[index]
    pipe, step = train_unet.load_base(second)
    assert step == unet["step"]
    assert pipe.text_encoder.get_input_embeddings().weight.shape[0] == len(pipe.tokenizer)
    write_resume(second, tmp_path / "again")  # seeded, not trained on: nothing new to carry
    assert not (tmp_path / "again" / "unet.safetensors").exists()


def test_loss_weight_is_min_snr_with_an_x0_floor() -> None:
    snr = torch.tensor([0.01, 1.0, 100.0])
    assert torch.allclose(loss_weight(snr), torch.tensor([1.0, 1.0, 0.05]))
    # x0-space weight = ε weight x snr: never below the floor, so high noise (snr 0.01) still teaches
    assert torch.allclose(loss_weight(snr, x0_floor=0.3) * snr, torch.tensor([0.3, 1.0, 5.0]))


def test_seeded_vae_trains_again_for_world_2_then_refines_the_decoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A seeded VAE resumes into a new world (world 2 began at the shipped world-1 step; here the shipped
    step plays that part): the whole autoencoder trains and the latent scale is measured anew when the
    encoder is final; then only the decoder moves and the scale is kept."""
    if not has_demo_model():
        pytest.skip("no shipped demo model")
    shipped = json.loads((demo_folder() / "training.json").read_text())["vae"]["steps"]
    seed_state(tmp_path, demo_folder(), resume=tmp_path / "no-resume-point")  # the shipped VAE
    seeded = load_checkpoint(tmp_path / "vae.pt")
    assert seeded is not None and seeded["step"] == shipped
    monkeypatch.setattr(train_vae, "WORLD2_FROM", shipped)
    monkeypatch.setattr(train_vae, "_W2_ENCODER_UNTIL", shipped + 2)
    monkeypatch.setattr(train_vae, "SHAPES_FROM", shipped + 4)
    monkeypatch.setattr(train_vae, "VAE_STEPS", shipped + 2)
    assert train_vae.train_vae(tmp_path, Budget(5.0)) is True
    joint = load_checkpoint(tmp_path / "vae.pt")
    assert joint is not None and joint["step"] == shipped + 2 and joint["opt"] is not None
    assert joint["config"]["scaling_factor"] != seeded["config"]["scaling_factor"]
    assert not torch.equal(
        joint["model"]["encoder.conv_in.weight"], seeded["model"]["encoder.conv_in.weight"]
    )
    monkeypatch.setattr(train_vae, "VAE_STEPS", shipped + 4)
    assert train_vae.train_vae(tmp_path, Budget(5.0)) is True
    refined = load_checkpoint(tmp_path / "vae.pt")
    assert refined is not None and refined["config"]["scaling_factor"] == joint["config"]["scaling_factor"]
    changed = {k.split(".")[0] for k, v in refined["model"].items() if not torch.equal(v, joint["model"][k])}
    assert changed == {"decoder", "post_quant_conv"}


def test_edge_loss_rewards_sharp_edges() -> None:
    sharp = torch.zeros(1, 3, 16, 16)
    sharp[..., 4:12, 4:12] = 1.0
    blurred = torch.nn.functional.avg_pool2d(sharp, 3, stride=1, padding=1)
    assert train_vae.edge_loss(sharp, sharp).item() == 0.0
    assert train_vae.edge_loss(blurred, sharp).item() > 0.01


def test_the_outline_band_covers_the_edge_inside_and_out() -> None:
    masks = torch.zeros(1, 16, 16, dtype=torch.bool)
    masks[0, 4:12, 4:12] = True
    band = train_vae.outline_band(masks.numpy(), width=2)[0, 0]
    assert band.shape == (16, 16)
    assert band[4, 8] == 1.0 and band[5, 8] == 1.0 and band[2, 8] == 1.0  # the edge row, in and out
    assert band[8, 8] == 0.0 and band[0, 0] == 0.0  # the middle and far outside
    assert band[6, 8] == 0.0 and band[1, 8] == 0.0  # beyond two pixels either way
