"""caramba.llm — the one place that turns configuration into model clients.

* :mod:`caramba.llm.settings` — ``resolve_llm(cfg.llm)`` → :class:`LLMSettings` (LiteLLM
  model string, api_base, key from the provider's env var) or a clear
  :class:`LLMNotConfigured` error saying how to configure one.
* :mod:`caramba.llm.embedders` — :class:`LocalHashEmbedder` (offline, default) and
  :class:`LiteLLMEmbedder`; ``embedder_from_config``.
* :mod:`caramba.llm.graphiti_clients` — Graphiti's LLM client, embedder and reranker on
  LiteLLM (imported lazily: it pulls in graphiti_core).

Agents and tools reuse these instead of reading ``caramba.yml`` themselves.

Graphiti sends anonymous usage events to PostHog unless told not to. caramba turns that off
(``GRAPHITI_TELEMETRY_ENABLED=false``) as soon as any model client is imported: a research
platform does not report on its users, and offline the failed upload printed a PostHog
warning after every memory command. Export ``GRAPHITI_TELEMETRY_ENABLED=true`` to opt in.
"""

import os

os.environ.setdefault("GRAPHITI_TELEMETRY_ENABLED", "false")

from caramba.llm.embedders import (
    Embedder,
    LiteLLMEmbedder,
    LocalHashEmbedder,
    build_embedder,
    embedder_from_config,
)
from caramba.llm.settings import (
    HOW_TO_CONFIGURE,
    LLMError,
    LLMNotConfigured,
    LLMSettings,
    llm_configured,
    resolve_llm,
    resolve_model,
)

__all__ = [
    "HOW_TO_CONFIGURE", "Embedder", "LLMError", "LLMNotConfigured", "LLMSettings",
    "LiteLLMEmbedder", "LocalHashEmbedder", "build_embedder", "embedder_from_config",
    "llm_configured", "resolve_llm", "resolve_model",
]
