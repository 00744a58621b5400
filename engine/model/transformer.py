"""``TransformerModel``: token embedder → topology → logits.

Config::

    model:
      type: TransformerModel
      embedder: {type: token, vocab_size: 50257, d_model: 512}
      topology: {type: StackedTopology, layers: [... blocks ..., norm, LinearLayer head]}
      tied_embeddings: true      # head weight = embedding matrix

The topology's output is the logits, so it must end at width ``vocab_size`` (usually a
``LinearLayer`` head). With ``tied_embeddings`` that last layer must be a
``LinearLayer`` of shape ``d_model → vocab_size`` and its weight becomes the embedding
matrix (one parameter, counted once).

Model protocol (every MODELS entry): a pydantic ``Config``; ``check(config, path,
problems, *, allow_python_impl) -> plan | None`` parses and width-checks the parts,
appending problems; ``from_plan(plan)`` builds; ``forward(input_ids, cache=None)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from pydantic import Field
from torch import nn

from caramba.engine.errors import ConfigProblem
from caramba.engine.layers.base import NodeConfig
from caramba.engine.layers.linear import LinearLayer
from caramba.engine.layers.problems import Path
from caramba.engine.layers.registry import EMBEDDERS, MODELS
from caramba.engine.model.typed import parse_typed
from caramba.engine.topology.base import Topology
from caramba.engine.topology.spec import NodeSpec, build_node, infer_widths, parse_node


@dataclass
class TransformerPlan:
    """A checked TransformerModel config, ready to build."""

    config: Any
    embedder_cls: Any
    embedder_config: Any
    topology: NodeSpec


def last_leaf_module(module: nn.Module) -> nn.Module:
    """The module that produces a topology's output last (the head)."""
    while isinstance(module, Topology) and len(module.layers):
        module = module.layers[-1]
    return module


@MODELS.register("TransformerModel", aliases=("transformer",))
class TransformerModel(nn.Module):
    """``logits = topology(embedder(input_ids))``; ``(B, T) -> (B, T, vocab_size)``."""

    class Config(NodeConfig):
        embedder: dict[str, Any] = Field(description="token embedder: {type: token, vocab_size, d_model}")
        topology: dict[str, Any] = Field(description="the layer tree; its output width must be vocab_size")
        tied_embeddings: bool = Field(False, description="share the embedding matrix with the final LinearLayer head")

    @classmethod
    def check(cls, config: Config, path: Path, problems: list[ConfigProblem], *,
              allow_python_impl: bool = False) -> TransformerPlan | None:
        emb = parse_typed(EMBEDDERS, config.embedder, path + ("embedder",), problems)
        topo = parse_node(config.topology, path + ("topology",), problems, allow_python_impl=allow_python_impl)
        if topo is None:
            return None
        # an invalid embedder still tells us its declared width, so the topology is checked
        declared = config.embedder.get("d_model")
        d_model = emb[1].d_model if emb else (declared if isinstance(declared, int) and declared > 0 else None)
        out = infer_widths(topo, d_model, problems)
        if emb is None:
            return None
        vocab = emb[1].vocab_size
        head = topo.last_leaf()
        head_path = head.path + ("d_out",) if hasattr(head.config, "d_out") else topo.path
        if out is not None and out != vocab:
            problems.append(ConfigProblem(head_path, f"the model emits width {out} but the embedder's vocab_size "
                                          f"is {vocab}; the last layer must produce one logit per token",
                                          expected=str(vocab), found=str(out),
                                          fix=f"end the topology with a LinearLayer with d_out: {vocab}"))
        if config.tied_embeddings:
            cls._check_tied(head, d_model, vocab, path, problems)
        return TransformerPlan(config, emb[0], emb[1], topo)

    @staticmethod
    def _check_tied(head: NodeSpec, d_model: int | None, vocab: int, path: Path,
                    problems: list[ConfigProblem]) -> None:
        if head.cls is not LinearLayer:
            problems.append(ConfigProblem(path + ("tied_embeddings",), f"tied_embeddings needs the topology to end "
                                          f"in a LinearLayer head, it ends in {head.type}",
                                          expected="LinearLayer", found=head.type,
                                          fix=f"append a LinearLayer (d_in: {d_model}, d_out: {vocab}) or set "
                                          "tied_embeddings: false"))
            return
        shape, want = (head.config.d_out, head.config.d_in), (vocab, d_model)
        if shape != want:
            problems.append(ConfigProblem(path + ("tied_embeddings",), f"tied_embeddings: head weight {shape} "
                                          f"differs from the embedding matrix {want}", expected=str(want),
                                          found=str(shape), fix=f"make the head d_in: {d_model}, d_out: {vocab}"))

    @classmethod
    def from_plan(cls, plan: TransformerPlan) -> TransformerModel:
        return cls(plan.config, plan.embedder_cls(plan.embedder_config), build_node(plan.topology))

    def __init__(self, config: Config, embedder: nn.Module, topology: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.embedder = embedder
        self.topology = topology
        if config.tied_embeddings:
            self.tie_weights()

    def tie_weights(self) -> None:
        """Point the head's weight at the embedding matrix (call again after ``to_empty``)."""
        head = last_leaf_module(self.topology)
        head.linear.weight = self.embedder.token.weight  # (vocab, d_model), one Parameter

    def forward(self, input_ids: torch.Tensor, cache: Any = None) -> torch.Tensor:
        start = cache.length if cache is not None else 0
        x = self.embedder(input_ids, start=start)  # (B, T, C)
        return self.topology(x, cache=cache)  # (B, T, V)
