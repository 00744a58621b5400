"""A completed `caramba run` writes its result to Graphiti memory when the workspace
enables memory — through the real CLI, real Graphiti, real embedded FalkorDB and LiteLLM
over HTTP to the scripted server — and writes nothing when memory is off."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from caramba.cli import main
from caramba.memory.graph_memory import GraphMemory
from caramba.tests.support.falkordb import falkordb_workspace  # noqa: F401
from caramba.tests.support.graphiti_script import script_graphiti
from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401
from caramba.workspace import Workspace

PRESET = Path(__file__).resolve().parents[1] / "manifests" / "mlp_classifier.yml"
FACT = ("digits run", "REACHED", "validation accuracy", "the digits MLP run reached high validation accuracy")


def _episodes(ws: Workspace) -> list[str]:
    async def go() -> list[str]:
        async with GraphMemory(ws) as mem:
            return [e.content for e in await mem.episodes()]
    return asyncio.run(go())


def _run(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ws.root)
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(ws.root))
    code = main(["run", str(ws.root / "m.yml"), "--set", "targets[0].runs[0].steps=6",
                 "--set", "defaults.logging.instrument=plain"])
    assert code == 0


def test_completed_run_is_recorded_only_when_memory_enabled(falkordb_workspace, scripted_llm: ScriptedLLM,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ws, _ = falkordb_workspace
    shutil.copy(PRESET, ws.root / "m.yml")
    llm = f"llm:\n  model: {scripted_llm.litellm_model()}\n  api_base: {scripted_llm.base_url}\n"
    script_graphiti(scripted_llm, [FACT])

    (ws.root / "caramba.yml").write_text("memory:\n  enabled: false\n" + llm)
    _run(ws, monkeypatch)
    assert scripted_llm.schema_names() == [] and _episodes(ws) == []

    (ws.root / "caramba.yml").write_text("memory:\n  enabled: true\n" + llm)
    _run(ws, monkeypatch)
    episodes = _episodes(ws)
    assert len(episodes) == 1
    assert "mlp_classifier" in episodes[0] and "digits" in episodes[0] and "val_accuracy" in episodes[0]
    assert "ExtractedEntities" in scripted_llm.schema_names()
