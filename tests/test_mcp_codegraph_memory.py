"""Code graph and memory tools through a real ``caramba mcp serve --stdio`` subprocess, on
the workspace's embedded FalkorDB and DeepLake store.

Round trips: sync a small package → find_symbol / callers / callees / subclasses /
layer_usage / read-only Cypher (writes refused); rag_index → rag_search; memory_search
(works without an LLM) and memory_add (needs one: the error says how to configure it).
"""

from __future__ import annotations

import textwrap

import anyio

from caramba.tests.support.falkordb import falkordb_workspace  # noqa: F401  (fixture)
from caramba.tests.support.mcp_procs import error_text, stdio_client, structured
from caramba.tests.support.toy_package import write_toy_package

MODELS = '''\
"""Toy model code for the code-graph round trip."""


class Block:
    """A residual block."""

    def forward(self, x):
        return x


class GatedBlock(Block):
    def forward(self, x):
        return gate(x)


def gate(x):
    return x


def build():
    b = GatedBlock()
    return gate(b.forward(1))
'''

def test_codegraph_and_memory_round_trips(falkordb_workspace):
    ws, _ep = falkordb_workspace
    write_toy_package(ws.root, MODELS)
    (ws.root / "notes").mkdir()
    (ws.root / "notes" / "rope.md").write_text(textwrap.dedent("""\
        # RoPE theta sweep
        Raising rotary theta to 500k lowered validation loss at 8k context.

        # Muon optimizer
        Muon converged faster than AdamW on the 50M model.
        """))

    async def main() -> None:
        async with stdio_client(ws.root) as client:
            rep = structured(await client.call_tool("codegraph_sync", {"path": "toy", "wait": True}))["report"]
            assert rep["graph"] == "toy" and rep["files"] == 3 and not rep["errors"]

            found = structured(await client.call_tool("find_symbol", {"name": "gate"}))["rows"]
            assert [(r["kind"], r["qualname"], r["line"]) for r in found] == [
                ("function", "toy.models.gate", MODELS.splitlines().index("def gate(x):") + 1)]

            callers = structured(await client.call_tool("callers", {"symbol": "gate"}))["rows"]
            assert {c["caller"] for c in callers} == {"toy.models.GatedBlock.forward", "toy.models.build"}

            callees = structured(await client.call_tool("callees", {"symbol": "toy.models.build"}))
            assert {"toy.models.gate", "toy.models.GatedBlock"} <= {c["callee"] for c in callees["resolved"]}

            subs = structured(await client.call_tool("subclasses", {"cls": "Block"}))["rows"]
            assert [s["qualname"] for s in subs] == ["toy.models.GatedBlock"]

            usage = structured(await client.call_tool("layer_usage", {"layer_type": "SSMLayer"}))["rows"]
            assert [u["manifest"] for u in usage] == ["toy.yml"]

            q = structured(await client.call_tool("codegraph_query", {
                "cypher": "MATCH (c:Class) RETURN c.qualname ORDER BY c.qualname"}))
            assert q["rows"] == [["toy.models.Block"], ["toy.models.GatedBlock"]]
            assert "read-only" in error_text(await client.call_tool(
                "codegraph_query", {"cypher": "MATCH (c:Class) DETACH DELETE c"}))
            assert "no code graph named" in error_text(await client.call_tool(
                "find_symbol", {"name": "gate", "graph": "nope"}))
            assert "outside the workspace" in error_text(await client.call_tool("codegraph_sync", {"path": ".."}))

            idx = structured(await client.call_tool("rag_index", {"paths": ["notes"], "kind": "note"}))
            assert idx["sources_indexed"] == 1 and idx["total_chunks"] >= 2
            again = structured(await client.call_tool("rag_index", {"paths": ["notes"], "kind": "note"}))
            assert again["sources_unchanged"] == 1 and again["chunks_embedded"] == 0
            hits = structured(await client.call_tool("rag_search", {"query": "Muon optimizer", "k": 2}))["hits"]
            assert hits and "Muon" in hits[0]["text"] and hits[0]["path"] == "notes/rope.md"

            facts = structured(await client.call_tool("memory_search", {"query": "rotary theta"}))
            assert facts == {"facts": []}
            err = error_text(await client.call_tool("memory_add", {"text": "theta 500k helps"}))
            assert "language model" in err and "fix:" in err

    anyio.run(main)
