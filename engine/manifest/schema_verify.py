"""``runs[].verify``: quality gates run after a run trains (manifest reference, "Verification").

One mapping discriminated by ``type``:

* ``compare`` — student vs teacher activations: mean/max L1 of attention outputs and/or
  logits over ``batches`` batches.
* ``fidelity`` — loss-based: ``max_delta_nll`` (student NLL − teacher NLL) and/or
  ``max_ppl_ratio`` (student PPL ÷ teacher PPL) on ``split``.
* ``eval`` — behavioural cases (greedy answers or choice log-probabilities) with accuracy
  thresholds.
* ``kvcache`` — the student's KV cache must be at least ``min_reduction_ratio`` times
  smaller than the teacher's.

``fail_fast: true`` stops the manifest when the gate fails; otherwise the failure is
recorded in the run's results. The gates themselves run in ``engine/verify``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from caramba.engine.manifest.schema_base import Float, Int, Fraction, PositiveInt, StrictModel, problem

CacheKind = Literal["fp32", "fp16", "q8_0", "q4_0"]


class L1Thresholds(StrictModel):
    """Upper bounds on the L1 distance between student and teacher tensors."""

    max_mean_l1: Float | None = Field(None, ge=0, description="bound on the mean absolute difference")
    max_max_l1: Float | None = Field(None, ge=0, description="bound on the worst absolute difference")


class CompareVerify(StrictModel):
    """Compare student and teacher outputs numerically."""

    type: Literal["compare"]
    batches: PositiveInt = Field(5, description="batches to compare")
    fail_fast: bool = Field(False, description="stop the manifest when the gate fails")
    attention: L1Thresholds | None = Field(None, description="bounds on attention-block outputs")
    logits: L1Thresholds | None = Field(None, description="bounds on the logits")

    @model_validator(mode="after")
    def _something_to_compare(self) -> CompareVerify:
        if self.attention is None and self.logits is None:
            raise problem("compare verification needs 'attention' and/or 'logits' thresholds",
                          "add e.g. 'logits: {max_mean_l1: 0.05}'")
        return self


class FidelityVerify(StrictModel):
    """A loss-based quality gate."""

    type: Literal["fidelity"]
    batches: PositiveInt = Field(5, description="batches to evaluate")
    split: Literal["auto", "train", "val"] = Field("auto", description="auto = val if the data has one")
    max_delta_nll: Float | None = Field(None, description="bound on student NLL − teacher NLL")
    max_ppl_ratio: Float | None = Field(None, gt=0, description="bound on student PPL ÷ teacher PPL")
    fail_fast: bool = Field(False, description="stop the manifest when the gate fails")

    @model_validator(mode="after")
    def _has_bound(self) -> FidelityVerify:
        if self.max_delta_nll is None and self.max_ppl_ratio is None:
            raise problem("fidelity verification needs max_delta_nll and/or max_ppl_ratio",
                          "add e.g. 'max_delta_nll: 0.05'")
        return self


class TokenizerSpec(StrictModel):
    """Which tokenizer turns prompts into tokens."""

    type: Literal["byte", "bpe", "tiktoken", "llama", "gpt2", "hf"] = Field(description="tokenizer family")
    path: str | None = Field(None, description="local tokenizer file or folder (bpe, hf, llama)")
    name: str | None = Field(None, description="encoding name for tiktoken, e.g. gpt2")


class EvalThresholds(StrictModel):
    """Accuracy gates of an eval verification."""

    min_student_accuracy: Fraction | None = Field(None, description="the student must reach this accuracy")
    max_accuracy_drop: Fraction | None = Field(None, description="teacher accuracy − student accuracy bound")


class EvalCase(StrictModel):
    """One behavioural test case."""

    id: str = Field(description="case name in reports")
    prompt: str = Field(description="text fed to the model")
    answer: Any = Field(description="expected answer (an int/float/string, or one of 'choices')")
    kind: Literal["choice_logprob", "int_greedy", "float_greedy", "exact_match_greedy"] = Field(
        description="how the answer is read: rank choices by log-prob, or parse the greedy continuation")
    choices: list[str] | None = Field(None, description="candidate answers for choice_logprob")
    match: Literal["exact", "first_line", "prefix"] = Field(
        "exact", description="how exact_match_greedy compares the continuation")

    @model_validator(mode="after")
    def _choices(self) -> EvalCase:
        if self.kind == "choice_logprob":
            if not self.choices:
                raise problem(f"case '{self.id}': choice_logprob needs 'choices'", "add choices: [A, B, ...]")
            if str(self.answer) not in self.choices:
                raise problem(f"case '{self.id}': answer {self.answer!r} is not one of the choices",
                              f"make the answer one of {self.choices}")
        return self


class EvalVerify(StrictModel):
    """Behavioural evaluation of student (and teacher)."""

    type: Literal["eval"]
    tokenizer: TokenizerSpec = Field(description="how prompts are tokenised")
    max_new_tokens: PositiveInt = Field(32, description="greedy continuation length")
    thresholds: EvalThresholds = Field(default_factory=EvalThresholds, description="accuracy gates")
    cases: list[EvalCase] = Field(min_length=1, description="the test cases")
    fail_fast: bool = Field(False, description="stop the manifest when the gate fails")


class KVCacheVerify(StrictModel):
    """KV-cache memory reduction of the student against the teacher."""

    type: Literal["kvcache"]
    min_reduction_ratio: Float = Field(gt=0, description="teacher cache bytes ÷ student cache bytes lower bound")
    cache_kind: CacheKind = Field("fp16", description="cache storage format for both models")
    sequence_length: PositiveInt = Field(1024, description="tokens held in the cache when measured")
    batch_size: PositiveInt = Field(1, description="sequences held in the cache")
    fail_fast: bool = Field(False, description="stop the manifest when the gate fails")


VerifySpec = Annotated[
    CompareVerify | FidelityVerify | EvalVerify | KVCacheVerify,
    Field(discriminator="type"),
]
