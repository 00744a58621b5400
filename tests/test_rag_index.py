"""DeepLake retrieval end to end on local disk: index → search → incremental re-index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caramba.engine.errors import CarambaError
from caramba.memory.rag_index import RagIndex
from caramba.memory.rag_search import search
from caramba.workspace import Workspace

CODE_A = '''"""Norm layers."""
import math


def rms_norm(x, weight, eps=1e-6):
    """Root-mean-square normalisation of the last dimension."""
    return x * weight / math.sqrt(sum(v * v for v in x) / len(x) + eps)


class RotaryEmbedding:
    """Rotary position embedding with a configurable theta."""

    theta = 10000.0

    def rotate_half(self, x):
        return x
'''

CODE_B = '''def download_dataset(url, folder):
    """Fetch an archive over HTTP and unpack it into folder."""
    return folder
'''

PAPER = """# Attention is all you need

Scaled dot-product attention divides logits by the square root of the head dimension.

## KV cache quantisation

Storing keys and values in int8 halves decode memory with little perplexity cost.
"""


def _workspace(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "norms.py").write_text(CODE_A)
    (root / "src" / "pkg" / "data.py").write_text(CODE_B)
    (root / "src" / "broken.py").write_text("def oops(:\n    pass\n")
    (root / "papers").mkdir()
    (root / "papers" / "attention.md").write_text(PAPER)
    run = root / "runs" / "rope-ablation" / "train" / "20261120-101010-abcd"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"manifest": "rope-ablation", "target": "train",
                                              "run_id": run.name, "created": "2026-11-20T10:10:10",
                                              "state": "completed"}))
    (run / "results.json").write_text(json.dumps({"runs": {"theta500k": {"val_loss": 2.91, "ppl": 18.4}},
                                                  "verdicts": [{"name": "val_loss < baseline", "verdict": "pass"}]}))
    return Workspace(root)


def test_index_search_reindex_modify_delete(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    idx = RagIndex(ws)
    rep = idx.index([ws.root / "src", ws.root / "papers", ws.root / "runs"])
    assert rep.sources_indexed == 5 and rep.chunks_embedded == rep.chunks_added == rep.total_chunks
    assert any("broken.py" in w for w in rep.warnings)  # unparseable file: indexed as text, reported

    top = search(idx, "root mean square normalisation", k=3)
    assert (top[0].path, top[0].title, top[0].kind) == ("src/pkg/norms.py", "rms_norm", "code")
    assert (top[0].start, top[0].end) == (5, 7)
    assert search(idx, "rotate_half", k=1, mode="keyword")[0].title == "RotaryEmbedding.rotate_half"
    assert search(idx, "int8 keys values decode memory", k=1, kind="paper")[0].title == "KV cache quantisation"
    run_hit = search(idx, "theta500k val_loss", k=1, kind="run")[0]
    assert run_hit.path.startswith("runs/rope-ablation/train/") and "2.91" in run_hit.text
    assert {h.path for h in search(idx, "dataset", k=10, path_prefix="src/pkg/")} <= {"src/pkg/norms.py", "src/pkg/data.py"}
    assert all(h.kind == "paper" for h in search(idx, "attention", k=10, kind="paper"))

    # unchanged → nothing re-embedded
    rep2 = RagIndex(ws).index([ws.root / "src", ws.root / "papers", ws.root / "runs"])
    assert (rep2.sources_unchanged, rep2.chunks_embedded, rep2.total_chunks) == (5, 0, rep.total_chunks)

    # modify one function: only that chunk is embedded, the file's other chunks reuse vectors
    (ws.root / "src" / "pkg" / "norms.py").write_text(
        CODE_A.replace("Root-mean-square normalisation", "Layer scale with learned gamma"))
    idx3 = RagIndex(ws)
    rep3 = idx3.index([ws.root / "src"])
    assert rep3.sources_indexed == 1 and rep3.chunks_embedded == 1 and rep3.chunks_reused >= 2
    assert rep3.total_chunks == rep.total_chunks
    assert search(idx3, "learned gamma layer scale", k=1)[0].title == "rms_norm"
    assert "Root-mean-square" not in " ".join(h.text for h in search(idx3, "normalisation", k=10, mode="keyword"))

    # delete a source: its rows go away
    (ws.root / "src" / "pkg" / "data.py").unlink()
    rep4 = idx3.index([ws.root / "src"])
    assert rep4.sources_removed == 1 and rep4.total_chunks == rep.total_chunks - 1
    assert all(h.path != "src/pkg/data.py" for h in search(idx3, "download archive HTTP", k=10))


def test_pdf_papers_are_indexed(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ws = _workspace(tmp_path)
    fig = plt.figure()
    fig.text(0.1, 0.5, "Mixture of experts routing with load balancing loss")
    fig.savefig(ws.root / "papers" / "moe.pdf")
    plt.close(fig)
    idx = RagIndex(ws)
    idx.index([ws.root / "papers"])
    hit = search(idx, "experts routing load balancing", k=1)[0]
    assert (hit.path, hit.kind, hit.start) == ("papers/moe.pdf", "paper", 1)


def test_clear_errors(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    idx = RagIndex(ws)
    with pytest.raises(CarambaError, match="no retrieval index") as e:
        search(idx, "anything")
    assert "caramba rag index" in (e.value.fix or "")
    with pytest.raises(CarambaError, match="does not exist"):
        idx.index([ws.root / "nope"])
    idx.index([ws.root / "papers"])
    with pytest.raises(CarambaError, match="unknown kind"):
        search(idx, "attention", kind="poem")
    (ws.root / "caramba.yml").write_text("memory:\n  embedder: local:256\n")
    with pytest.raises(CarambaError, match="built with embedder") as e2:
        search(RagIndex(ws), "attention")
    assert "--rebuild" in (e2.value.fix or "")
    assert RagIndex(ws).index([ws.root / "papers"], rebuild=True).chunks_embedded == 2
