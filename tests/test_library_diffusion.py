"""Diffusion: schedules, DDPM/DDIM samplers against an exact oracle, CFG, time embedding, denoiser."""

from __future__ import annotations

import math

import pytest
import torch

from caramba.engine.data.base import DataContext
from caramba.engine.data.registry import DATASETS
from caramba.engine.layers.diffusion import (
    DiffusionSchedule, ScheduleConfig, TimeEmbeddingLayer, cfg_drop, guided, sinusoidal,
)
from caramba.engine.systems.build import build_system
from caramba.engine.train.registry import OBJECTIVES
from caramba.workspace import Workspace
from caramba.tests.library_fixtures import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def test_linear_schedule_alpha_bar_closed_form() -> None:
    s = DiffusionSchedule(ScheduleConfig(timesteps=10, beta_start=0.01, beta_end=0.1))
    betas = [0.01 + i * 0.01 for i in range(10)]
    expected = [math.prod(1 - b for b in betas[: t + 1]) for t in range(10)]
    torch.testing.assert_close(s.alpha_bar, torch.tensor(expected), atol=1e-6, rtol=1e-6)
    cos = DiffusionSchedule(ScheduleConfig(timesteps=50, beta_schedule="cosine"))
    assert (cos.alpha_bar[1:] < cos.alpha_bar[:-1]).all() and cos.alpha_bar[-1] < 0.01


def _oracle(s: DiffusionSchedule, target: torch.Tensor):
    """The exact noise predictor when the data is the single point ``target``."""
    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = s.alpha_bar[t][:, None]
        return (x - a.sqrt() * target) / (1 - a).sqrt()
    return eps


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_samplers_recover_a_point_mass_with_the_exact_denoiser(schedule: str) -> None:
    s = DiffusionSchedule(ScheduleConfig(timesteps=100, beta_schedule=schedule))
    target = torch.tensor([1.5, -0.5])
    g = torch.Generator().manual_seed(0)
    ddim = s.ddim_sample(_oracle(s, target), (16, 2), steps=10, generator=g)
    torch.testing.assert_close(ddim, target.expand(16, 2), atol=1e-4, rtol=1e-4)
    ddpm = s.ddpm_sample(_oracle(s, target), (16, 2), generator=g)
    torch.testing.assert_close(ddpm, target.expand(16, 2), atol=1e-4, rtol=1e-4)


def test_q_sample_statistics() -> None:
    s = DiffusionSchedule(ScheduleConfig(timesteps=20))
    x0 = torch.full((20000, 1), 3.0)
    t = torch.full((20000,), 12)
    xt = s.q_sample(x0, t, torch.randn_like(x0))
    a = float(s.alpha_bar[12])
    assert abs(xt.mean().item() - math.sqrt(a) * 3) < 0.03 and abs(xt.var().item() - (1 - a)) < 0.03


def test_guidance_and_label_dropout() -> None:
    c = lambda x, t: torch.ones_like(x)  # noqa: E731
    u = lambda x, t: torch.zeros_like(x)  # noqa: E731
    x = torch.zeros(3, 2)
    torch.testing.assert_close(guided(c, u, 3.0)(x, torch.zeros(3)), torch.full((3, 2), 3.0))
    labels = torch.zeros(10000, dtype=torch.long)
    dropped = cfg_drop(labels, 0.2, 7, training=True)
    assert set(dropped.unique().tolist()) == {0, 7} and abs((dropped == 7).float().mean().item() - 0.2) < 0.02
    assert torch.equal(cfg_drop(labels, 0.2, 7, training=False), labels)


def test_time_embedding_shape_grad_and_frequencies() -> None:
    t = torch.tensor([0, 5, 99])
    emb = sinusoidal(t, 8)
    assert torch.allclose(emb[1, 1], torch.tensor(math.cos(5 * 10000 ** (-1 / 4))))
    layer = TimeEmbeddingLayer(TimeEmbeddingLayer.Config(d_model=16))
    out = layer(t)
    assert out.shape == (3, 16)
    out.sum().backward()
    assert layer.mlp[0].weight.grad.abs().sum() > 0


def test_denoiser_learns_a_mixture_and_samples_near_its_centres(tmp_path) -> None:
    torch.manual_seed(0)
    data = DATASETS.get("dataset.gaussian_mixture_2d")({"n_samples": 2000, "n_components": 4, "std": 0.05,
                                                          "timesteps": 100}).build(DataContext(Workspace(tmp_path)))
    system = build_system({"ref": "system.diffusion_denoiser", "config": {
        "d_in": 2, "hidden": 64, "n_layers": 2, "schedule": {"timesteps": 100, "beta_start": 0.001, "beta_end": 0.1},
        "n_classes": 4, "p_uncond": 0.2}})
    objective = OBJECTIVES.get("objective.denoising_mse")({})
    opt = torch.optim.Adam(system.parameters(), lr=3e-3)
    train = data.train
    first = None
    assert set(train[0]) == {"x", "t", "y"}
    for step in range(600):
        idx = torch.randint(0, len(train), (128,))
        batch = {"x": train.x[idx], "y": train.y[idx], "t": torch.randint(0, 100, (128,))}
        res = objective(system(batch), batch, system)
        opt.zero_grad()
        res.loss.backward()
        opt.step()
        first = first if first is not None else res.loss.item()
    assert res.loss.item() < 0.6 * first
    system.eval()
    g = torch.Generator().manual_seed(1)
    pts = system.sample(200, sampler="ddim", steps=25, generator=g)
    centres = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]])
    near = torch.cdist(pts, centres).min(1).values
    baseline = torch.cdist(torch.randn(200, 2, generator=g) * 2, centres).min(1).values.median()
    assert near.median() < 0.6 < baseline  # samples gather at the modes; spread noise does not
    labels = torch.full((100,), 1)
    guided_pts = system.sample(100, labels=labels, guidance_scale=2.0, clip=3.0, generator=g)
    assert (torch.cdist(guided_pts, centres).argmin(1) == 1).float().mean() > 0.8
