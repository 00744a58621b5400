"""``system.diffusion_denoiser``: a noise-prediction MLP for vector data (DDPM / DDIM).

Config::

    system:
      ref: system.diffusion_denoiser
      config:
        d_in: 2                    # data dimension
        hidden: 128
        n_layers: 3
        schedule: {timesteps: 100, beta_schedule: cosine}
        n_classes: null            # set for class-conditional models (labels from batch["y"])
        p_uncond: 0.1              # classifier-free guidance dropout of the label

Training ``forward({"x": x0 (B, d_in)[, "t": (B,)][, "y": (B,)]})`` draws noise (and t
when the batch has none), forms x_t = q_sample(x0, t, noise) and returns
``{"pred": eps_theta(x_t, t, y), "target": noise}`` for ``objective.denoising_mse``. In
eval mode the noise comes from a fixed generator so validation losses are comparable.
:meth:`DiffusionDenoiser.sample` draws new points with DDPM or DDIM, optionally guided.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from caramba.engine.errors import CarambaError, ConfigProblem
from caramba.engine.layers.base import NodeConfig
from caramba.engine.layers.diffusion import (
    DiffusionSchedule, ScheduleConfig, TimeEmbeddingLayer, cfg_drop, guided,
)
from caramba.engine.layers.problems import Path, validate
from caramba.engine.systems.base import System
from caramba.engine.systems.registry import SYSTEMS


@SYSTEMS.register("system.diffusion_denoiser")
class DiffusionDenoiser(System):
    """eps_theta(x_t, t[, y]): residual SiLU MLP with additive time (and class) embeddings."""

    class Config(NodeConfig):
        d_in: int = Field(gt=0, description="data dimension")
        hidden: int = Field(128, gt=0, description="MLP width")
        n_layers: int = Field(3, ge=1, description="residual MLP blocks")
        schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="noise schedule")
        n_classes: int | None = Field(None, ge=2, description="class-conditional when set (labels in batch['y'])")
        p_uncond: float = Field(0.1, ge=0, lt=1, description="CFG: probability of dropping the label in training")

    @classmethod
    def plan(cls, config: Any, path: Path, problems: list[ConfigProblem], *,
             allow_python_impl: bool = False) -> Any:
        return validate(cls.Config, config, path, problems)

    @classmethod
    def from_plan(cls, plan: Any) -> DiffusionDenoiser:
        return cls(plan)

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = c = config
        self.schedule = DiffusionSchedule(c.schedule)
        self.inp = nn.Linear(c.d_in, c.hidden)
        self.time = TimeEmbeddingLayer(TimeEmbeddingLayer.Config(d_model=c.hidden))
        self.label = nn.Embedding(c.n_classes + 1, c.hidden) if c.n_classes else None  # last row = null class
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.hidden))
                                    for _ in range(c.n_layers))
        self.out = nn.Sequential(nn.LayerNorm(c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.d_in))

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted noise (B, d_in); ``y`` None or the null class = unconditional."""
        h = self.inp(x_t) + self.time(t)
        if self.label is not None:
            if y is None:
                y = torch.full((x_t.shape[0],), self.config.n_classes, dtype=torch.long, device=x_t.device)
            h = h + self.label(y)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if "x" not in batch:
            raise CarambaError(f"system.diffusion_denoiser needs batch['x'], got keys {sorted(batch)}",
                               fix="use dataset.diffusion_vector or a 2-D generator dataset")
        x0 = batch["x"].float()
        B = x0.shape[0]
        gen = None
        if not self.training:  # fixed noise: comparable validation losses
            gen = torch.Generator(device=x0.device).manual_seed(0)
        t = batch.get("t")
        if t is None:
            t = torch.randint(0, self.schedule.T, (B,), generator=gen, device=x0.device)
        noise = torch.randn(x0.shape, generator=gen, device=x0.device)
        y = batch.get("y") if self.label is not None else None
        if y is not None:
            y = cfg_drop(y.long(), self.config.p_uncond, self.config.n_classes, self.training)
        pred = self.eps(self.schedule.q_sample(x0, t.long(), noise), t.long(), y)
        return {"pred": pred, "target": noise}

    @torch.no_grad()
    def sample(self, n: int, *, sampler: Literal["ddpm", "ddim"] = "ddim", steps: int = 50,
               labels: torch.Tensor | None = None, guidance_scale: float = 1.0, clip: float | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` new points (n, d_in). With ``labels`` and guidance_scale != 1, CFG is used."""
        device = next(self.parameters()).device
        if labels is not None and self.label is None:
            raise CarambaError("labels given to an unconditional denoiser", fix="set n_classes in the system config")

        def cond(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.eps(x, t, labels)

        def uncond(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.eps(x, t, None)

        fn = cond if labels is None or guidance_scale == 1.0 else guided(cond, uncond, guidance_scale)
        shape = (n, self.config.d_in)
        if sampler == "ddpm":
            return self.schedule.ddpm_sample(fn, shape, clip=clip, generator=generator, device=device)
        return self.schedule.ddim_sample(fn, shape, steps=steps, clip=clip, generator=generator, device=device)
