"""Canned answers to Graphiti's structured-output prompts, for the scripted LLM server.

Graphiti's ``add_episode`` asks the LLM, in order, for ``ExtractedEntities`` (entities
in the current message), ``ExtractedEdges`` (facts between them), ``EdgeTimestamps``,
and on later episodes ``NodeResolutions`` / ``EdgeDuplicate`` (deduplication) and
``SummarizedEntities``. :func:`script_graphiti` answers each by its JSON-schema name from
a small "world" of facts: an entity is extracted when its name occurs in the *current*
episode (Graphiti's prompt marks it ``<CURRENT MESSAGE>`` or ``<TEXT>``), a fact when both ends do —
so what lands in FalkorDB depends on what the test actually wrote.
"""

from __future__ import annotations

import re
from typing import Any

from caramba.tests.support.scripted_llm import ChatRequest, ScriptedLLM

Fact = tuple[str, str, str, str]  # (source entity, RELATION, target entity, fact sentence)


def _current(prompt: str) -> str:
    m = (re.search(r"<CURRENT[ _]MESSAGE>(.*?)</CURRENT[ _]MESSAGE>", prompt, re.S)
         or re.search(r"<TEXT>(.*?)</TEXT>", prompt, re.S))
    if m is None:
        raise AssertionError("Graphiti prompt without a <CURRENT MESSAGE>/<TEXT> section: " + prompt[:300])
    return m.group(1).lower()


def script_graphiti(llm: ScriptedLLM, world: list[Fact]) -> None:
    names = sorted({n for f in world for n in (f[0], f[2])})

    def entities(req: ChatRequest) -> dict[str, Any]:
        cur = _current(req.prompt)
        return {"extracted_entities": [{"name": n, "entity_type_id": 0, "episode_indices": [0]}
                                       for n in names if n.lower() in cur]}

    def edges(req: ChatRequest) -> dict[str, Any]:
        cur = _current(req.prompt)
        return {"edges": [{"source_entity_name": s, "target_entity_name": t, "relation_type": r,
                           "fact": fact, "valid_at": None, "invalid_at": None, "episode_indices": [0]}
                          for s, r, t, fact in world if s.lower() in cur and t.lower() in cur]}

    llm.on_json(entities, schema="ExtractedEntities")
    llm.on_json(edges, schema="ExtractedEdges")
    llm.on_json({"valid_at": None, "invalid_at": None}, schema="EdgeTimestamps")
    llm.on_json({"entity_resolutions": []}, schema="NodeResolutions")
    llm.on_json({"duplicate_facts": [], "contradicted_facts": []}, schema="EdgeDuplicate")
    llm.on_json({"summaries": []}, schema="SummarizedEntities")
