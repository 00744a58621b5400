"""MoELayer: a sparse mixture of SwiGLU experts with top-k routing.

For each token x (d_model) a linear router produces ``num_experts`` logits; the token
goes to its ``top_k`` best experts and the layer returns the gate-weighted sum of their
outputs::

    p      = softmax(router(x) / temperature)        # (E,) routing probabilities
    top    = topk(p, k)                              # chosen experts and their probs
    gates  = top.probs / sum(top.probs)              # renormalised (normalize_topk)
    y      = sum_j gates_j * SwiGLU_{e_j}(x)         # SwiGLU_e(x) = W2_e (silu(W1_e x) * W3_e x)

Only chosen experts run on a token (tokens are gathered per expert), so compute grows
with ``top_k`` not ``num_experts``.

Load balancing: without pressure the router collapses onto a few experts. The layer
computes an auxiliary loss on the mean routing distribution P over the batch
(``aux_loss.type``): ``kl`` = KL(uniform || P); ``mse`` = E * sum_e (P_e - 1/E)^2;
``switch`` = E * sum_e f_e P_e with f_e the fraction of token slots sent to e (Switch
Transformer). It is multiplied by ``aux_loss.weight`` and exposed through
:meth:`MoELayer.aux_losses` (``{"moe_load_balance": tensor}``); the system collects
these from every layer and the objective adds them to the task loss, logging them
separately.

The router temperature follows a linear schedule from ``temperature`` to
``temperature_end`` over ``temperature_steps`` training forwards (counted by the layer
in a buffer, so it survives checkpoints); ``temperature_steps: 0`` keeps it constant.

Manifest::

    - type: MoELayer
      d_model: 128
      d_ff: 256
      num_experts: 8
      top_k: 2
      aux_loss: {type: kl, weight: 0.01}
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from caramba.engine.layers.base import FieldError, Layer, LayerConfig
from caramba.engine.layers.registry import LAYERS
from caramba.kernels import ops


class MoEAuxLoss(BaseModel):
    """Load-balancing loss settings."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["kl", "mse", "switch"] = Field("kl", description="form of the balance penalty")
    weight: float = Field(0.01, ge=0, description="multiplier on the penalty (0.01 as in Switch Transformer)")


class MoEConfig(LayerConfig):
    """Configuration of :class:`MoELayer`."""

    width_field: ClassVar[str | None] = "d_model"

    d_model: int = Field(gt=0, description="input and output width")
    d_ff: int = Field(gt=0, description="hidden width of each SwiGLU expert")
    num_experts: int = Field(8, ge=1, description="number of experts E")
    top_k: int = Field(2, ge=1, description="experts per token (2: the Mixtral/GShard choice)")
    bias: bool = Field(False, description="bias in the expert projections")
    normalize_topk: bool = Field(True, description="renormalise the chosen gates to sum to 1")
    aux_loss: MoEAuxLoss = Field(default_factory=MoEAuxLoss, description="load-balancing penalty")
    temperature: float = Field(1.0, gt=0, description="router softmax temperature at step 0")
    temperature_end: float | None = Field(None, gt=0, description="temperature after the schedule (default: constant)")
    temperature_steps: int = Field(0, ge=0, description="training forwards over which the temperature moves linearly")

    @model_validator(mode="after")
    def _k_fits(self) -> MoEConfig:
        if self.top_k > self.num_experts:
            raise FieldError("top_k", f"top_k ({self.top_k}) must be <= num_experts ({self.num_experts})",
                             expected=f"<= {self.num_experts}", found=str(self.top_k),
                             fix="lower top_k or add experts")
        return self


@LAYERS.register("MoELayer", aliases=("moe",))
class MoELayer(Layer):
    """Top-k routed mixture of SwiGLU experts; ``forward(x)`` keeps x's shape (..., d_model)."""

    Config = MoEConfig

    def __init__(self, config: MoEConfig) -> None:
        super().__init__(config)
        c = config
        E, d, f = c.num_experts, c.d_model, c.d_ff
        self.router = nn.Linear(d, E, bias=False)
        self.w_gate = nn.Parameter(torch.empty(E, d, f))
        self.w_up = nn.Parameter(torch.empty(E, d, f))
        self.w_down = nn.Parameter(torch.empty(E, f, d))
        if c.bias:
            self.b_gate = nn.Parameter(torch.zeros(E, f))
            self.b_up = nn.Parameter(torch.zeros(E, f))
            self.b_down = nn.Parameter(torch.zeros(E, d))
        else:
            self.register_parameter("b_gate", None)
            self.register_parameter("b_up", None)
            self.register_parameter("b_down", None)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self._aux: torch.Tensor | None = None
        self.last_load: torch.Tensor | None = None  # fraction of slots per expert, for logging
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for w, fan_in in ((self.w_gate, self.config.d_model), (self.w_up, self.config.d_model), (self.w_down, self.config.d_ff)):
            if not w.is_meta:
                nn.init.uniform_(w, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))

    def current_temperature(self) -> float:
        c = self.config
        if c.temperature_end is None or c.temperature_steps == 0:
            return c.temperature
        frac = min(1.0, float(self.step.item()) / c.temperature_steps)
        return c.temperature + frac * (c.temperature_end - c.temperature)

    def expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """Expert ``e`` applied to x (n, d_model) -> (n, d_model)."""
        gate, up = x @ self.w_gate[e], x @ self.w_up[e]
        if self.b_gate is not None:
            gate, up = gate + self.b_gate[e], up + self.b_up[e]
        y = ops.swiglu(gate, up) @ self.w_down[e]
        return y + self.b_down[e] if self.b_down is not None else y

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        c = self.config
        if x.shape[-1] != c.d_model:
            raise ValueError(f"MoELayer expects (..., {c.d_model}); got {tuple(x.shape)}")
        shape = x.shape
        flat = x.reshape(-1, c.d_model)                                  # (n, d)
        logits = self.router(flat).float() / self.current_temperature()  # (n, E)
        probs = logits.softmax(-1)
        top_p, top_i = probs.topk(c.top_k, dim=-1)                       # (n, k)
        gates = top_p / top_p.sum(-1, keepdim=True) if c.normalize_topk else top_p
        out = torch.zeros_like(flat)
        for e in range(c.num_experts):
            tok, slot = (top_i == e).nonzero(as_tuple=True)
            if tok.numel() == 0:
                continue
            y = self.expert(e, flat[tok]) * gates[tok, slot, None].to(flat.dtype)
            out.index_add_(0, tok, y)
        load = torch.bincount(top_i.flatten(), minlength=c.num_experts).float() / top_i.numel()
        self.last_load = load.detach()
        self._aux = self._balance_loss(probs.mean(0), load) * c.aux_loss.weight
        if self.training:
            self.step += 1
        return out.reshape(shape)

    def _balance_loss(self, mean_p: torch.Tensor, load: torch.Tensor) -> torch.Tensor:
        E = self.config.num_experts
        kind = self.config.aux_loss.type
        if kind == "kl":
            return (math.log(1.0 / E) - mean_p.clamp_min(1e-9).log()).mean()
        if kind == "mse":
            return E * (mean_p - 1.0 / E).square().sum()
        return E * (load * mean_p).sum()

    def aux_losses(self) -> dict[str, torch.Tensor]:
        """The weighted load-balancing loss of the last forward (empty before any forward)."""
        return {} if self._aux is None else {"moe_load_balance": self._aux}
