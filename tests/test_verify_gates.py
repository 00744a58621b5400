"""Verification gates pass and fail on the right side of their bounds (incl. deliberate
failures), fail_fast stops with a report, missing teachers are clear errors."""

from __future__ import annotations

import copy

import pytest
import torch

from caramba.engine.data.base import DataSplits
from caramba.engine.errors import CarambaError
from caramba.engine.infer import GenerationConfig, generate
from caramba.engine.manifest.schema_verify import CompareVerify, EvalVerify, FidelityVerify, KVCacheVerify
from caramba.engine.verify import GateFailed, apply_verdict, run_gate
from caramba.engine.verify.eval_cases import choice_scores
from caramba.engine.verify.tokenizers import make_tokenizer
from caramba.tests.infer_models import dba_attention, one_thread, tiny_lm  # noqa: F401 (autouse)


def _data(vocab: int = 64, n: int = 12, T: int = 16) -> DataSplits:
    g = torch.Generator().manual_seed(0)
    stream = torch.randint(0, vocab, (n, T + 1), generator=g)
    items = [{"input_ids": r[:-1], "target_ids": r[1:]} for r in stream]
    return DataSplits(train=items[:8], val=items[8:])


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def event(self, name: str, run: str | None, **fields) -> None:
        self.events.append((name, fields))


def _perturbed(model: torch.nn.Module, scale: float) -> torch.nn.Module:
    other = copy.deepcopy(model)
    torch.manual_seed(9)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn_like(p) * scale)
    return other


def test_compare_pass_and_deliberate_fail() -> None:
    teacher = tiny_lm()
    data = _data()
    spec = CompareVerify(type="compare", batches=2, attention={"max_mean_l1": 1e-6}, logits={"max_max_l1": 1e-6})
    same = run_gate(spec, copy.deepcopy(teacher), teacher, data)
    assert same.passed and same.metrics["logits_max_l1"] == 0.0
    bad = run_gate(spec, _perturbed(teacher, 0.05), teacher, data)
    assert not bad.passed and len(bad.failures) == 2 and bad.metrics["logits_max_l1"] > 1e-3
    assert "attention_mean_l1" in bad.failures[0]


def test_fidelity_delta_nll_and_ppl_ratio() -> None:
    teacher = tiny_lm()
    data = _data()
    student = _perturbed(teacher, 0.2)
    ok = run_gate(FidelityVerify(type="fidelity", batches=2, max_delta_nll=10.0, max_ppl_ratio=100.0), student,
                  teacher, data)
    assert ok.passed and ok.details[0]["split"] == "val"
    assert ok.metrics["ppl_ratio"] == pytest.approx(torch.tensor(ok.metrics["delta_nll"]).exp().item(), rel=1e-6)
    tight = run_gate(FidelityVerify(type="fidelity", batches=2, max_delta_nll=-1.0), student, teacher, data)
    assert not tight.passed and "delta_nll" in tight.failures[0]


def test_kvcache_gate_uses_exact_bytes() -> None:
    teacher = tiny_lm()                                           # k, v: 2 heads x 32 each per layer
    student = tiny_lm(attention={"mode": "decoupled", "sem_dim": 16, "geo_dim": 16, "attn_dim": 64,
                                 "n_heads": 2})                   # k_sem 8 + k_geo 8 + v 32 per head
    ok = run_gate(KVCacheVerify(type="kvcache", min_reduction_ratio=1.3, sequence_length=64), student, teacher, None)
    assert ok.passed and ok.metrics["reduction_ratio"] == pytest.approx(64 / 48)
    assert ok.metrics["teacher_bytes"] == 2 * 2 * 64 * 2 * (32 + 32)   # layers x heads x seq x fp16 x (k+v)
    fail = run_gate(KVCacheVerify(type="kvcache", min_reduction_ratio=2.0), student, teacher, None)
    assert not fail.passed


def test_eval_cases_choice_and_greedy() -> None:
    model = tiny_lm(vocab=256)
    tok = make_tokenizer(type("T", (), {"type": "byte", "path": None})())
    scores = choice_scores(model, tok, "x=", ["a", "b", "c"])
    best, worst = "abc"[scores.index(max(scores))], "abc"[scores.index(min(scores))]
    cont = generate(model, torch.tensor([list(b"q: ")]), GenerationConfig(max_new_tokens=4)).new_tokens[0]
    text = bytes(cont).decode("utf-8", errors="replace")
    cases = [
        {"id": "right", "prompt": "x=", "answer": best, "kind": "choice_logprob", "choices": ["a", "b", "c"]},
        {"id": "wrong", "prompt": "x=", "answer": worst, "kind": "choice_logprob", "choices": ["a", "b", "c"]},
        {"id": "greedy", "prompt": "q: ", "answer": text[:2], "kind": "exact_match_greedy", "match": "prefix"},
        {"id": "int", "prompt": "q: ", "answer": 7, "kind": "int_greedy"},
    ]
    spec = EvalVerify(type="eval", tokenizer={"type": "byte"}, max_new_tokens=4, cases=cases,
                      thresholds={"min_student_accuracy": 0.5, "max_accuracy_drop": 0.0})
    v = run_gate(spec, model, copy.deepcopy(model), None)
    got = {d["id"]: d["correct"] for d in v.details if d["model"] == "student"}
    assert got == {"right": True, "wrong": False, "greedy": True, "int": got["int"]}
    assert v.passed and v.metrics["accuracy_drop"] == 0.0
    strict = spec.model_copy(update={"thresholds": spec.thresholds.model_copy(update={"min_student_accuracy": 1.0})})
    assert not run_gate(strict, model, copy.deepcopy(model), None).passed


def test_fail_fast_raises_report_else_records() -> None:
    teacher = tiny_lm()
    spec = KVCacheVerify(type="kvcache", min_reduction_ratio=5.0, fail_fast=True)
    verdict = run_gate(spec, teacher, teacher, None)
    rec = Recorder()
    with pytest.raises(GateFailed, match="reduction_ratio = 1 < the bound 5"):
        apply_verdict("distill", spec, verdict, rec)
    assert rec.events[0][0] == "verify" and rec.events[0][1]["verdict"] == "fail"
    row = apply_verdict("distill", spec.model_copy(update={"fail_fast": False}), verdict, rec)
    assert row["passed"] is False and row["failures"]


def test_teacher_required() -> None:
    with pytest.raises(CarambaError, match="compares against a teacher"):
        run_gate(FidelityVerify(type="fidelity", max_delta_nll=0.1), tiny_lm(), None, _data())
