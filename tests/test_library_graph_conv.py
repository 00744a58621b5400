"""GraphConvLayer (gcn, gat) against loop references; graph datasets; system.gcn / system.graph."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from caramba.engine.data.base import DataContext, DataError
from caramba.engine.data.registry import DATASETS
from caramba.engine.layers.graph_conv import GraphConvLayer
from caramba.engine.systems.build import build_system
from caramba.engine.train.registry import OBJECTIVES
from caramba.workspace import Workspace
from caramba.tests.library_fixtures import one_thread  # noqa: F401, E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _graph(n: int = 7, f: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(n, n, generator=g) < 0.4).float()
    a = torch.triu(a, 1)
    a = a + a.T
    a[3] = 0  # an isolated node
    a[:, 3] = 0
    return torch.randn(n, f, generator=g), a


def test_gcn_matches_normalised_propagation_loop() -> None:
    torch.manual_seed(0)
    layer = GraphConvLayer(GraphConvLayer.Config(d_in=5, d_out=4))
    x, a = _graph()
    n = a.shape[0]
    ahat = a + torch.eye(n)
    deg = ahat.sum(1)
    h = x @ layer.proj.weight.T
    expected = torch.zeros(n, 4)
    for i in range(n):
        for j in range(n):
            if ahat[i, j]:
                expected[i] += ahat[i, j] / math.sqrt(deg[i] * deg[j]) * h[j]
    torch.testing.assert_close(layer(x, a), expected + layer.bias, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("concat", [True, False])
def test_gat_matches_per_edge_softmax_loop(concat: bool) -> None:
    torch.manual_seed(0)
    layer = GraphConvLayer(GraphConvLayer.Config(d_in=5, d_out=6, kind="gat", heads=2, concat=concat, bias=False))
    x, a = _graph()
    n, H, dh = a.shape[0], 2, layer.config.head_dim
    h = (x @ layer.proj.weight.T).view(n, H, dh)
    ahat = a + torch.eye(n)
    outs = torch.zeros(n, H, dh)
    for hd in range(H):
        for i in range(n):
            nbrs = [j for j in range(n) if ahat[i, j]]
            e = torch.stack([torch.nn.functional.leaky_relu(layer.att_src[hd] @ h[i, hd] + layer.att_dst[hd] @ h[j, hd],
                                                            0.2) for j in nbrs])
            w = torch.softmax(e, 0)
            outs[i, hd] = sum(w[k] * h[j, hd] for k, j in enumerate(nbrs))
    expected = outs.reshape(n, H * dh) if concat else outs.mean(1)
    torch.testing.assert_close(layer(x, a), expected, atol=1e-5, rtol=1e-5)


def test_batched_shape_and_gradients() -> None:
    layer = GraphConvLayer(GraphConvLayer.Config(d_in=5, d_out=4, kind="gat", heads=2))
    x, a = _graph()
    xb = torch.stack([x, x * 2]).requires_grad_(True)
    out = layer(xb, torch.stack([a, a]))
    assert out.shape == (2, 7, 4)
    out.sum().backward()
    assert xb.grad.abs().sum() > 0 and layer.att_src.grad.abs().sum() > 0


def _ctx(tmp_path) -> DataContext:
    return DataContext(Workspace(tmp_path), tmp_path, seed=3)


def test_graph_datasets_and_masks(tmp_path) -> None:
    sbm = DATASETS.get("dataset.graph_sbm")({"n_nodes": 60, "n_blocks": 3}).build(_ctx(tmp_path))
    tr, va = sbm.train[0], sbm.val[0]
    assert tr["x"].shape == (60, 16) and tr["adj"].shape == (60, 60) and torch.equal(tr["adj"], tr["adj"].T)
    assert not (tr["mask"] & va["mask"]).any() and (tr["mask"] | va["mask"]).all()
    karate = DATASETS.get("dataset.karate_club")({}).build(_ctx(tmp_path))
    assert karate.info["n_nodes"] == 34 and karate.info["n_classes"] == 2 and karate.info["n_edges"] == 156
    np.save(tmp_path / "x.npy", np.ones((4, 2), np.float32))
    np.save(tmp_path / "adj.npy", np.zeros((4, 4), np.float32))
    np.save(tmp_path / "y.npy", np.array([0, 1, 0, 1]))
    ds = DATASETS.get("dataset.graph_npy")({"x_path": "x.npy", "adj_path": "adj.npy", "labels_path": "y.npy",
                                            "add_self_loops": True}).build(_ctx(tmp_path))
    assert torch.equal(ds.train[0]["adj"], torch.eye(4))
    np.save(tmp_path / "adj.npy", np.zeros((3, 4), np.float32))
    with pytest.raises(DataError, match=r"adjacency has shape \(3, 4\), expected \(4, 4\)"):
        DATASETS.get("dataset.graph_npy")({"x_path": "x.npy", "adj_path": "adj.npy",
                                           "labels_path": "y.npy"}).build(_ctx(tmp_path))


@pytest.mark.parametrize("kind", ["gcn", "gat"])
def test_system_gcn_learns_the_sbm(tmp_path, kind: str) -> None:
    torch.manual_seed(0)
    data = DATASETS.get("dataset.graph_sbm")({"n_nodes": 90, "feature_signal": 0.4}).build(_ctx(tmp_path))
    system = build_system({"ref": "system.gcn", "config": {"d_in": 16, "hidden": [16], "n_classes": 3, "kind": kind,
                                                             "heads": 2 if kind == "gat" else 1}})
    objective = OBJECTIVES.get("objective.node_classification_ce")({})
    batch = {k: v[None] for k, v in data.train[0].items()}
    val = {k: v[None] for k, v in data.val[0].items()}
    opt = torch.optim.Adam(system.parameters(), lr=0.02, weight_decay=5e-4)
    for _ in range(60):
        res = objective(system(batch), batch, system)
        opt.zero_grad()
        res.loss.backward()
        opt.step()
    system.eval()
    with torch.no_grad():
        acc = objective(system(val), val, system).metrics["accuracy"]
    assert float(acc) > 0.8


def test_system_graph_checks_outputs(tmp_path) -> None:
    from caramba.engine.layers.problems import ConfigError

    spec = {"ref": "system.graph", "config": {"topology": {"type": "GraphTopology", "inputs": {"x": 5, "adj": None},
            "nodes": [{"id": "c", "in": ["x", "adj"], "out": "logits", "type": "GraphConvLayer", "d_in": 5,
                       "d_out": 2}]}}}
    system = build_system(spec)
    x, a = _graph()
    assert system({"x": x, "adj": a})["logits"].shape == (7, 2)
    spec["config"]["outputs"] = {"logits": "nope"}
    with pytest.raises(ConfigError, match="no node writes 'nope'"):
        build_system(spec)
