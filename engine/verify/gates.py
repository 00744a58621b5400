"""The verification gates of ``runs[].verify`` (types in ``manifest/schema_verify.py``).

Each gate returns a :class:`Verdict`: ``passed``, the measured ``metrics``, the
``thresholds`` it compared against and one ``failures`` line per violated bound (what
was measured, the bound, by how much). :func:`run_gate` dispatches on ``spec.type``.

* ``compare``  — mean/max |student − teacher| of each attention block's output and/or
  of the logits, over ``batches`` batches (both models see the same tokens).
* ``fidelity`` — student NLL − teacher NLL (``max_delta_nll``) and PPL ratio
  (``max_ppl_ratio``) on ``split``.
* ``eval``     — behavioural cases (see :mod:`caramba.engine.verify.eval_cases`).
* ``kvcache``  — teacher cache bytes ÷ student cache bytes at ``sequence_length`` ×
  ``batch_size`` in ``cache_kind``, computed exactly from the layer shapes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from caramba.engine.data.base import DataSplits
from caramba.engine.errors import CarambaError
from caramba.engine.infer.cache_set import CacheSpec, attention_layers, predict_cache_bytes
from caramba.engine.infer.generate import lm_logits
from caramba.engine.verify.measure import batches, capture_attention, evaluating, mean_nll, split_dataset


@dataclass
class Verdict:
    type: str
    passed: bool
    metrics: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        head = f"{self.type}: {'PASS' if self.passed else 'FAIL'}"
        return head if self.passed else head + " — " + "; ".join(self.failures)


def _bound(verdict: Verdict, name: str, value: float, limit: float | None, *, lower: bool = False) -> None:
    """Record ``value`` and fail the verdict when it is beyond ``limit``."""
    verdict.metrics[name] = value
    if limit is None:
        return
    verdict.thresholds[name] = limit
    bad = value < limit if lower else value > limit
    if bad:
        verdict.passed = False
        verdict.failures.append(f"{name} = {value:.6g} {'<' if lower else '>'} the bound {limit:.6g}")


def _need_teacher(teacher: nn.Module | None, kind: str) -> nn.Module:
    if teacher is None:
        raise CarambaError(f"verify type '{kind}' compares against a teacher, and this run has none",
                           fix="use trainer.upcycle with train.teacher_ckpt, or drop the verify block")
    return teacher


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def compare_gate(spec: Any, student: nn.Module, teacher: nn.Module | None, data: DataSplits, *,
                 batch_size: int = 4) -> Verdict:
    teacher = _need_teacher(teacher, "compare")
    v = Verdict("compare", True)
    ds, _ = split_dataset(data, "auto")
    bs = batches(ds, batch_size, spec.batches, _device(student))
    n_s, n_t = len(attention_layers(student)), len(attention_layers(teacher))
    if spec.attention is not None and n_s != n_t:
        raise CarambaError(f"compare.attention needs the same number of attention layers (student {n_s}, "
                           f"teacher {n_t})", fix="compare logits only, or upcycle block for block")
    att_sum = att_max = log_sum = log_max = 0.0
    att_n = log_n = 0
    with evaluating(student, teacher):
        for b in bs:
            with capture_attention(student) as s_out, capture_attention(teacher) as t_out:
                ls, lt = lm_logits(student, b["input_ids"]).float(), lm_logits(teacher, b["input_ids"]).float()
            for a, c in zip(s_out, t_out):
                d = (a.float() - c.float()).abs()
                att_sum, att_n, att_max = att_sum + float(d.sum()), att_n + d.numel(), max(att_max, float(d.max()))
            d = (ls - lt).abs()
            log_sum, log_n, log_max = log_sum + float(d.sum()), log_n + d.numel(), max(log_max, float(d.max()))
    if spec.attention is not None:
        _bound(v, "attention_mean_l1", att_sum / max(att_n, 1), spec.attention.max_mean_l1)
        _bound(v, "attention_max_l1", att_max, spec.attention.max_max_l1)
    if spec.logits is not None:
        _bound(v, "logits_mean_l1", log_sum / max(log_n, 1), spec.logits.max_mean_l1)
        _bound(v, "logits_max_l1", log_max, spec.logits.max_max_l1)
    return v


def fidelity_gate(spec: Any, student: nn.Module, teacher: nn.Module | None, data: DataSplits, *,
                  batch_size: int = 4) -> Verdict:
    teacher = _need_teacher(teacher, "fidelity")
    ds, split = split_dataset(data, spec.split)
    bs = batches(ds, batch_size, spec.batches, _device(student))
    s, t = mean_nll(student, bs), mean_nll(teacher, bs)
    v = Verdict("fidelity", True, metrics={"student_nll": s["nll"], "teacher_nll": t["nll"],
                                           "student_ppl": s["ppl"], "teacher_ppl": t["ppl"], "tokens": s["tokens"]},
                details=[{"split": split}])
    _bound(v, "delta_nll", s["nll"] - t["nll"], spec.max_delta_nll)
    _bound(v, "ppl_ratio", s["ppl"] / t["ppl"], spec.max_ppl_ratio)
    return v


def kvcache_gate(spec: Any, student: nn.Module, teacher: nn.Module | None) -> Verdict:
    teacher = _need_teacher(teacher, "kvcache")
    cs = CacheSpec(kind=spec.cache_kind)
    s = predict_cache_bytes(student, cs, spec.sequence_length, spec.batch_size)
    t = predict_cache_bytes(teacher, cs, spec.sequence_length, spec.batch_size)
    if s == 0:
        raise CarambaError("the student has no key/value cache to measure", fix="drop the kvcache verify block")
    v = Verdict("kvcache", True, metrics={"student_bytes": float(s), "teacher_bytes": float(t)})
    _bound(v, "reduction_ratio", t / s, spec.min_reduction_ratio, lower=True)
    return v


def run_gate(spec: Any, student: nn.Module, teacher: nn.Module | None, data: DataSplits | None, *,
             base_dir: Path | None = None, batch_size: int = 4) -> Verdict:
    """Run one ``runs[].verify`` spec."""
    if spec.type == "kvcache":
        return kvcache_gate(spec, student, teacher)
    if spec.type == "eval":
        from caramba.engine.verify.eval_cases import eval_gate
        return eval_gate(spec, student, teacher, base_dir=base_dir)
    if data is None:
        raise CarambaError(f"verify type '{spec.type}' needs the run's data")
    if spec.type == "compare":
        return compare_gate(spec, student, teacher, data, batch_size=batch_size)
    if spec.type == "fidelity":
        return fidelity_gate(spec, student, teacher, data, batch_size=batch_size)
    raise CarambaError(f"unknown verify type '{spec.type}'", fix="use compare | fidelity | eval | kvcache")
