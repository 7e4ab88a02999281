"""The shared training step of the demo trainers: learning rate set, gradients clipped, weights moved."""

from __future__ import annotations

import torch

from ml_lib.diffusion.demo.train_common import optimizer_step


def test_optimizer_step_sets_lr_clips_and_updates() -> None:
    w = torch.nn.Parameter(torch.tensor([100.0, -200.0]))
    opt = torch.optim.SGD([w], lr=1.0)
    before = w.detach().clone()
    value = optimizer_step(opt, (w**2).sum(), [w], 0.5, max_norm=1.0)
    assert value == 50_000.0 and opt.param_groups[0]["lr"] == 0.5
    step = (before - w.detach()).norm().item()
    assert abs(step - 0.5) < 1e-5  # SGD step = lr x clipped gradient of norm 1
