"""Run a target's ``benchmarks`` after its runs: every benchmark × model × repeat.

::

    results = run_benchmarks(target, models={"student": system, "teacher": teacher},
                             data=splits, recorder=recorder, base_dir=manifest_dir)
    results["ppl"] = {"type": "perplexity", "models": [...], "repeats": 3, "device": "...",
                      "versions": {...}, "rows": [{"model": "student", "repeat": 0, "seed": 0,
                                                   "nll": ..., "ppl": ...}, ...]}

Repeat ``r`` uses seed ``r`` (data sample, random prompts), so tables can show mean ±
95% CI over repeats. Each benchmark emits a ``benchmark`` event with its id, type and
row count. ``models`` names resolve through :func:`caramba.engine.bench.models.resolve_models`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from caramba.engine.bench import measures
from caramba.engine.bench.timing import device_label
from caramba.engine.data.base import DataSplits
from caramba.engine.errors import CarambaError


def versions() -> dict[str, str]:
    import platform

    import triton
    return {"torch": torch.__version__, "triton": triton.__version__, "python": platform.python_version()}


def load_cases(path: Path) -> list[Any]:
    """Behaviour cases from a YAML/JSON file: a list, or ``{cases: [...]}``."""
    import yaml
    from pydantic import ValidationError

    from caramba.engine.manifest.schema_verify import EvalCase

    if not path.is_file():
        raise CarambaError(f"behavior cases file {path} not found", fix="cases_file is relative to the manifest's folder")
    raw = yaml.safe_load(path.read_text()) if path.suffix in (".yml", ".yaml") else json.loads(path.read_text())
    items = raw.get("cases") if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not items:
        raise CarambaError(f"{path}: expected a non-empty list of cases (or {{cases: [...]}})")
    try:
        return [EvalCase.model_validate(c) for c in items]
    except ValidationError as e:
        err = e.errors()[0]
        raise CarambaError(f"{path}: case {err['loc']}: {err['msg']}",
                           fix="each case needs id, prompt, answer, kind (choices for choice_logprob)") from None


def _behavior(model: nn.Module, cfg: Any, base_dir: Path | None, data_tokenizer: str | None) -> list[dict[str, Any]]:
    from caramba.engine.manifest.schema_verify import TokenizerSpec
    from caramba.engine.verify.eval_cases import score_cases
    from caramba.engine.verify.tokenizers import make_tokenizer

    spec = cfg.tokenizer
    if spec is None:
        if data_tokenizer != "byte":
            raise CarambaError("behavior benchmark: give 'tokenizer' (the dataset's tokenizer is not byte)",
                               fix="add tokenizer: {type: hf, path: ...}")
        spec = TokenizerSpec(type="byte")
    path = Path(cfg.cases_file)
    cases = load_cases(path if path.is_absolute() or base_dir is None else base_dir / path)
    acc, rows = score_cases(model, make_tokenizer(spec, base_dir), cases, cfg.max_new_tokens)
    return [{"accuracy": acc, "cases": len(rows), "correct": sum(r["correct"] for r in rows),
             "failed": " ".join(str(r["id"]) for r in rows if not r["correct"])}]


def run_benchmarks(target: Any, *, models: dict[str, nn.Module], data: DataSplits | None, recorder: Any,
                   base_dir: Path | None = None, data_tokenizer: str | None = None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for bench in target.benchmarks:
        cfg = bench.config
        rows: list[dict[str, Any]] = []
        dev = None
        for name in bench.models:
            model = models[name]
            dev = next(model.parameters()).device
            for r in range(bench.repeats):
                if cfg.type == "perplexity":
                    if cfg.dataset is not None:
                        raise CarambaError(f"benchmark '{bench.id}': perplexity.dataset is not supported yet",
                                           fix="leave dataset unset to use the target's validation split")
                    if data is None:
                        raise CarambaError(f"benchmark '{bench.id}' needs the target's data")
                    got = measures.perplexity(model, cfg, data.val if data.val is not None else data.train, r)
                elif cfg.type == "latency":
                    got = measures.latency(model, cfg, r)
                elif cfg.type == "memory":
                    got = measures.memory(model, cfg, r)
                elif cfg.type == "context":
                    got = measures.context(model, cfg, r)
                else:
                    got = _behavior(model, cfg, base_dir, data_tokenizer)
                rows += [{"model": name, "repeat": r, "seed": r, **row} for row in got]
        out[bench.id] = {"type": cfg.type, "models": list(bench.models), "repeats": bench.repeats,
                         "device": device_label(dev) if dev is not None else "", "versions": versions(), "rows": rows}
        recorder.event("benchmark", None, id=bench.id, type=cfg.type, rows=len(rows), models=list(bench.models))
    return out
