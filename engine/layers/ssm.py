"""SSMLayer: a Mamba-style selective state-space block.

What it computes (Gu & Dao, "Mamba", 2023), for x (B, T, d_model)::

    x, z  = split(in_proj(x))                 # each (B, T, Di), Di = expand * d_model
    x     = silu(causal_depthwise_conv1d(x))  # kernel d_conv, left-padded
    dt, B, C = split(x_proj(x))               # (B, T, dt_rank), (B, T, N), (B, T, N)
    delta = softplus(dt_proj(dt))             # (B, T, Di): a per-token, per-channel step
    y     = selective_scan(x, delta, A=-exp(A_log), B, C, D)
    out   = out_proj(y * silu(z))             # (B, T, d_model)

The "selective" part is that delta, B and C depend on the token, so the recurrence can
choose what to remember. ``A_log`` starts at log(1..N) (S4D-real init) and ``dt_proj``'s
bias is the inverse softplus of a step drawn log-uniformly in [dt_min, dt_max].

How it runs (all paths give the same numbers):

* training, ``scan: auto``: :func:`caramba.kernels.ops.selective_scan` through the dispatch
  table — the Triton chunked scan (fwd + bwd, softplus, D skip and silu(z) gate fused) on
  CUDA, the exact loop-with-hand-written-backward PyTorch scan on CPU;
* ``scan: sequential``: the definition (:func:`caramba.kernels.scan_ref.selective_scan_sequential`),
  an autograd-recorded loop, for debugging;
* ``scan: parallel``: the chunked associative (Hillis–Steele) scan
  (:func:`caramba.kernels.scan_parallel.selective_scan_parallel`), log-depth inside each
  chunk of ``scan_chunk`` tokens, state carried across chunks;
* prefill + decode: pass an :class:`SSMState` as ``cache``; the layer reads and updates
  the convolution tail and the recurrent state, so feeding tokens one at a time (or in
  pieces) reproduces the full-sequence output.

Manifest::

    - type: SSMLayer
      d_model: 128
      d_state: 16
      d_conv: 4
      expand: 2
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import nn

from caramba.engine.layers.base import FieldError, Layer, LayerConfig
from caramba.engine.layers.registry import LAYERS
from caramba.kernels import ops
from caramba.kernels.scan_parallel import selective_scan_parallel
from caramba.kernels.scan_ref import selective_scan_sequential


class SSMConfig(LayerConfig):
    """Configuration of :class:`SSMLayer` (defaults follow the Mamba reference code)."""

    width_field: ClassVar[str | None] = "d_model"

    d_model: int = Field(gt=0, description="input and output width")
    d_state: int = Field(16, gt=0, description="state size N per channel (16 is Mamba's default)")
    d_conv: int = Field(4, gt=0, description="depthwise causal conv kernel width (4: short local mixing)")
    expand: int = Field(2, gt=0, description="inner width Di = expand * d_model (2 as in Mamba)")
    dt_rank: int | Literal["auto"] = Field("auto", description="rank of the delta projection; auto = ceil(d_model / 16)")
    dt_min: float = Field(0.001, gt=0, description="smallest initial step size")
    dt_max: float = Field(0.1, gt=0, description="largest initial step size")
    dt_init: Literal["random", "constant"] = Field("random", description="dt_proj weight init: uniform or constant")
    dt_scale: float = Field(1.0, gt=0, description="scale of the dt_proj weight init")
    dt_init_floor: float = Field(1e-4, gt=0, description="lower clamp of the initial step size")
    conv_bias: bool = Field(True, description="bias in the depthwise conv")
    bias: bool = Field(False, description="bias in in_proj / out_proj (Mamba uses none)")
    scan: Literal["auto", "sequential", "parallel"] = Field(
        "auto", description="auto: the dispatched kernel (Triton on CUDA, fused PyTorch on CPU); "
                            "sequential: the autograd reference loop (slow, for debugging); "
                            "parallel: chunked associative scan (log depth per chunk)")
    scan_chunk: int = Field(64, gt=0, description="tokens per chunk of scan: parallel")

    @field_validator("dt_rank")
    @classmethod
    def _rank(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v <= 0:
            raise ValueError("dt_rank must be a positive integer or 'auto'")
        return v

    @model_validator(mode="after")
    def _dt_range(self) -> SSMConfig:
        if self.dt_min > self.dt_max:
            raise FieldError("dt_min", f"dt_min ({self.dt_min}) must be <= dt_max ({self.dt_max})",
                             expected=f"<= {self.dt_max}", found=str(self.dt_min), fix="swap dt_min and dt_max")
        return self

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def rank(self) -> int:
        return math.ceil(self.d_model / 16) if self.dt_rank == "auto" else int(self.dt_rank)


@dataclass
class SSMState:
    """Recurrent state of one SSMLayer for prefill/decode.

    ``conv``: the last ``d_conv - 1`` inner inputs (B, Di, d_conv - 1); ``ssm``: the
    scan state (B, Di, N); ``length``: tokens consumed. Create an empty one with
    ``SSMState()``; the layer fills it on first use.
    """

    conv: torch.Tensor | None = None
    ssm: torch.Tensor | None = None
    length: int = 0


@LAYERS.register("SSMLayer", aliases=("ssm", "mamba"))
class SSMLayer(Layer):
    """Selective SSM block; ``forward(x, cache=None)`` with x (B, T, d_model)."""

    Config = SSMConfig

    def __init__(self, config: SSMConfig) -> None:
        super().__init__(config)
        c = config
        di, n, r = c.d_inner, c.d_state, c.rank
        self.in_proj = nn.Linear(c.d_model, 2 * di, bias=c.bias)
        self.conv1d = nn.Conv1d(di, di, c.d_conv, groups=di, padding=0, bias=c.conv_bias)
        self.x_proj = nn.Linear(di, r + 2 * n, bias=False)
        self.dt_proj = nn.Linear(r, di, bias=True)
        self.A_log = nn.Parameter(torch.empty(di, n))
        self.D = nn.Parameter(torch.empty(di))
        self.out_proj = nn.Linear(di, c.d_model, bias=c.bias)
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self) -> None:
        """Mamba's initialisation of A, D and the delta projection."""
        c = self.config
        if self.A_log.is_meta:
            return
        self.A_log.copy_(torch.log(torch.arange(1, c.d_state + 1, dtype=torch.float32)).expand(c.d_inner, -1))
        self.D.fill_(1.0)
        std = c.rank ** -0.5 * c.dt_scale
        if c.dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, std)
        else:
            nn.init.uniform_(self.dt_proj.weight, -std, std)
        dt = torch.exp(torch.rand(c.d_inner) * (math.log(c.dt_max) - math.log(c.dt_min)) + math.log(c.dt_min))
        dt = dt.clamp(min=c.dt_init_floor)
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        c = self.config
        if x.dim() != 3 or x.shape[-1] != c.d_model:
            raise ValueError(f"SSMLayer expects (B, T, {c.d_model}); got {tuple(x.shape)}")
        Bsz, T, _ = x.shape
        cache = self._state(cache)
        xz = self.in_proj(x)                                   # (B, T, 2Di)
        u, z = xz.chunk(2, dim=-1)
        u = u.transpose(1, 2)                                  # (B, Di, T)
        k = c.d_conv - 1
        if cache is not None and cache.conv is not None:
            tail = cache.conv.to(u.dtype)
        else:
            tail = u.new_zeros(Bsz, c.d_inner, k)
        u_ext = torch.cat([tail, u], dim=-1)                   # (B, Di, k + T)
        u = F.silu(self.conv1d(u_ext)).transpose(1, 2).contiguous()  # (B, T, Di), channels contiguous
        dbc = self.x_proj(u)
        dt, Bm, Cm = torch.split(dbc, [c.rank, c.d_state, c.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight)                 # (B, T, Di); bias + softplus in the scan
        A = -torch.exp(self.A_log.float())                     # (Di, N)
        state = cache.ssm if cache is not None else None
        scan = {"sequential": selective_scan_sequential, "auto": ops.selective_scan,
                "parallel": partial(selective_scan_parallel, chunk=c.scan_chunk)}[c.scan]
        y, h = scan(u, dt, A, Bm, Cm, self.D, z=z, delta_bias=self.dt_proj.bias, delta_softplus=True,
                    state=state, return_state=True)            # y = scan(...) * silu(z): (B, T, Di)
        if cache is not None:
            cache.conv = u_ext[..., u_ext.shape[-1] - k:].detach() if k > 0 else u_ext[..., :0].detach()
            cache.ssm = h.detach()
            cache.length += T
        return self.out_proj(y)

    def make_layer_cache(self) -> SSMState:
        """A fresh decode state (``KVCache.for_layer`` calls this for SSM layers)."""
        return SSMState()

    def _state(self, cache: Any) -> SSMState | None:
        if cache is None or isinstance(cache, SSMState):
            return cache
        if hasattr(cache, "for_layer"):
            state = cache.for_layer(self)
            if isinstance(state, SSMState):
                return state
        raise TypeError(f"SSMLayer needs an SSMState or a KVCache-like set (for_layer), got {type(cache).__name__}")

    def step(self, x_t: torch.Tensor, cache: SSMState) -> torch.Tensor:
        """One generation step: x_t (B, d_model) -> (B, d_model), updating ``cache``."""
        return self.forward(x_t[:, None, :], cache=cache)[:, 0]
