"""The `caramba memory …` and `caramba rag …` commands, in-process, on real services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caramba.cli import main
from caramba.tests.support.falkordb import falkordb_workspace  # noqa: F401
from caramba.tests.support.graphiti_script import script_graphiti
from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401

WORLD = [("FlashAttention", "SPEEDS_UP", "prefill", "FlashAttention speeds up prefill 2.1x at 4k tokens"),
         ("MoE top-2", "REDUCES", "perplexity", "MoE top-2 routing reduces perplexity by 0.4 at equal FLOPs")]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture
def in_ws(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    def enter(root: Path) -> Path:
        monkeypatch.chdir(root)
        monkeypatch.setenv("CARAMBA_WORKSPACE", str(root))
        monkeypatch.delenv("CARAMBA_LLM_MODEL", raising=False)
        return root
    return enter


def test_rag_cli_index_and_search(tmp_path: Path, in_ws, capsys: pytest.CaptureFixture[str]) -> None:
    root = in_ws(tmp_path)
    (root / "lib").mkdir()
    (root / "lib" / "ops.py").write_text("def fused_rms_norm_backward(dy, x, w):\n    'grad of rms norm'\n    return dy\n\n"
                                         "def top_k_router(logits, k):\n    'route tokens to experts'\n    return logits\n")
    (root / "notes.md").write_text("# Idea\nTry a sliding window of 512 tokens for local attention.\n")
    code, outp, err = _cli(capsys, "rag", "index", "lib", "notes.md", "--kind", "note")
    assert code == 0, err
    assert "indexed 2 sources" in outp and "3 chunks in the index" in outp
    code, outp, _ = _cli(capsys, "rag", "search", "rms norm gradient", "--json", "-k", "1")
    hits = json.loads(outp)
    assert [(h["title"], h["kind"], h["start"]) for h in hits] == [("fused_rms_norm_backward", "code", 1)]
    code, outp, _ = _cli(capsys, "rag", "search", "sliding window", "--kind", "note", "--json")
    assert [h["path"] for h in json.loads(outp)] == ["notes.md"]
    code, outp, _ = _cli(capsys, "rag", "index", "lib")
    assert "0 sources (1 unchanged" in outp and "0 embedded" in outp
    code, _, err = _cli(capsys, "rag", "search", "x", "--kind", "poem")
    assert code == 2 and "unknown kind 'poem'" in err and "Traceback" not in err


def test_memory_cli_add_search_episodes(falkordb_workspace, scripted_llm: ScriptedLLM, in_ws,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    ws, _ = falkordb_workspace
    root = in_ws(ws.root)
    code, _, err = _cli(capsys, "memory", "add", "FlashAttention speeds up prefill")
    assert code == 2 and "needs a language model" in err and "llm.model" in err and "Traceback" not in err

    (root / "caramba.yml").write_text(f"llm:\n  model: openai/scripted\n  api_base: {scripted_llm.base_url}\n")
    script_graphiti(scripted_llm, WORLD)
    code, outp, err = _cli(capsys, "memory", "add", "FlashAttention: prefill 2.1x faster at 4k.", "--group", "speed")
    assert code == 0, err
    assert "2 entities, 1 facts" in outp and WORLD[0][3] in outp
    (root / "moe.md").write_text("Review: MoE top-2 routing lowered perplexity by 0.4 at equal FLOPs.")
    code, outp, err = _cli(capsys, "memory", "add", "--file", "moe.md", "--kind", "transcript", "--group", "moe")
    assert code == 0, err

    code, outp, _ = _cli(capsys, "memory", "search", "prefill speed", "--group", "speed", "--json",
                         "--since", "last week")
    assert [f["fact"] for f in json.loads(outp)] == [WORLD[0][3]]
    code, outp, _ = _cli(capsys, "memory", "search", "prefill speed perplexity", "--group", "moe", "--json")
    assert [f["fact"] for f in json.loads(outp)] == [WORLD[1][3]]
    code, outp, _ = _cli(capsys, "memory", "episodes", "--group", "moe", "--json")
    eps = json.loads(outp)
    assert [(e["kind"], e["name"]) for e in eps] == [("transcript", "moe.md")]
    code, _, err = _cli(capsys, "memory", "search", "x", "--since", "the other day")
    assert code == 2 and "is not a date" in err
