"""``GraphTopology``: a named-port DAG over a dict of tensors.

Where the other topologies pass one tensor along, a graph passes a *tensor dict*: each
node reads one or more keys and writes one or more keys::

    topology:
      type: GraphTopology
      inputs: {x: 4, adj: null}     # external keys (and widths when known); a list works too
      output: logits                # key returned when the graph is called with one tensor
      layers:                       # alias: nodes
        - {id: proj, in: x, out: h, type: LinearLayer, d_in: 4, d_out: 8}
        - {id: act,  in: h, out: h2, op: ReLU}
        - {id: gcn,  in: [h2, adj], out: z, type: GraphConvLayer, d_in: 8, d_out: 8, repeat: 2}
        - {id: head, in: z, out: logits, op: Linear, config: {in_features: 8, out_features: 3}}

A node is ``{id, in, out, type | op, config, repeat}``: ``type`` is a registered layer
or topology (its fields inline or under ``config``); ``op`` is a ``torch.nn`` class name
(``config`` = constructor kwargs, via ``TorchOpLayer``) or ``python:module:Symbol``
(only with ``allow_python_impl``). Several ``in`` keys are passed positionally; several
``out`` keys take the elements of a returned tuple. ``repeat: n`` chains n independent
copies (single in/out). Nodes may be listed in any order: they run in dependency order.

Checks (all reported, each at ``layers[i].<field>``): duplicate ids, a key written by
two nodes, reading a key nobody writes (unknown port), cycles (naming the nodes), and the
widths flowing along the edges.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from pydantic import Field, model_validator
from torch import nn

from caramba.engine.layers.registry import TOPOLOGIES
from caramba.engine.topology.base import ChildWidth, Report, Topology, TopologyConfig
from caramba.engine.topology.spec import _PythonModule

PORT_KEYS = ("id", "in", "out", "repeat")


def _names(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _lower_node(raw: Any) -> tuple[dict[str, Any], Any]:
    """Split a node into its ports and the child config that ``parse_node`` understands."""
    if not isinstance(raw, dict):
        return {}, raw
    ports = {k: raw[k] for k in PORT_KEYS if k in raw}
    body = {k: v for k, v in raw.items() if k not in PORT_KEYS}
    if "op" in body:
        op, cfg = body.pop("op"), body.pop("config", {}) or {}
        if isinstance(op, str) and op.startswith("python:"):
            return ports, {"impl": op, **cfg, **body}
        return ports, {"type": "TorchOpLayer", "op": op, "args": cfg, **body}
    if "config" in body and isinstance(body["config"], dict):
        cfg = body.pop("config")
        body = {**body, **cfg}
    return ports, body


@TOPOLOGIES.register("GraphTopology", aliases=("graph",))
class GraphTopology(Topology):
    """Runs nodes in dependency order over a tensor dict; see the module docstring."""

    class Config(TopologyConfig):
        inputs: list[str] | dict[str, int | None] = Field(
            default_factory=lambda: ["inputs"], description="external keys the graph reads (mapping: key → width)")
        output: str | None = Field(None, description="key returned for a single-tensor call; default: the "
                                   "first output of the last node in run order")
        ports: list[dict[str, Any]] = Field(default_factory=list, description="(filled from the nodes) id/in/out/repeat")

        @model_validator(mode="before")
        @classmethod
        def _lower(cls, raw: Any) -> Any:
            if not isinstance(raw, dict):
                return raw
            raw = dict(raw)
            if "nodes" in raw and "layers" not in raw:
                raw["layers"] = raw.pop("nodes")
            if isinstance(raw.get("layers"), list) and "ports" not in raw:
                lowered = [_lower_node(n) for n in raw["layers"]]
                raw["ports"] = [p for p, _ in lowered]
                raw["layers"] = [b for _, b in lowered]
            return raw

        def input_names(self) -> list[str]:
            return list(self.inputs)

    @classmethod
    def order(cls, config: Any, report: Report | None = None) -> list[int] | None:
        """Node indices in run order, or ``None`` after reporting the graph's problems."""
        ok = True

        def bad(field: tuple[str | int, ...], msg: str, **kw: Any) -> None:
            nonlocal ok
            ok = False
            if report is not None:
                report(field, msg, **kw)

        ids: dict[str, int] = {}
        writer: dict[str, int] = {k: -1 for k in config.input_names()}
        ins: list[list[str]] = []
        for i, p in enumerate(config.ports):
            nid = p.get("id")
            if not isinstance(nid, str) or not nid:
                bad(("layers", i, "id"), "node has no id", expected="a unique name", fix="add id: <name>")
            elif nid in ids:
                bad(("layers", i, "id"), f"duplicate node id '{nid}' (also layers[{ids[nid]}])", found=nid,
                    fix="give every node its own id")
            else:
                ids[nid] = i
            rd, wr = _names(p.get("in")), _names(p.get("out"))
            for key, names in (("in", rd), ("out", wr)):
                if names is None:
                    bad(("layers", i, key), f"node '{nid}': '{key}' must be a key name or a list of names",
                        found=repr(p.get(key))[:60], fix=f"write {key}: h or {key}: [h, adj]")
            rep = p.get("repeat", 1)
            if not isinstance(rep, int) or isinstance(rep, bool) or rep < 1:
                bad(("layers", i, "repeat"), f"node '{nid}': repeat must be an integer >= 1", found=repr(rep))
            elif rep > 1 and (len(rd or []) != 1 or len(wr or []) != 1):
                bad(("layers", i, "repeat"), f"node '{nid}': repeat needs exactly one in and one out key",
                    fix="drop repeat or use single in/out keys")
            for key in wr or []:
                if key in writer:
                    other = "a graph input" if writer[key] < 0 else f"node '{config.ports[writer[key]].get('id')}'"
                    bad(("layers", i, "out"), f"node '{nid}' writes '{key}', already written by {other}",
                        found=key, fix="give each output key one writer (keys are single-assignment)")
                else:
                    writer[key] = i
            ins.append(rd or [])
        for i, rd in enumerate(ins):
            for key in rd:
                if key not in writer:
                    known = sorted(writer)
                    bad(("layers", i, "in"), f"node '{config.ports[i].get('id')}' reads unknown key '{key}'",
                        expected=f"one of {known}", found=key,
                        fix="read a key that a node writes, or declare it in the graph's inputs")
        if not ok:
            return None
        # Kahn's algorithm over "reads a key written by" edges
        deps = [{writer[k] for k in rd if writer[k] >= 0} for rd in ins]
        done: list[int] = []
        ready = [i for i, d in enumerate(deps) if not d]
        remaining = {i: set(d) for i, d in enumerate(deps) if d}
        while ready:
            i = ready.pop(0)
            done.append(i)
            for j in list(remaining):
                remaining[j].discard(i)
                if not remaining[j]:
                    del remaining[j]
                    ready.append(j)
        if remaining:
            cyc = sorted(remaining)
            names = ", ".join(str(config.ports[j].get("id")) for j in cyc)
            bad(("layers", cyc[0], "in"), f"the graph has a cycle through nodes: {names}",
                fix="a GraphTopology is acyclic; use CyclicTopology or RecurrentTopology for loops")
            return None
        return done

    @classmethod
    def infer_width(cls, config: Any, in_width: int | None, child: ChildWidth, report: Report) -> int | None:
        order = cls.order(config, report)
        if order is None:
            return None
        declared = config.inputs if isinstance(config.inputs, dict) else {}
        width: dict[str, int | None] = {k: declared.get(k) for k in config.input_names()}
        if not declared and len(width) == 1:
            width[next(iter(width))] = in_width
        for i in order:
            p = config.ports[i]
            rd, wr = _names(p["in"]) or [], _names(p["out"]) or []
            w = width.get(rd[0]) if len(rd) == 1 else None
            for _ in range(p.get("repeat", 1)):
                w = child(i, w if len(rd) == 1 else (width.get(rd[0]) if rd else None))
            for key in wr:
                width[key] = w if len(wr) == 1 else None
        return width.get(cls._output_key(config, order))

    @staticmethod
    def _output_key(config: Any, order: list[int]) -> str:
        if config.output is not None:
            return config.output
        return (_names(config.ports[order[-1]]["out"]) or [""])[0]

    @classmethod
    def build(cls, config: Any, make_children: Callable[[], list[nn.Module]], in_width: int | None,
              child_widths: list[int | None]) -> GraphTopology:
        reps = [p.get("repeat", 1) for p in config.ports]
        copies = [make_children() for _ in range(max(reps))]
        modules = [nn.ModuleList([copies[r][i] for r in range(reps[i])]) for i in range(len(reps))]
        return cls(config, modules)  # type: ignore[arg-type]

    def __init__(self, config: Any, children: list[nn.Module]) -> None:
        super().__init__(config, children)
        order = self.order(config)
        if order is None:
            raise ValueError("GraphTopology built from an invalid graph; check it with infer_width first")
        self.run_order = order
        self.output_key = self._output_key(config, order)

    def forward(self, x: torch.Tensor | dict[str, torch.Tensor], cache: Any = None) -> Any:
        single = not isinstance(x, dict)
        names = self.config.input_names()
        td: dict[str, Any] = {names[0]: x} if single else dict(x)
        for key in names:
            if key not in td:
                raise KeyError(f"GraphTopology input '{key}' missing; got keys {sorted(td)}")
        for i in self.run_order:
            p = self.config.ports[i]
            rd, wr = _names(p["in"]) or [], _names(p["out"]) or []
            args = [td[k] for k in rd]
            for module in self.layers[i]:
                if isinstance(module, _PythonModule):  # a python: impl takes all inputs itself
                    out = module.inner(*args)
                else:
                    out = module(*args, cache=cache) if _takes_cache(module) else module(*args)
                args = [out]
            if len(wr) == 1:
                td[wr[0]] = out
            else:
                if not isinstance(out, (tuple, list)) or len(out) != len(wr):
                    raise ValueError(f"node '{p['id']}' declares outputs {wr} but returned "
                                     f"{type(out).__name__} of length {len(out) if isinstance(out, (tuple, list)) else 1}")
                td.update(zip(wr, out))
        return td[self.output_key] if single else td

    def extra_repr(self) -> str:
        return f"inputs={self.config.input_names()}, output={self.output_key}, order={self.run_order}"


def _takes_cache(module: nn.Module) -> bool:
    import inspect

    return "cache" in inspect.signature(module.forward).parameters
