"""``targets[].benchmarks``: measurements taken after training (manifest reference, "Benchmarks").

Each entry is ``{id, config: {type: ...}, models: [teacher, student], repeats}``; the
``config`` is discriminated by ``type``:

==============  ====================================================================
``perplexity``  cross-entropy and PPL over ``num_batches`` batches of a dataset
``latency``     prefill/decode tokens/s over prompt × generation lengths × batch sizes
``memory``      peak memory and KV-cache bytes per cache format and sequence length
``behavior``    prompts with expected answers, from a cases file
``context``     long-context chunked prefill then decode
==============  ====================================================================

``models`` names what is measured: ``student`` (this target's model), ``teacher`` (the
upcycle teacher), or another target of the manifest by name. The benchmarks run in
``engine/bench``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from caramba.engine.manifest.schema_base import Float, Int, Name, PositiveInt, StrictModel
from caramba.engine.manifest.schema_verify import CacheKind, TokenizerSpec

_QUANT_NAMES = {"q8": "q8_0", "q4": "q4_0"}


class PerplexityBench(StrictModel):
    """Perplexity on held-out tokens."""

    type: Literal["perplexity"]
    dataset: str | None = Field(None, description="token file; None = the target's validation split")
    block_size: PositiveInt | None = Field(None, description="sequence length; None = the data's")
    batch_size: PositiveInt = Field(1, description="sequences per batch")
    num_batches: PositiveInt = Field(100, description="batches averaged")


class LatencyBench(StrictModel):
    """Generation speed."""

    type: Literal["latency"]
    prompt_lengths: list[PositiveInt] = Field(default_factory=lambda: [128, 512], min_length=1,
                                              description="prefill lengths (tokens)")
    generation_lengths: list[PositiveInt] = Field(default_factory=lambda: [64], min_length=1,
                                                  description="decoded tokens per measurement")
    batch_sizes: list[PositiveInt] = Field(default_factory=lambda: [1], min_length=1, description="batch sizes")
    warmup_runs: Int = Field(3, ge=0, description="untimed runs first (compilation, caches)")
    timed_runs: PositiveInt = Field(10, description="timed runs; the median and spread are reported")
    use_cache: bool = Field(True, description="decode incrementally through the KV cache")
    cache_kind: CacheKind = Field("fp16", description="KV-cache storage format")
    cache_policy: Literal["full", "sliding"] = Field(
        "full", description="full: keep every token; sliding: keep the attention window only")


class MemoryBench(StrictModel):
    """Peak memory and KV-cache size."""

    type: Literal["memory"]
    sequence_lengths: list[PositiveInt] = Field(default_factory=lambda: [512, 1024], min_length=1,
                                                description="cached tokens measured")
    batch_sizes: list[PositiveInt] = Field(default_factory=lambda: [1], min_length=1, description="batch sizes")
    measure_peak: bool = Field(True, description="record peak allocator memory")
    measure_kvcache: bool = Field(True, description="record exact KV-cache bytes")
    quantization_modes: list[CacheKind] = Field(
        default_factory=lambda: ["fp16"], min_length=1,
        description="cache formats compared (q8/q4 are accepted as q8_0/q4_0)")

    @field_validator("quantization_modes", mode="before")
    @classmethod
    def _short_names(cls, v: object) -> object:
        return [_QUANT_NAMES.get(m, m) if isinstance(m, str) else m for m in v] if isinstance(v, list) else v


class BehaviorBench(StrictModel):
    """Behavioural prompts with expected answers, read from a cases file."""

    type: Literal["behavior"]
    cases_file: str = Field(description="YAML/JSON file of cases (id, prompt, answer, kind), relative to the manifest")
    tokenizer: TokenizerSpec | None = Field(None, description="None = the dataset's tokenizer")
    max_new_tokens: PositiveInt = Field(32, description="greedy continuation length")


class ContextBench(StrictModel):
    """Long-context behaviour: chunked prefill, then decode."""

    type: Literal["context"]
    context_lengths: list[PositiveInt] = Field(default_factory=lambda: [1024, 2048], min_length=1,
                                               description="total prompt lengths")
    chunk_size: PositiveInt = Field(512, description="prefill chunk (tokens)")
    decode_tokens: PositiveInt = Field(32, description="tokens decoded after the prefill")
    batch_size: PositiveInt = Field(1, description="sequences per measurement")
    cache_kind: CacheKind = Field("fp16", description="KV-cache storage format")
    check_full_prefill: bool = Field(False, description="also prefill each context in one shot (untimed) and "
                                     "record the largest last-position logit difference to the chunked prefill "
                                     "(chunked_vs_full_max_abs); costs one full-length forward per length")


BenchConfig = Annotated[
    PerplexityBench | LatencyBench | MemoryBench | BehaviorBench | ContextBench,
    Field(discriminator="type"),
]


class BenchmarkSpec(StrictModel):
    """One benchmark of a target."""

    id: Name = Field(description="unique within the target; names the CSV/PNG artifacts")
    config: BenchConfig = Field(description="what to measure, discriminated by 'type'")
    models: list[str] = Field(default_factory=lambda: ["student"], min_length=1,
                              description="student, teacher, or names of other targets")
    repeats: PositiveInt = Field(1, description="repetitions (e.g. over seeds); tables show mean ± 95% CI")
