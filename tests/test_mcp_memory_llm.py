"""``memory_add`` → ``memory_search`` through a real ``caramba mcp serve --stdio``
subprocess with an LLM configured: the server's Graphiti extracts the fact through LiteLLM
over HTTP (the scripted server on loopback is the only fake), writes it to the embedded
FalkorDB, and the search tool finds it — in the right group only."""

from __future__ import annotations

import anyio

from caramba.tests.support.falkordb import falkordb_workspace  # noqa: F401  (fixture)
from caramba.tests.support.graphiti_script import script_graphiti
from caramba.tests.support.mcp_procs import stdio_client, structured
from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401  (fixture)

FACT = ("RoPE theta 500k", "IMPROVES", "long-context loss", "RoPE theta 500k improves long-context loss")


def test_memory_add_then_search_over_stdio(falkordb_workspace, scripted_llm: ScriptedLLM) -> None:
    ws, _ = falkordb_workspace
    (ws.root / "caramba.yml").write_text(
        f"llm:\n  model: {scripted_llm.litellm_model()}\n  api_base: {scripted_llm.base_url}\n")
    script_graphiti(scripted_llm, [FACT])

    async def main() -> None:
        async with stdio_client(ws.root) as client:
            added = structured(await client.call_tool(
                "memory_add", {"text": "Tried RoPE theta 500k: long-context loss improved.", "group": "proj"}))
            assert added["facts"] == [FACT[3]]
            assert set(added["entities"]) == {FACT[0], FACT[2]}
            found = structured(await client.call_tool("memory_search", {"query": "rope theta", "group": "proj"}))
            assert [f["fact"] for f in found["facts"]] == [FACT[3]]
            other = structured(await client.call_tool("memory_search", {"query": "rope theta", "group": "other"}))
            assert other == {"facts": []}

    anyio.run(main)
    assert "ExtractedEntities" in scripted_llm.schema_names()
