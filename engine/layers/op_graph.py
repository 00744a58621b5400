"""OpGraphLayer: a layer written as a small dataflow program of tensor ops.

Attention (or any block) spelled out op by op, so a researcher can change one step
without writing a class::

    - type: OpGraphLayer
      d_model: 64
      params: {qkv: [192, 64], o: [64, 64]}          # named weights, shape (out, in)
      output: out
      ops:
        - {op: linear, in: x, out: qkv, weight: qkv}
        - {op: split, in: qkv, out: [q, k, v], sizes: [64, 64, 64]}
        - {op: heads, in: q, out: qh, n: 4}           # (B, T, C) -> (B, H, T, C/H)
        - {op: heads, in: k, out: kh, n: 4}
        - {op: heads, in: v, out: vh, n: 4}
        - {op: rope, in: qh, out: qr}                 # positions continue from the cache
        - {op: rope, in: kh, out: kr}
        - {op: kv_cache, in: [kr, vh], out: [ka, va]} # read+write the KV cache (identity in training)
        - {op: sdpa, in: [qr, ka, va], out: yh, causal: true}
        - {op: merge_heads, in: yh, out: y}
        - {op: linear, in: y, out: out, weight: o}

The input is the key ``x``. Ops (a closed set, ``OPS``): ``linear`` (weight, optional
bias param), ``split`` (sizes, last dim), ``heads`` (n), ``merge_heads``, ``rope``
(base), ``kv_cache``, ``sdpa`` (causal, window), ``add``, ``mul``, ``silu``, ``gelu``.
Every key is written once, read only after it is written; problems are reported at
``ops[i].<field>``. The math goes through ``caramba.kernels.ops``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from caramba.engine.layers.base import FieldError, Layer, LayerConfig
from caramba.engine.layers.cache import layer_cache_for
from caramba.engine.layers.registry import LAYERS
from caramba.engine.layers.rope import rope_tables
from caramba.kernels import ops as kops

#: op name -> (number of inputs, number of outputs; -1 = from 'sizes')
OPS: dict[str, tuple[int, int]] = {
    "linear": (1, 1), "split": (1, -1), "heads": (1, 1), "merge_heads": (1, 1), "rope": (1, 1),
    "kv_cache": (2, 2), "sdpa": (3, 1), "add": (2, 1), "mul": (2, 1), "silu": (1, 1), "gelu": (1, 1),
}


def _keys(v: Any) -> list[str]:
    return [v] if isinstance(v, str) else list(v) if isinstance(v, list) else []


@LAYERS.register("OpGraphLayer", aliases=("op_graph",))
class OpGraphLayer(Layer):
    """Runs ``ops`` over a dict of tensors starting from ``{"x": input}``."""

    class Config(LayerConfig):
        d_model: int = Field(gt=0, description="input width")
        d_out: int | None = Field(None, gt=0, description="output width (default d_model)")
        params: dict[str, list[int]] = Field(default_factory=dict, description="named weights: name -> shape")
        ops: list[dict[str, Any]] = Field(min_length=1, description="the program, in order")
        output: str = Field("out", description="key returned")

        width_field: ClassVar[str | None] = "d_model"

        def output_width(self, in_width: int | None) -> int | None:
            return self.d_out or self.d_model

        @model_validator(mode="after")
        def _program(self) -> OpGraphLayer.Config:
            written = {"x"}
            for i, op in enumerate(self.ops):
                name = op.get("op")
                if name not in OPS:
                    raise FieldError("ops", f"ops[{i}]: unknown op '{name}'", expected=" | ".join(OPS), found=str(name),
                                     fix="use one of the listed ops")
                n_in, n_out = OPS[name]
                ins, outs = _keys(op.get("in")), _keys(op.get("out"))
                if n_out == -1:
                    n_out = len(op.get("sizes") or [])
                if len(ins) != n_in or len(outs) != n_out or n_out == 0:
                    raise FieldError("ops", f"ops[{i}] ({name}) takes {n_in} input(s) and gives {n_out} output(s); "
                                     f"found in={ins}, out={outs}", fix="fix its 'in'/'out' lists")
                for k in ins:
                    if k not in written:
                        raise FieldError("ops", f"ops[{i}] ({name}) reads '{k}' before any op writes it",
                                         expected=f"one of {sorted(written)}", found=k, fix="reorder the ops")
                for k in outs:
                    if k in written:
                        raise FieldError("ops", f"ops[{i}] ({name}) writes '{k}' a second time", found=k,
                                         fix="give every value its own key")
                    written.add(k)
                for p in (op.get("weight"), op.get("bias")):
                    if p is not None and p not in self.params:
                        raise FieldError("ops", f"ops[{i}] uses param '{p}' that params does not declare",
                                         found=str(p), fix=f"add {p}: [out, in] to params")
            if self.output not in written:
                raise FieldError("output", f"no op writes '{self.output}'", found=self.output,
                                 fix="name the key of the last op")
            return self

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.weights = nn.ParameterDict({k: nn.Parameter(torch.empty(*shape)) for k, shape in config.params.items()})
        for p in self.weights.values():
            if not p.is_meta:
                if p.dim() >= 2:
                    nn.init.kaiming_uniform_(p, a=math.sqrt(5))
                else:
                    nn.init.zeros_(p)

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        env: dict[str, torch.Tensor] = {"x": x}
        lc = layer_cache_for(cache, self)
        start = lc.length if lc is not None else 0
        for op in self.config.ops:
            name, ins, outs = op["op"], [env[k] for k in _keys(op["in"])], _keys(op["out"])
            res = self._apply(name, op, ins, lc, start)
            for k, v in zip(outs, res if isinstance(res, (tuple, list)) else [res]):
                env[k] = v
        return env[self.config.output]

    def _apply(self, name: str, op: dict[str, Any], ins: list[torch.Tensor], lc: Any, start: int) -> Any:
        a = ins[0]
        if name == "linear":
            bias = self.weights[op["bias"]] if op.get("bias") else None
            return F.linear(a, self.weights[op["weight"]], bias)
        if name == "split":
            return torch.split(a, list(op["sizes"]), dim=-1)
        if name == "heads":
            B, T, C = a.shape
            return a.view(B, T, int(op["n"]), C // int(op["n"])).transpose(1, 2)  # (B, H, T, D)
        if name == "merge_heads":
            B, H, T, D = a.shape
            return a.transpose(1, 2).reshape(B, T, H * D)
        if name == "rope":
            cos, sin = rope_tables(start, a.shape[2], a.shape[3], float(op.get("base", 10000.0)), a.device)
            return kops.apply_rope(a, cos, sin)
        if name == "kv_cache":
            return (ins[0], ins[1]) if lc is None else lc.append(ins[0], ins[1])
        if name == "sdpa":
            return kops.attention(ins[0], ins[1], ins[2], causal=bool(op.get("causal", True)),
                                  window=op.get("window"))
        if name == "add":
            return ins[0] + ins[1]
        if name == "mul":
            return ins[0] * ins[1]
        return F.silu(a) if name == "silu" else F.gelu(a)
