"""caramba.engine.infer: generation and typed KV caches.

* :mod:`~caramba.engine.infer.quant` — q8_0/q4_0 block quantisation, exact sizes;
* :mod:`~caramba.engine.infer.kvcache` — ``LayerKVCache {k, v}``, ``DecoupledLayerKVCache
  {k_sem, k_geo, v}`` with per-tensor kinds, ``residual_len``, ``truncate``, ``nbytes``;
* :mod:`~caramba.engine.infer.cache_set` — ``CacheSpec``, ``InferenceCache``,
  ``predict_cache_bytes``;
* :mod:`~caramba.engine.infer.generate` — ``generate`` (greedy/temperature/top-k/top-p,
  repetition penalty, stop tokens, batches);
* :mod:`~caramba.engine.infer.speculative` — ``speculative_generate`` with a draft model.
"""

from caramba.engine.infer.cache_set import CacheSpec, InferenceCache, make_cache, predict_cache_bytes
from caramba.engine.infer.generate import GenerationConfig, GenerationResult, generate, lm_logits
from caramba.engine.infer.speculative import SpeculativeConfig, speculative_generate

__all__ = ["CacheSpec", "InferenceCache", "make_cache", "predict_cache_bytes", "GenerationConfig",
           "GenerationResult", "generate", "lm_logits", "SpeculativeConfig", "speculative_generate"]
