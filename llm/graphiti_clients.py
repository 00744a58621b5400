"""Graphiti's three model clients, backed by LiteLLM, so Graphiti works with any provider.

Graphiti (``graphiti_core``) defaults to OpenAI for its LLM, embedder and reranker and
fails without ``OPENAI_API_KEY``. caramba replaces all three:

* :class:`LiteLLMGraphitiClient` — a ``graphiti_core.llm_client.LLMClient``. Graphiti's
  base ``generate_response`` appends the response model's JSON schema to the prompt;
  ``_generate_response`` here calls ``litellm.acompletion`` with
  ``response_format={"type": "json_schema", "json_schema": {"name": <Model>, "schema":
  …}}``. LiteLLM translates that per provider (OpenAI/vLLM structured output, Anthropic
  tool use, Gemini response schema, Ollama ``format``). The reply is parsed as JSON
  (a surrounding ```` ```json ```` fence is stripped). Provider rate limits become
  Graphiti's ``RateLimitError`` (Graphiti retries those); every other provider error
  becomes an :class:`~caramba.llm.settings.LLMError` with a fix, immediately.
* :class:`GraphitiEmbedder` — a ``graphiti_core.embedder.EmbedderClient`` over any
  caramba :class:`~caramba.llm.embedders.Embedder` (local hashing or LiteLLM).
* :class:`EmbeddingReranker` — a ``graphiti_core.cross_encoder.CrossEncoderClient`` that
  scores passages by cosine similarity between the query and passage embeddings. It is a
  bi-encoder used as a reranker, not a true cross-encoder: cheap, deterministic, no extra
  LLM calls; as good as the embedder it wraps.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Iterable

import numpy as np
from graphiti_core.cross_encoder.client import CrossEncoderClient
from graphiti_core.embedder.client import EmbedderClient
from graphiti_core.llm_client.client import LLMClient
from graphiti_core.llm_client.config import DEFAULT_MAX_TOKENS, ModelSize
from graphiti_core.llm_client.config import LLMConfig as GraphitiLLMConfig
from graphiti_core.llm_client.errors import EmptyResponseError, RateLimitError
from graphiti_core.prompts.models import Message
from pydantic import BaseModel

from caramba.llm.embedders import Embedder
from caramba.llm.settings import LLMError, LLMSettings

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?|\n?```\s*$")


class LiteLLMGraphitiClient(LLMClient):
    """Graphiti LLM client that sends every structured-output prompt through LiteLLM."""

    def __init__(self, settings: LLMSettings, *, max_tokens: int = 8192) -> None:
        super().__init__(GraphitiLLMConfig(model=settings.model, small_model=settings.model,
                                           temperature=settings.temperature,
                                           max_tokens=max_tokens, base_url=settings.api_base),
                         cache=False)
        self.settings = settings

    def _get_provider_type(self) -> str:
        return f"litellm:{self.settings.provider}"

    async def _generate_response(
        self,
        messages: list[Message],
        response_model: type[BaseModel] | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        model_size: ModelSize = ModelSize.medium,
        *,
        model: str | None = None,
    ) -> dict[str, typing.Any]:
        import litellm

        payload = [{"role": m.role, "content": self._clean_input(m.content)} for m in messages]
        if response_model is not None:
            response_format: dict[str, typing.Any] = {
                "type": "json_schema",
                "json_schema": {"name": response_model.__name__,
                                "schema": response_model.model_json_schema()},
            }
        else:
            response_format = {"type": "json_object"}
        kwargs = self.settings.completion_kwargs()
        if model:
            kwargs["model"] = model
        try:
            resp = await litellm.acompletion(messages=payload, temperature=self.temperature,
                                             max_tokens=max_tokens,
                                             response_format=response_format, **kwargs)
        except litellm.RateLimitError as e:
            raise RateLimitError(str(e)) from e
        except Exception as e:  # every other provider failure: one actionable error
            raise LLMError(
                f"LLM call to {self.settings.describe()} failed: {type(e).__name__}: {str(e)[:400]}",
                fix="check llm.model / llm.api_base in caramba.yml, the API key environment "
                    "variable, and that the server is reachable",
            ) from e
        text = resp.choices[0].message.content or ""
        if not text.strip():
            raise EmptyResponseError(f"{self.settings.describe()} returned an empty response")
        try:
            data = json.loads(_FENCE.sub("", text.strip()))
        except json.JSONDecodeError as e:
            raise LLMError(
                f"{self.settings.describe()} did not return valid JSON for "
                f"{response_model.__name__ if response_model else 'a JSON prompt'}: "
                f"{text[:200]!r}",
                fix="use a model that supports structured output (JSON schema / JSON mode)",
            ) from e
        if not isinstance(data, dict):
            raise LLMError(f"{self.settings.describe()} returned JSON that is not an object: "
                           f"{text[:200]!r}", fix="use a model that supports structured output")
        return data


class GraphitiEmbedder(EmbedderClient):
    """Graphiti embedder over a caramba :class:`Embedder`."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    async def create(
        self, input_data: str | list[str] | Iterable[int] | Iterable[Iterable[int]]
    ) -> list[float]:
        if isinstance(input_data, str):
            text = input_data
        elif isinstance(input_data, list) and input_data and isinstance(input_data[0], str):
            text = input_data[0]
        else:
            raise TypeError("caramba's Graphiti embedder takes text, not token ids")
        return (await self.embedder.aembed([text]))[0].tolist()

    async def create_batch(self, input_data_list: list[str]) -> list[list[float]]:
        return (await self.embedder.aembed(list(input_data_list))).tolist()


class EmbeddingReranker(CrossEncoderClient):
    """Rerank passages by cosine similarity to the query (bi-encoder reranking)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    async def rank(self, query: str, passages: list[str]) -> list[tuple[str, float]]:
        if not passages:
            return []
        vecs = await self.embedder.aembed([query, *passages])
        scores = vecs[1:] @ vecs[0]
        order = np.argsort(-scores, kind="stable")
        return [(passages[i], float(scores[i])) for i in order]
