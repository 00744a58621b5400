"""Text embedders: a local offline one (no downloads) and any LiteLLM embedding model.

Both implement :class:`Embedder`: ``embed(texts) -> float32 array (N, dim)`` with
l2-normalised rows (so a dot product is the cosine similarity), plus an async twin.

**LocalHashEmbedder** (``memory.embedder: local``, the default) — *feature hashing*, a
bag-of-features model, NOT a neural network:

1. tokenise into words; code identifiers are split too (``rmsNormForward`` and
   ``rms_norm_forward`` both give ``rms``, ``norm``, ``forward`` and the whole name);
   a short English/Python stop-word list is dropped;
2. features: word unigrams (weight 1.0), adjacent word bigrams (0.5) and character 3- to
   5-grams of each word with boundary marks (0.3 in total per word), which catch
   morphology and typos (``normalise``/``normalize``);
3. each feature is hashed (CRC32) to one of ``dim`` buckets with a hash-derived sign
   (the signed "hashing trick" keeps collisions unbiased), with sub-linear term
   frequency ``1 + log(tf)``; the vector is l2-normalised.

Quality, honestly: it matches *words*, not meanings. "attention softmax scaling" finds
code and notes that use those words (or their pieces), well enough for code search by
name and for keyword-heavy research notes; it does not know that "KV cache" and "past
key values" are related, and it ranks below any trained embedding model on semantic
benchmarks. ``bench/rag.py`` measures recall@10 on caramba's own code. Its merits: no
download, deterministic, ~thousands of chunks/s on one CPU core, and stable across
machines (the same text always gives the same vector), so an index is reproducible.

**LiteLLMEmbedder** (``memory.embedder: openai/text-embedding-3-small``, ``ollama/nomic-
embed-text``, …) calls ``litellm.embedding`` with the key rules of
:mod:`caramba.llm.settings`.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from typing import Protocol

import numpy as np

from caramba.llm.settings import LLMError, LLMSettings

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*|[0-9]+(?:\.[0-9]+)?")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_STOP = frozenset(
    "a an the and or of to in on for with by is are was were be been it its this that these "
    "those as at from we our you your i not no but if then else so do does did can could "
    "should would will self def return import none true false pass".split())


class Embedder(Protocol):
    """What every embedder offers. ``name`` identifies the model (stored with an index)."""

    name: str

    @property
    def dim(self) -> int | None: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...

    async def aembed(self, texts: list[str]) -> np.ndarray: ...


def tokenize(text: str) -> list[str]:
    """Lower-cased words with code identifiers split into parts (the whole name kept)."""
    out: list[str] = []
    for raw in re.findall(r"[A-Za-z0-9_]+", text):
        parts = [m.group(0) for w in raw.split("_") if w for m in _CAMEL.finditer(w)]
        low = raw.strip("_").lower()
        if len(parts) > 1 and low:
            out.append(low)
        out.extend(p.lower() for p in parts)
    return [t for t in out if t not in _STOP and len(t) > 1]


class LocalHashEmbedder:
    """Offline signed feature-hashing embedder (see the module docstring for the method)."""

    def __init__(self, dim: int = 768) -> None:
        if dim < 64:
            raise ValueError(f"LocalHashEmbedder dim must be >= 64, got {dim}")
        self._dim = dim
        self.name = f"local-hash-v1-{dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _features(self, text: str) -> Counter[str]:
        words = tokenize(text)
        feats: Counter[str] = Counter()
        for w in words:
            feats["w:" + w] += 1
        for a, b in zip(words, words[1:]):
            feats[f"b:{a} {b}"] += 1
        for w in set(words):
            padded = f"<{w}>"
            grams = [padded[i:i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1)]
            for g in grams:
                feats["c:" + g] += 1
        return feats

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self._dim, dtype=np.float32)
        feats = self._features(text)
        n_char = sum(1 for k in feats if k[0] == "c") or 1
        n_words = max(1, sum(1 for k in feats if k[0] == "w"))
        char_scale = 0.3 * n_words / n_char  # char grams share 0.3 per distinct word
        for feat, tf in feats.items():
            h = zlib.crc32(feat.encode("utf-8"))
            weight = {"w": 1.0, "b": 0.5, "c": char_scale}[feat[0]]
            sign = 1.0 if (h >> 31) & 1 else -1.0
            vec[h % self._dim] += sign * weight * (1.0 + math.log(tf))
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else vec

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    async def aembed(self, texts: list[str]) -> np.ndarray:
        return self.embed(texts)


class LiteLLMEmbedder:
    """Any embedding model LiteLLM can call; rows are l2-normalised after the call."""

    def __init__(self, settings: LLMSettings, batch_size: int = 64) -> None:
        self.settings = settings
        self.name = settings.model
        self.batch_size = batch_size
        self._dim: int | None = None

    @property
    def dim(self) -> int | None:
        return self._dim

    def _finish(self, rows: list[list[float]]) -> np.ndarray:
        arr = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        arr = arr / np.where(norms > 0, norms, 1.0)
        self._dim = arr.shape[1]
        return arr

    def _error(self, e: Exception) -> LLMError:
        return LLMError(f"embedding model {self.settings.describe()} failed: "
                        f"{type(e).__name__}: {str(e)[:300]}",
                        fix="check memory.embedder, the API key and that the server is "
                            "reachable; or use `memory.embedder: local` (offline)")

    def embed(self, texts: list[str]) -> np.ndarray:
        import litellm

        rows: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            try:
                resp = litellm.embedding(input=texts[i:i + self.batch_size],
                                         **self.settings.completion_kwargs())
            except Exception as e:  # provider errors of every kind become one clear error
                raise self._error(e) from e
            rows.extend(d["embedding"] for d in resp.data)
        return self._finish(rows) if rows else np.zeros((0, self._dim or 0), np.float32)

    async def aembed(self, texts: list[str]) -> np.ndarray:
        import litellm

        rows: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            try:
                resp = await litellm.aembedding(input=texts[i:i + self.batch_size],
                                                **self.settings.completion_kwargs())
            except Exception as e:
                raise self._error(e) from e
            rows.extend(d["embedding"] for d in resp.data)
        return self._finish(rows) if rows else np.zeros((0, self._dim or 0), np.float32)


def build_embedder(spec: str, *, api_base: str | None = None,
                   api_key_env: str | None = None) -> Embedder:
    """``"local"`` (or ``"local:<dim>"``) → :class:`LocalHashEmbedder`; anything else is a
    LiteLLM embedding model string. ``api_base`` is used for OpenAI-compatible servers."""
    from caramba.llm.settings import resolve_model

    if spec == "local" or spec.startswith("local:"):
        dim_s = spec.partition(":")[2] or "768"
        if not dim_s.isdigit() or int(dim_s) < 64:
            raise LLMError(f"memory.embedder '{spec}': the local embedder's size must be an "
                           "integer >= 64", fix="write `local` or e.g. `local:1024`")
        return LocalHashEmbedder(int(dim_s))
    return LiteLLMEmbedder(resolve_model(spec, api_base=api_base, api_key_env=api_key_env,
                                         what="memory.embedder"))


def embedder_from_config(memory_embedder: str, llm_model: str | None,
                         llm_api_base: str | None, api_key_env: str | None = None) -> Embedder:
    """The embedder named by ``memory.embedder`` in ``caramba.yml``.

    A LiteLLM embedding model of the same provider as ``llm.model`` shares ``llm.api_base``
    (an OpenAI-compatible server such as vLLM or a LiteLLM proxy serves ``/v1/embeddings``
    next to ``/v1/chat/completions``); other providers use their default endpoint."""
    if memory_embedder == "local" or memory_embedder.startswith("local:"):
        return build_embedder(memory_embedder)
    same_provider = bool(llm_model) and memory_embedder.split("/", 1)[0] == llm_model.split("/", 1)[0]
    return build_embedder(memory_embedder, api_base=llm_api_base if same_provider else None,
                          api_key_env=api_key_env if same_provider else None)
