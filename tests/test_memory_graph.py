"""Graphiti memory end to end: real Graphiti, real embedded FalkorDB, LiteLLM over HTTP to
the scripted server (the only fake). Two groups must never see each other's facts."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from caramba.llm import LLMNotConfigured
from caramba.memory.graph_memory import GraphMemory
from caramba.memory.record import record_run_result
from caramba.tests.support.falkordb import falkordb_workspace  # noqa: F401
from caramba.tests.support.graphiti_script import script_graphiti
from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401
from caramba.workspace import Workspace

WORLD = [
    ("RoPE theta 500k", "IMPROVES", "validation loss", "RoPE theta 500k improves validation loss by 3% at 8k context"),
    ("int8 KV cache", "HALVES", "decode memory", "int8 KV cache halves decode memory with 0.1 perplexity cost"),
    ("SwiGLU", "BEATS", "GELU MLP", "SwiGLU beats the GELU MLP at equal parameter count"),
    ("rope-ablation", "RAN", "theta500k", "run rope-ablation with theta500k reached val loss 2.91"),
]


def _configure(ws: Workspace, llm: ScriptedLLM | None, enabled: bool = False) -> None:
    text = f"memory:\n  enabled: {str(enabled).lower()}\n"
    if llm is not None:
        text += f"llm:\n  model: {llm.litellm_model()}\n  api_base: {llm.base_url}\n"
    (ws.root / "caramba.yml").write_text(text)


async def _facts(ws: Workspace, group: str, query: str, **kw: object) -> list[str]:
    async with GraphMemory(ws, group=group) as mem:
        return [f.fact for f in await mem.search(query, **kw)]  # type: ignore[arg-type]


def test_add_search_two_groups_time_window_and_no_llm(falkordb_workspace, scripted_llm: ScriptedLLM,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ws, _ = falkordb_workspace
    monkeypatch.delenv("CARAMBA_LLM_MODEL", raising=False)
    _configure(ws, scripted_llm)
    script_graphiti(scripted_llm, WORLD)

    async def write() -> None:
        async with GraphMemory(ws, group="proj-a") as a:
            r = await a.add_note("Tried RoPE theta 500k: validation loss went down 3% at 8k context.")
            assert r.facts == [WORLD[0][3]] and set(r.entities) == {"RoPE theta 500k", "validation loss"}
            await a.add_note("SwiGLU vs GELU MLP at equal params: SwiGLU wins.")
        async with GraphMemory(ws, group="proj-b") as b:
            await b.add_transcript("Reviewer: int8 KV cache halves decode memory.", name="review 1")

    asyncio.run(write())
    # Graphiti's real pipeline asked the scripted LLM for its structured outputs
    asked = scripted_llm.schema_names()
    assert {"ExtractedEntities", "ExtractedEdges"} <= set(asked) and not scripted_llm.unanswered

    a_facts = asyncio.run(_facts(ws, "proj-a", "what helped validation loss, rope or kv cache?"))
    b_facts = asyncio.run(_facts(ws, "proj-b", "what helped validation loss, rope or kv cache?"))
    assert WORLD[0][3] in a_facts and WORLD[1][3] not in a_facts
    assert b_facts == [WORLD[1][3]]
    assert asyncio.run(_facts(ws, "proj-c", "rope kv cache swiglu")) == []

    now = datetime.now(UTC)
    assert WORLD[0][3] in asyncio.run(_facts(ws, "proj-a", "rope theta", since=now - timedelta(hours=1)))
    assert asyncio.run(_facts(ws, "proj-a", "rope theta", since=now + timedelta(hours=1))) == []
    assert asyncio.run(_facts(ws, "proj-a", "rope theta", until=now - timedelta(hours=1))) == []

    async def episodes(group: str) -> list[str]:
        async with GraphMemory(ws, group=group) as m:
            return [f"{e.kind}:{e.content}" for e in await m.episodes()]

    assert episodes_ok(asyncio.run(episodes("proj-a")), asyncio.run(episodes("proj-b")))

    # without an LLM: stored facts are still searchable, writing says how to configure one
    _configure(ws, None)
    assert b_facts == asyncio.run(_facts(ws, "proj-b", "kv cache decode memory"))

    async def write_without_llm() -> None:
        async with GraphMemory(ws, group="proj-b") as b:
            await b.add_note("anything")

    with pytest.raises(LLMNotConfigured) as e:
        asyncio.run(write_without_llm())
    assert "llm.model" in (e.value.fix or "") and "searching what is stored works" in e.value.message


def episodes_ok(a: list[str], b: list[str]) -> bool:
    assert len(a) == 2 and all(x.startswith("note:") for x in a) and "SwiGLU" in a[0]
    assert b == ["transcript:Reviewer: int8 KV cache halves decode memory."]
    return True


def test_record_run_result(falkordb_workspace, scripted_llm: ScriptedLLM) -> None:
    ws, _ = falkordb_workspace
    script_graphiti(scripted_llm, WORLD)
    run = ws.runs_dir / "rope-ablation" / "train" / "20261120-101010-abcd"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"manifest": "rope-ablation", "target": "train", "run_id": run.name,
                                              "created": "2026-11-20T10:10:10", "state": "completed"}))
    (run / "metrics.jsonl").write_text(json.dumps({"run": "theta500k", "step": 100, "split": "val", "loss": 2.91}) + "\n")
    (run / "artifacts").mkdir()
    (run / "artifacts" / "summary.csv").write_text("a,b\n")

    _configure(ws, scripted_llm, enabled=False)
    assert asyncio.run(record_run_result(ws, run)) is None  # memory disabled: nothing written
    assert scripted_llm.chat_requests() == []

    _configure(ws, scripted_llm, enabled=True)
    res = asyncio.run(record_run_result(ws, run))
    assert res is not None and res.episode.kind == "run"
    assert "rope-ablation" in res.episode.content and "loss = 2.91" in res.episode.content
    assert "artifacts/summary.csv" in res.episode.content
    assert res.episode.valid_at == datetime(2026, 11, 20, 10, 10, 10, tzinfo=UTC)
    assert asyncio.run(_facts(ws, "default", "rope-ablation theta500k val loss")) == [WORLD[3][3]]


def test_bad_group_is_refused(tmp_path: Path) -> None:
    from caramba.engine.errors import CarambaError

    with pytest.raises(CarambaError, match="not valid"):
        GraphMemory(Workspace(tmp_path), group="my project!")
