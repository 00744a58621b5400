"""A manifest's ``defaults.memory`` merged over ``caramba.yml`` (the manifest wins, per
field) — through the real ``caramba run``, real Graphiti on the embedded FalkorDB and
LiteLLM over HTTP to the scripted server:

* ``defaults.memory: {enabled: true, group: X}`` with no memory section in caramba.yml
  records the run into group X (the LLM still comes from caramba.yml);
* ``defaults.memory: {enabled: false}`` beats caramba.yml's ``enabled: true``;
* a bad field is a located manifest error (file, line, YAML path, fix), nothing runs.
"""

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


def _manifest(ws: Workspace, memory: str) -> Path:
    """The digits preset with ``defaults.memory`` set to the YAML flow mapping ``memory``."""
    text = PRESET.read_text()
    assert "\ndefaults:\n" in text
    path = ws.root / "m.yml"
    path.write_text(text.replace("\ndefaults:\n", f"\ndefaults:\n  memory: {memory}\n", 1))
    return path


def _episodes(ws: Workspace, group: str) -> list[str]:
    async def go() -> list[str]:
        async with GraphMemory(ws, group=group) as mem:
            return [e.content for e in await mem.episodes()]
    return asyncio.run(go())


def _run(ws: Workspace, manifest: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.chdir(ws.root)
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(ws.root))
    return main(["run", str(manifest), "--set", "targets[0].runs[0].steps=4",
                 "--set", "defaults.logging.instrument=plain"])


def test_manifest_memory_defaults_win_over_caramba_yml(falkordb_workspace, scripted_llm: ScriptedLLM,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    ws, _ = falkordb_workspace
    llm = f"llm:\n  model: {scripted_llm.litellm_model()}\n  api_base: {scripted_llm.base_url}\n"
    script_graphiti(scripted_llm, [FACT])

    # caramba.yml: an LLM, no memory section (memory off by default) → the manifest turns it on
    (ws.root / "caramba.yml").write_text(llm)
    assert _run(ws, _manifest(ws, "{enabled: true, group: sweep_x}"), monkeypatch) == 0
    recorded = _episodes(ws, "sweep_x")
    assert len(recorded) == 1 and "mlp_classifier" in recorded[0] and "val_accuracy" in recorded[0]
    assert _episodes(ws, "default") == []  # the workspace's group got nothing
    assert "ExtractedEntities" in scripted_llm.schema_names()

    # caramba.yml enables memory (group other); the manifest's enabled: false wins
    calls = len(scripted_llm.requests)
    (ws.root / "caramba.yml").write_text("memory:\n  enabled: true\n  group_id: other\n" + llm)
    assert _run(ws, _manifest(ws, "{enabled: false}"), monkeypatch) == 0
    assert _episodes(ws, "other") == [] and len(_episodes(ws, "sweep_x")) == 1
    assert len(scripted_llm.requests) == calls  # no extraction was even attempted

    # a bad field: a located manifest error, exit 2, no run directory
    capsys.readouterr()
    bad = _manifest(ws, "{enabled: true, group: 'no spaces allowed', embeder: local}")
    line = bad.read_text().splitlines().index("  memory: {enabled: true, group: 'no spaces allowed', embeder: local}") + 1
    runs_before = sorted(p.name for p in (ws.runs_dir / "mlp_classifier" / "digits").iterdir())
    assert _run(ws, bad, monkeypatch) == 2
    err = capsys.readouterr().err
    assert f"m.yml:{line}:" in err and "defaults.memory.group" in err and "defaults.memory.embeder" in err
    assert "did you mean 'embedder'" in err
    assert sorted(p.name for p in (ws.runs_dir / "mlp_classifier" / "digits").iterdir()) == runs_before
