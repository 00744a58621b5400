"""Behavioural cases: the ``eval`` verify gate and the ``behavior`` benchmark.

A case is ``{id, prompt, answer, kind, choices?, match?}``:

* ``choice_logprob`` — each choice is scored by the summed log-probability of its tokens
  after the prompt; the best choice is the model's answer;
* ``int_greedy`` / ``float_greedy`` — greedy continuation (``max_new_tokens``), the first
  integer / number in it is the answer (floats compare with ``math.isclose(rel_tol=1e-4,
  abs_tol=1e-6)``);
* ``exact_match_greedy`` — the continuation compared with ``match``: ``exact`` (whole
  continuation, surrounding whitespace ignored), ``first_line`` (its first line),
  ``prefix`` (it starts with the answer, leading whitespace ignored).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from caramba.engine.errors import CarambaError
from caramba.engine.infer.generate import GenerationConfig, generate, lm_logits
from caramba.engine.verify.gates import Verdict, _bound
from caramba.engine.verify.measure import evaluating
from caramba.engine.verify.tokenizers import PromptTokenizer, make_tokenizer

_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|-?\.\d+(?:[eE][-+]?\d+)?")


def _ids(tok: PromptTokenizer, text: str, model: nn.Module) -> torch.Tensor:
    ids = tok.encode(text)
    if not ids:
        raise CarambaError(f"prompt {text!r} encodes to no tokens", fix="give every case a non-empty prompt")
    vocab = _vocab_size(model)
    if vocab is not None and max(ids) >= vocab:
        raise CarambaError(f"the {tok.name} tokenizer turns {text[:40]!r} into token id {max(ids)}, but the model's "
                           f"vocabulary has {vocab} tokens",
                           fix="give the benchmark/eval the tokenizer the model was trained with (tokenizer: ...)")
    p = next(model.parameters())
    return torch.tensor([ids], dtype=torch.long, device=p.device)


def _vocab_size(model: nn.Module) -> int | None:
    for m in model.modules():
        v = getattr(getattr(m, "config", None), "vocab_size", None)
        if isinstance(v, int):
            return v
    return None


def choice_scores(model: nn.Module, tok: PromptTokenizer, prompt: str, choices: list[str]) -> list[float]:
    """Summed log-probability of each choice's tokens after ``prompt``."""
    base = tok.encode(prompt)
    scores = []
    with evaluating(model):
        for choice in choices:
            ids = _ids(tok, prompt + choice, model)             # (1, T)
            n = ids.shape[1] - len(base)                        # tokens belonging to the choice
            if n <= 0 or not base:
                raise CarambaError(f"choice {choice!r} after prompt {prompt!r} adds no tokens",
                                   fix="give every case a non-empty prompt and non-empty choices")
            logp = torch.log_softmax(lm_logits(model, ids[:, :-1]).float(), -1)[0]   # (T-1, V)
            tgt = ids[0, 1:]
            scores.append(float(logp[-n:].gather(1, tgt[-n:, None]).sum()))
    return scores


def case_answer(model: nn.Module, tok: PromptTokenizer, case: Any, max_new_tokens: int) -> tuple[Any, str]:
    """The model's answer to one case and the raw text it was read from."""
    if case.kind == "choice_logprob":
        scores = choice_scores(model, tok, case.prompt, list(case.choices))
        best = max(range(len(scores)), key=lambda i: scores[i])
        return case.choices[best], f"scores={[round(s, 3) for s in scores]}"
    out = generate(model, _ids(tok, case.prompt, model), GenerationConfig(max_new_tokens=max_new_tokens))
    text = tok.decode(out.new_tokens[0])
    if case.kind == "int_greedy":
        m = _INT.search(text)
        return (int(m.group()) if m else None), text
    if case.kind == "float_greedy":
        m = _FLOAT.search(text)
        return (float(m.group()) if m else None), text
    return text, text


def is_correct(case: Any, answer: Any) -> bool:
    if answer is None:
        return False
    if case.kind == "choice_logprob":
        return str(answer) == str(case.answer)
    if case.kind == "int_greedy":
        return answer == int(case.answer)
    if case.kind == "float_greedy":
        return math.isclose(answer, float(case.answer), rel_tol=1e-4, abs_tol=1e-6)
    want, text = str(case.answer), str(answer)
    if case.match == "exact":
        return text.strip() == want.strip()
    if case.match == "first_line":
        return (text.strip().splitlines() or [""])[0].strip() == want.strip()
    return text.lstrip().startswith(want)


def score_cases(model: nn.Module, tok: PromptTokenizer, cases: list[Any], max_new_tokens: int) -> tuple[float, list[dict[str, Any]]]:
    rows = []
    for case in cases:
        answer, raw = case_answer(model, tok, case, max_new_tokens)
        rows.append({"id": case.id, "kind": case.kind, "expected": case.answer, "answer": answer,
                     "correct": is_correct(case, answer), "output": raw})
    return sum(r["correct"] for r in rows) / len(rows), rows


def eval_gate(spec: Any, student: nn.Module, teacher: nn.Module | None, *, base_dir: Path | None = None) -> Verdict:
    tok = make_tokenizer(spec.tokenizer, base_dir)
    th = spec.thresholds
    if th.max_accuracy_drop is not None and teacher is None:
        raise CarambaError("eval.thresholds.max_accuracy_drop needs a teacher and this run has none",
                           fix="use min_student_accuracy only, or upcycle from a teacher")
    s_acc, s_rows = score_cases(student, tok, spec.cases, spec.max_new_tokens)
    v = Verdict("eval", True, details=[{"model": "student", **r} for r in s_rows])
    _bound(v, "student_accuracy", s_acc, th.min_student_accuracy, lower=True)
    if teacher is not None:
        t_acc, t_rows = score_cases(teacher, tok, spec.cases, spec.max_new_tokens)
        v.details += [{"model": "teacher", **r} for r in t_rows]
        v.metrics["teacher_accuracy"] = t_acc
        _bound(v, "accuracy_drop", t_acc - s_acc, th.max_accuracy_drop)
    return v
