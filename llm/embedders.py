"""Text embedders: a local offline one (no downloads) and any LiteLLM embedding model.

Both implement :class:`Embedder`: ``embed(texts) -> float32 array (N, dim)`` with
l2-normalised rows (so a dot product is the cosine similarity), plus an async twin.

**LocalHashEmbedder** (``memory.embedder: local``, the default) — *feature hashing*, a
bag-of-features model, NOT a neural network:

1. tokenise into words; code identifiers are split too (``rmsNormForward`` and
   ``rms_norm_forward`` both give ``rms``, ``norm``, ``forward`` and the whole name);
   a short English/Python stop-word list is dropped;
2. features: word unigrams (weight 1.0) and adjacent word bigrams (0.5), each with
   sub-linear term frequency ``1 + log(tf)``; plus, once per distinct word, its
   character 3- to 5-grams with boundary marks sharing a weight of 0.3, which catch
   morphology and typos (``normalise``/``normalize``);
3. each feature is hashed (CRC32) to one of ``dim`` buckets with a hash-derived sign
   (the signed "hashing trick" keeps collisions unbiased); the vector is l2-normalised.
   Hashes of words and their grams are memoised (bounded caches), since vocabularies
   repeat across chunks.

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

import functools
import math
import re
import zlib
from collections import Counter
from typing import Protocol

import numpy as np

from caramba.llm.settings import LLMError, LLMSettings

_TOKEN = re.compile(r"[A-Za-z0-9_]+")
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


@functools.lru_cache(maxsize=200_000)
def _split_token(raw: str) -> tuple[str, ...]:
    """``rmsNorm_forward`` → ``("rmsnorm_forward", "rms", "norm", "forward")`` minus stop words."""
    parts = [m.group(0) for w in raw.split("_") if w for m in _CAMEL.finditer(w)]
    low = raw.strip("_").lower()
    out = ([low] if len(parts) > 1 and low else []) + [p.lower() for p in parts]
    return tuple(t for t in out if t not in _STOP and len(t) > 1)


def tokenize(text: str) -> list[str]:
    """Lower-cased words with code identifiers split into parts (the whole name kept)."""
    out: list[str] = []
    for raw in _TOKEN.findall(text):
        out.extend(_split_token(raw))
    return out


class LocalHashEmbedder:
    """Offline signed feature-hashing embedder (see the module docstring for the method)."""

    def __init__(self, dim: int = 768) -> None:
        if dim < 64:
            raise ValueError(f"LocalHashEmbedder dim must be >= 64, got {dim}")
        self._dim = dim
        self.name = f"local-hash-v1-{dim}"
        self._cache: dict[str, tuple[int, float]] = {}
        self._grams: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def dim(self) -> int:
        return self._dim

    def _hash(self, feature: str) -> tuple[int, float]:
        """Bucket and sign of one feature (memoised: words repeat across chunks)."""
        hit = self._cache.get(feature)
        if hit is None:
            h = zlib.crc32(feature.encode("utf-8"))
            hit = (h % self._dim, 1.0 if (h >> 31) & 1 else -1.0)
            if len(self._cache) < 1_000_000:
                self._cache[feature] = hit
        return hit

    def _char_grams(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """Buckets and signed weights of a word's 3-5 character grams, 0.3 in total."""
        hit = self._grams.get(word)
        if hit is None:
            padded = f"<{word}>"
            grams = [padded[i:i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1)] or [padded]
            pairs = [self._hash("c:" + g) for g in grams]
            hit = (np.array([b for b, _ in pairs], dtype=np.int64),
                   np.array([sg for _, sg in pairs], dtype=np.float32) * (0.3 / len(grams)))
            if len(self._grams) < 200_000:
                self._grams[word] = hit
        return hit

    def _vector(self, text: str) -> np.ndarray:
        words = tokenize(text)
        feats: Counter[str] = Counter("w:" + w for w in words)
        feats.update(f"b:{a} {b}" for a, b in zip(words, words[1:]))
        idx: list[int] = []
        val: list[float] = []
        for feat, tf in feats.items():
            bucket, sign = self._hash(feat)
            idx.append(bucket)
            val.append(sign * (1.0 if feat[0] == "w" else 0.5) * (1.0 + math.log(tf)))
        grams = [self._char_grams(w) for w in set(words)]
        all_idx = np.concatenate([np.asarray(idx, dtype=np.int64), *(g[0] for g in grams)])
        all_val = np.concatenate([np.asarray(val, dtype=np.float32), *(g[1] for g in grams)])
        vec = np.bincount(all_idx, weights=all_val, minlength=self._dim).astype(np.float32)
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
