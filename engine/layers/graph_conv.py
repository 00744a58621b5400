"""GraphConvLayer: message passing over a dense adjacency matrix (GCN or GAT).

Inputs: node features ``x`` (N, d_in) or (B, N, d_in) and adjacency ``adj`` (N, N) or
(B, N, N) (nonzero = edge; values are edge weights for GCN).

* ``kind: gcn`` (Kipf & Welling, 2017)::

      A' = adj + I (add_self_loops);   D = diag(rowsum A')
      out = D^-1/2 A' D^-1/2 (x W) + b

* ``kind: gat`` (Veličković et al., 2018), per head h with projection W_h::

      e_ij  = LeakyReLU_0.2(a_src_h . W_h x_i + a_dst_h . W_h x_j)   for edges i<-j
      alpha = softmax_j(e_ij) over the neighbours of i (self loop included)
      out_i = sum_j alpha_ij W_h x_j       heads concatenated (concat) or averaged

``d_out`` is the total output width: with ``concat`` each head has d_out / heads
features. Dense adjacency keeps the layer simple and exact; it suits graphs up to a few
thousand nodes.

    - {id: gcn1, in: [x, adj], out: h, type: GraphConvLayer, d_in: 16, d_out: 32, kind: gcn}
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from caramba.engine.layers.base import FieldError, Layer, LayerConfig
from caramba.engine.layers.registry import LAYERS


def with_self_loops(adj: torch.Tensor) -> torch.Tensor:
    """adj with its diagonal set to 1 (existing self loops kept, not doubled)."""
    eye = torch.eye(adj.shape[-1], dtype=adj.dtype, device=adj.device)
    return adj * (1 - eye) + eye


@LAYERS.register("GraphConvLayer", aliases=("graph_conv",))
class GraphConvLayer(Layer):
    """``forward(x, adj) -> (…, N, d_out)``; see the module docstring."""

    class Config(LayerConfig):
        d_in: int = Field(gt=0, description="node feature width in")
        d_out: int = Field(gt=0, description="node feature width out (all heads together)")
        kind: Literal["gcn", "gat"] = Field("gcn", description="gcn: normalised propagation; gat: attention")
        heads: int = Field(1, gt=0, description="attention heads (gat)")
        concat: bool = Field(True, description="gat: concatenate heads (True) or average them")
        bias: bool = Field(True, description="learned output bias")
        add_self_loops: bool = Field(True, description="every node also receives its own message")
        dropout: float = Field(0.0, ge=0, lt=1, description="dropout on gat attention weights in training")
        negative_slope: float = Field(0.2, ge=0, description="LeakyReLU slope of gat scores (0.2 as in the paper)")

        width_field: ClassVar[str | None] = "d_in"

        def output_width(self, in_width: int | None) -> int | None:
            return self.d_out

        @model_validator(mode="after")
        def _heads(self) -> GraphConvLayer.Config:
            if self.kind == "gcn" and self.heads != 1:
                raise FieldError("heads", "heads applies to kind: gat only", found=str(self.heads),
                                 fix="drop heads or use kind: gat")
            if self.kind == "gat" and self.concat and self.d_out % self.heads:
                raise FieldError("d_out", f"with concat, d_out ({self.d_out}) must be divisible by heads "
                                 f"({self.heads})", expected=f"a multiple of {self.heads}", found=str(self.d_out),
                                 fix="change d_out or heads, or set concat: false")
            return self

        @property
        def head_dim(self) -> int:
            return self.d_out // self.heads if self.concat else self.d_out

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        c = config
        H = c.heads
        self.proj = nn.Linear(c.d_in, H * c.head_dim, bias=False)
        if c.kind == "gat":
            self.att_src = nn.Parameter(torch.empty(H, c.head_dim))
            self.att_dst = nn.Parameter(torch.empty(H, c.head_dim))
            if not self.att_src.is_meta:
                bound = math.sqrt(6.0 / (1 + c.head_dim))  # glorot for a (1, head_dim) vector
                nn.init.uniform_(self.att_src, -bound, bound)
                nn.init.uniform_(self.att_dst, -bound, bound)
        self.bias = nn.Parameter(torch.zeros(c.d_out)) if c.bias else None

    def forward(self, x: torch.Tensor, adj: torch.Tensor, cache: Any = None) -> torch.Tensor:
        c = self.config
        if adj.shape[-1] != x.shape[-2] or adj.shape[-2] != x.shape[-2]:
            raise ValueError(f"GraphConvLayer: adj {tuple(adj.shape)} does not match {x.shape[-2]} nodes")
        a = adj.to(x.dtype)
        if c.add_self_loops:
            a = with_self_loops(a)
        h = self.proj(x)                                                  # (…, N, H*dh)
        if c.kind == "gcn":
            deg = a.sum(-1)                                               # (…, N)
            inv = deg.clamp_min(1e-12).rsqrt() * (deg > 0)
            out = (inv[..., :, None] * a * inv[..., None, :]) @ h         # (…, N, d_out)
        else:
            out = self._gat(h, a)
        return out + self.bias if self.bias is not None else out

    def _gat(self, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        c = self.config
        H, dh = c.heads, c.head_dim
        hh = h.view(*h.shape[:-1], H, dh).transpose(-3, -2)               # (…, H, N, dh)
        src = (hh * self.att_src[:, None, :]).sum(-1)                     # (…, H, N) receiving node i
        dst = (hh * self.att_dst[:, None, :]).sum(-1)                     # (…, H, N) sending node j
        e = F.leaky_relu(src[..., :, None] + dst[..., None, :], c.negative_slope)  # (…, H, N, N)
        e = e.masked_fill((a == 0).unsqueeze(-3), float("-inf"))
        alpha = torch.softmax(e, dim=-1).nan_to_num(0.0)                  # isolated nodes: no messages
        alpha = F.dropout(alpha, c.dropout, self.training)
        out = alpha @ hh                                                  # (…, H, N, dh)
        if c.concat:
            return out.transpose(-3, -2).reshape(*h.shape[:-1], H * dh)
        return out.mean(-3)
