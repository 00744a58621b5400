"""caramba.llm against the scripted OpenAI-compatible server, through real LiteLLM HTTP."""

from __future__ import annotations

import asyncio

import litellm
import numpy as np
import pytest
from graphiti_core.prompts.extract_nodes import ExtractedEntities
from graphiti_core.prompts.models import Message

from caramba.llm import (
    LiteLLMEmbedder,
    LLMError,
    LLMNotConfigured,
    LocalHashEmbedder,
    build_embedder,
    resolve_llm,
    resolve_model,
)
from caramba.llm.graphiti_clients import EmbeddingReranker, GraphitiEmbedder, LiteLLMGraphitiClient
from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401
from caramba.workspace import LLMConfig


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
                "CARAMBA_LLM_MODEL", "CARAMBA_LLM_API_BASE"):
        monkeypatch.delenv(var, raising=False)


def test_no_llm_configured_says_how_to_configure() -> None:
    with pytest.raises(LLMNotConfigured) as e:
        resolve_llm(LLMConfig())
    assert "llm.model" in e.value.render() and "OPENAI_API_KEY" in e.value.render()


def test_missing_key_is_reported_before_any_request() -> None:
    with pytest.raises(LLMError) as e:
        resolve_llm(LLMConfig(model="anthropic/claude-sonnet-4-5"))
    assert "ANTHROPIC_API_KEY" in e.value.render()
    with pytest.raises(LLMError, match="MY_KEY"):
        resolve_llm(LLMConfig(model="openai/gpt-4o-mini", api_key_env="MY_KEY"))
    # a local OpenAI-compatible server needs no key
    s = resolve_llm(LLMConfig(model="openai/served", api_base="http://127.0.0.1:1/v1"))
    assert s.api_key == "no-key" and s.provider == "openai"
    assert resolve_model("ollama/llama3.1").api_key is None


def test_unknown_model_string_is_a_clear_error() -> None:
    with pytest.raises(LLMError, match="prefix the model"):
        resolve_model("no-such-model-xyz")


def test_scripted_server_turns_tools_stream_and_embeddings(scripted_llm: ScriptedLLM) -> None:
    kw = {"model": scripted_llm.litellm_model(), "api_base": scripted_llm.base_url, "api_key": "x"}
    scripted_llm.add_turn("calling a tool", tool_calls=[{"name": "search", "arguments": {"q": "rope"}}])
    scripted_llm.add_turn("RoPE theta 500k helped long context.")
    r1 = litellm.completion(messages=[{"role": "user", "content": "hi"}], **kw)
    call = r1.choices[0].message.tool_calls[0]
    assert call.function.name == "search" and '"rope"' in call.function.arguments
    chunks = list(litellm.completion(messages=[{"role": "user", "content": "and?"}], stream=True, **kw))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "RoPE theta 500k helped long context."
    emb = litellm.embedding(input=["kv cache", "kv cache quantisation", "unrelated words"], **kw)
    v = np.array([d["embedding"] for d in emb.data])
    assert v.shape == (3, scripted_llm.embedding_dim) and v[0] @ v[1] > v[0] @ v[2]
    assert [r.body["messages"][-1]["content"] for r in scripted_llm.chat_requests()] == ["hi", "and?"]
    with pytest.raises(Exception, match="no scripted answer"):
        litellm.completion(messages=[{"role": "user", "content": "unscripted"}], **kw)


def test_graphiti_client_sends_schema_and_parses_json(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.on_json(lambda req: {"extracted_entities": [
        {"name": w, "entity_type_id": 0, "episode_indices": [0]}
        for w in ("RoPE", "YaRN") if w in req.last_user]}, schema="ExtractedEntities")
    client = LiteLLMGraphitiClient(resolve_model(scripted_llm.litellm_model(),
                                                 api_base=scripted_llm.base_url))
    msgs = [Message(role="system", content="extract"), Message(role="user", content="We tried RoPE.")]
    out = asyncio.run(client.generate_response(msgs, response_model=ExtractedEntities))
    assert ExtractedEntities.model_validate(out).extracted_entities[0].name == "RoPE"
    req = scripted_llm.chat_requests()[-1]
    assert req.schema_name == "ExtractedEntities" and "extracted_entities" in str(req.schema)
    # Graphiti's base client appends the schema to the prompt too (for providers without JSON mode)
    assert "Respond with a JSON object" in req.last_user


def test_graphiti_client_turns_provider_errors_into_caramba_errors(scripted_llm: ScriptedLLM) -> None:
    client = LiteLLMGraphitiClient(resolve_model("openai/x", api_base=scripted_llm.base_url))
    with pytest.raises(LLMError, match="no scripted answer") as e:
        asyncio.run(client.generate_response([Message(role="user", content="hello")],
                                             response_model=ExtractedEntities))
    assert e.value.fix and "llm.model" in e.value.fix


def test_local_embedder_is_deterministic_normalised_and_lexical() -> None:
    emb = LocalHashEmbedder(256)
    texts = ["def rms_norm(x, weight, eps): root mean square normalisation",
             "class AttentionLayer: scaled dot product attention with softmax",
             "download the dataset and unpack the archive"]
    a, b = emb.embed(texts), LocalHashEmbedder(256).embed(texts)
    assert np.array_equal(a, b) and np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    q = emb.embed(["rmsNorm normalization"])[0]  # camelCase split + char n-grams (z vs s)
    assert int(np.argmax(a @ q)) == 0
    q2 = emb.embed(["softmax attention"])[0]
    assert int(np.argmax(a @ q2)) == 1
    with pytest.raises(LLMError, match="integer >= 64"):
        build_embedder("local:8")


def test_litellm_embedder_and_graphiti_adapters(scripted_llm: ScriptedLLM) -> None:
    emb = build_embedder("openai/embed", api_base=scripted_llm.base_url)
    assert isinstance(emb, LiteLLMEmbedder)
    vecs = emb.embed(["kv cache int8", "kv cache quantisation"])
    assert vecs.shape == (2, scripted_llm.embedding_dim) and emb.dim == scripted_llm.embedding_dim
    g = GraphitiEmbedder(emb)
    one = asyncio.run(g.create("kv cache int8"))
    assert np.allclose(one, vecs[0], atol=1e-6)
    ranked = asyncio.run(EmbeddingReranker(LocalHashEmbedder()).rank(
        "rotary position embedding theta", ["layer norm epsilon", "rotary embedding theta 500k"]))
    assert ranked[0][0] == "rotary embedding theta 500k" and ranked[0][1] > ranked[1][1]
