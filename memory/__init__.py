"""caramba.memory — what the research remembers and how it finds things again.

* Graphiti memory (temporal knowledge graph on FalkorDB): :mod:`.graph_memory`
  (``GraphMemory``), :mod:`.record` (``record_run_result`` for finished runs,
  ``record_transcript``), :mod:`.timefilter` ("last week" → datetimes), :mod:`.runs`
  (run directory → summary).
* Retrieval (DeepLake): :mod:`.chunking` (code by function/class, papers by section,
  PDF by page), :mod:`.rag_store` (dataset and schema), :mod:`.rag_index` (incremental
  indexing), :mod:`.rag_search` (vector / BM25 / hybrid search).
* Commands: :mod:`.cli` (``caramba memory …``, ``caramba rag …``).

Model clients (LLM, embedders, Graphiti adapters) come from :mod:`caramba.llm`. See
``docs/memory.md`` for configuration and ``docs/internals.md`` for the contracts.
"""
