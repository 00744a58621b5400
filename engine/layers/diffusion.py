"""Diffusion building blocks: noise schedules, DDPM/DDIM sampling, time embedding.

Denoising diffusion (Ho et al., 2020) corrupts data x0 over T steps::

    q(x_t | x0) = N(sqrt(abar_t) x0, (1 - abar_t) I),   abar_t = prod_{s<=t} (1 - beta_s)

and trains a network eps_theta(x_t, t) to predict the noise. Generation runs backwards:

* DDPM (ancestral): x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(1 - beta_t)
  + sigma_t z, with sigma_t^2 = beta_t (1 - abar_{t-1}) / (1 - abar_t) (computed through
  x0_hat, which ``clip`` may clamp to the data range, the usual guard against blow-ups
  at the noisiest steps);
* DDIM (Song et al., 2021): deterministic (eta = 0) jumps over a subsequence of steps:
  x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t),
  x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z.

Classifier-free guidance (Ho & Salimans, 2022): train with the condition dropped
(replaced by a null class) with probability ``p_uncond``; sample with
eps = eps_uncond + w (eps_cond - eps_uncond).

:class:`TimeEmbeddingLayer` (registered) maps integer timesteps to features: sinusoidal
frequencies (as in the transformer positional encoding) followed by a small MLP.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from caramba.engine.layers.base import FieldError, Layer, LayerConfig
from caramba.engine.layers.registry import LAYERS

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> predicted noise


class ScheduleConfig(BaseModel):
    """The forward-noising schedule."""

    model_config = ConfigDict(extra="forbid")

    timesteps: int = Field(1000, ge=2, description="diffusion steps T (1000 as in DDPM)")
    beta_schedule: Literal["linear", "cosine"] = Field("linear", description="linear (DDPM) or cosine (Nichol & Dhariwal)")
    beta_start: float = Field(1e-4, gt=0, lt=1, description="linear schedule: first beta")
    beta_end: float = Field(0.02, gt=0, lt=1, description="linear schedule: last beta")

    @model_validator(mode="after")
    def _order(self) -> ScheduleConfig:
        if self.beta_start >= self.beta_end:
            raise FieldError("beta_start", f"beta_start ({self.beta_start}) must be < beta_end ({self.beta_end})",
                             expected=f"< {self.beta_end}", found=str(self.beta_start), fix="swap them")
        return self


class DiffusionSchedule(nn.Module):
    """Precomputed betas / alpha-bars (float64 math, float32 buffers) and the samplers."""

    def __init__(self, config: ScheduleConfig) -> None:
        super().__init__()
        self.config = c = config
        if c.beta_schedule == "linear":
            betas = torch.linspace(c.beta_start, c.beta_end, c.timesteps, dtype=torch.float64)
        else:
            s = 0.008
            x = torch.linspace(0, c.timesteps, c.timesteps + 1, dtype=torch.float64)
            f = torch.cos(((x / c.timesteps) + s) / (1 + s) * math.pi / 2) ** 2
            betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        abar = torch.cumprod(1 - betas, 0)
        self.register_buffer("betas", betas.float(), persistent=False)
        self.register_buffer("alpha_bar", abar.float(), persistent=False)

    @property
    def T(self) -> int:
        return self.config.timesteps

    def _abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        a = self.alpha_bar.to(like.device)[t]
        return a.view(-1, *([1] * (like.dim() - 1)))  # broadcast over feature dims

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise; t (B,) integer."""
        a = self._abar(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def predict_x0(self, x: torch.Tensor, eps: torch.Tensor, t: int, clip: float | None) -> torch.Tensor:
        """x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), optionally clamped to [-clip, clip]."""
        abar = self.alpha_bar[t].item()
        x0 = (x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
        return x0.clamp(-clip, clip) if clip is not None else x0

    @torch.no_grad()
    def ddpm_sample(self, eps_fn: EpsFn, shape: tuple[int, ...], *, clip: float | None = None,
                    generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        """Ancestral sampling through all T steps (posterior mean written through x0_hat)."""
        x = torch.randn(shape, generator=generator, device=device)
        for t in range(self.T - 1, -1, -1):
            tt = torch.full((shape[0],), t, dtype=torch.long, device=device)
            x0 = self.predict_x0(x, eps_fn(x, tt), t, clip)
            beta, abar = self.betas[t].item(), self.alpha_bar[t].item()
            abar_prev = self.alpha_bar[t - 1].item() if t > 0 else 1.0
            mean = (math.sqrt(abar_prev) * beta * x0 + math.sqrt(1 - beta) * (1 - abar_prev) * x) / (1 - abar)
            if t > 0:
                sigma = math.sqrt(beta * (1 - abar_prev) / (1 - abar))
                x = mean + sigma * torch.randn(shape, generator=generator, device=device)
            else:
                x = mean
        return x

    @torch.no_grad()
    def ddim_sample(self, eps_fn: EpsFn, shape: tuple[int, ...], *, steps: int = 50, eta: float = 0.0,
                    clip: float | None = None, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        """DDIM over ``steps`` evenly spaced timesteps (eta = 0: deterministic)."""
        if not 1 <= steps <= self.T:
            raise ValueError(f"DDIM steps must be in [1, {self.T}], got {steps}")
        ts = torch.linspace(self.T - 1, 0, steps).round().long().tolist()
        x = torch.randn(shape, generator=generator, device=device)
        for i, t in enumerate(ts):
            t_prev = ts[i + 1] if i + 1 < len(ts) else -1
            abar = self.alpha_bar[t].item()
            abar_prev = self.alpha_bar[t_prev].item() if t_prev >= 0 else 1.0
            eps = eps_fn(x, torch.full((shape[0],), t, dtype=torch.long, device=device))
            x0 = self.predict_x0(x, eps, t, clip)
            if clip is not None:  # the noise consistent with the clamped x0
                eps = (x - math.sqrt(abar) * x0) / math.sqrt(1 - abar)
            sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
            x = math.sqrt(abar_prev) * x0 + math.sqrt(max(1 - abar_prev - sigma**2, 0.0)) * eps
            if sigma > 0:
                x = x + sigma * torch.randn(shape, generator=generator, device=device)
        return x


def guided(eps_cond: EpsFn, eps_uncond: EpsFn, scale: float) -> EpsFn:
    """Classifier-free guidance: eps_u + scale (eps_c - eps_u); scale 1 = plain conditional."""
    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        u = eps_uncond(x, t)
        return u + scale * (eps_cond(x, t) - u)
    return fn


def cfg_drop(labels: torch.Tensor, p_uncond: float, null_class: int, training: bool) -> torch.Tensor:
    """Replace each label by ``null_class`` with probability ``p_uncond`` (training only)."""
    if not training or p_uncond <= 0:
        return labels
    drop = torch.rand(labels.shape, device=labels.device) < p_uncond
    return torch.where(drop, torch.full_like(labels, null_class), labels)


def sinusoidal(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(B,) timesteps -> (B, dim) [cos | sin] features at geometrically spaced frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([args.cos(), args.sin()], dim=-1)
    return F.pad(emb, (0, dim % 2))


@LAYERS.register("TimeEmbeddingLayer", aliases=("time_embedding",))
class TimeEmbeddingLayer(Layer):
    """Integer timesteps (B,) -> (B, d_model): sinusoidal features then Linear-SiLU-Linear."""

    class Config(LayerConfig):
        d_model: int = Field(gt=0, description="output width")
        d_freq: int = Field(64, ge=2, description="sinusoidal feature width before the MLP")
        max_period: float = Field(10000.0, gt=1, description="longest sinusoid period (as in transformer positions)")

        width_field: ClassVar[str | None] = None

        def output_width(self, in_width: int | None) -> int | None:
            return self.d_model

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.mlp = nn.Sequential(nn.Linear(config.d_freq, config.d_model), nn.SiLU(),
                                 nn.Linear(config.d_model, config.d_model))

    def forward(self, t: torch.Tensor, cache: Any = None) -> torch.Tensor:
        return self.mlp(sinusoidal(t, self.config.d_freq, self.config.max_period))
