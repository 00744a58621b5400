"""The ``behavior`` and ``context`` benchmarks through a manifest, on a tiny byte-level LM
that has learnt a repeating alphabet (so its answers are known, not random):

* behavior: from a cases file, the cases the model must pass (greedy continuation of the
  alphabet, the right letter by log-prob) pass and the ones it must fail fail; accuracy,
  counts and failed ids in results.json / behavior.csv; a tokenizer that does not fit the
  model's vocabulary is a clear error;
* context: one row per context length, chunked prefill equals a one-shot prefill of the
  same tokens (recorded by the benchmark and re-checked here), cache size and positions
  exact; context.csv and the LaTeX tables are listed in artifacts_index.json.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from caramba.engine.errors import CarambaError
from caramba.engine.infer import CacheSpec, InferenceCache, lm_logits, predict_cache_bytes
from caramba.engine.manifest import load_manifest
from caramba.engine.runner import run_target
from caramba.tests.infer_models import one_thread, tiny_lm  # noqa: F401 (autouse)
from caramba.workspace import Workspace

MANIFEST = """\
version: 2
name: bench_cb
defaults:
  data: {val_frac: 0.1}
  logging: {instrument: plain, eval_iters: 1}
targets:
  - type: experiment
    name: lm
    task: task.language_modeling
    data: {ref: dataset.text, config: {root: text, glob: "*.txt", tokenizer: byte, block_size: 16}}
    system:
      ref: system.language_model
      config:
        model:
          type: TransformerModel
          embedder: {type: token, vocab_size: 256, d_model: 32}
          topology:
            type: StackedTopology
            layers:
              - type: ResidualTopology
                layers: [{type: RMSNormLayer, d_model: 32}, {type: AttentionLayer, d_model: 32, n_heads: 1}]
              - type: ResidualTopology
                layers: [{type: RMSNormLayer, d_model: 32}, {type: SwiGLULayer, d_model: 32, d_ff: 64}]
              - {type: RMSNormLayer, d_model: 32}
              - {type: LinearLayer, d_in: 32, d_out: 256, bias: false}
    objective: objective.next_token_ce
    trainer: trainer.standard
    runs:
      - {id: train, seed: 0, steps: 150, train: {batch_size: 8, lr: 0.02, log_every: 50, device: cpu}}
    benchmarks:
      - id: beh
        config: {type: behavior, cases_file: cases.yml, max_new_tokens: 6}
      - id: ctx
        config: {type: context, context_lengths: [40, 72], chunk_size: 16, decode_tokens: 4, cache_kind: fp32,
                 check_full_prefill: true}
        repeats: 2
"""

CASES = """\
cases:
  - {id: continue_alphabet, kind: exact_match_greedy, match: prefix, prompt: "abcdefghijklmnopqrstabc", answer: "defg"}
  - {id: wrong_continuation, kind: exact_match_greedy, match: prefix, prompt: "abcdefghijklmnopqrstabc", answer: "xyz"}
  - {id: next_letter, kind: choice_logprob, prompt: "klmnopq", choices: ["r", "b"], answer: "r"}
  - {id: wrong_letter, kind: choice_logprob, prompt: "klmnopq", choices: ["r", "b"], answer: "b"}
"""


def _write(tmp_path: Path, manifest: str = MANIFEST) -> Path:
    (tmp_path / "text").mkdir(exist_ok=True)
    (tmp_path / "text" / "alphabet.txt").write_text("abcdefghijklmnopqrst" * 300)
    (tmp_path / "cases.yml").write_text(CASES)
    path = tmp_path / "bench.yml"
    path.write_text(manifest)
    return path


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


def test_behavior_and_context_benchmarks_end_to_end(tmp_path: Path) -> None:
    res = run_target(load_manifest(_write(tmp_path)), workspace=Workspace(tmp_path), console=False, argv=["test"])
    assert res.state == "completed"
    results = json.loads((res.run_dir / "results.json").read_text())
    art = res.run_dir / "artifacts"

    beh = results["benchmarks"]["beh"]
    assert beh["type"] == "behavior" and len(beh["rows"]) == 1
    row = beh["rows"][0]
    assert (row["cases"], row["correct"], row["accuracy"]) == (4, 2, 0.5)
    assert row["failed"].split() == ["wrong_continuation", "wrong_letter"]
    beh_csv = _csv(art / "behavior.csv")
    assert beh_csv[0]["benchmark"] == "beh" and float(beh_csv[0]["accuracy"]) == 0.5

    ctx = results["benchmarks"]["ctx"]
    rows = ctx["rows"]
    assert sorted((r["context_len"], r["repeat"]) for r in rows) == [(40, 0), (40, 1), (72, 0), (72, 1)]
    for r in rows:
        assert r["chunked_vs_full_max_abs"] < 1e-4
        assert r["prefill_tok_s"] > 0 and r["decode_tok_s"] > 0 and r["chunk"] == 16
        assert r["cached_tokens"] == r["context_len"] + 4      # every decoded token is fed back through the cache
    spec = CacheSpec(kind="fp32")
    system = tiny_lm(vocab=256, d_model=32, n_heads=1, n_layers=1, d_ff=64)
    per_token = predict_cache_bytes(system, spec, 1, 1)                           # same shapes as the manifest's
    assert {r["kv_bytes"] for r in rows if r["context_len"] == 40} == {per_token * 44}
    ctx_csv = _csv(art / "context.csv")
    assert {int(r["context_len"]) for r in ctx_csv} == {40, 72} and len(ctx_csv) == 4
    assert "chunked_vs_full_max_abs" in ctx_csv[0]
    tex = (art / "ctx.tex").read_text()
    assert r"\toprule" in tex and r"$\pm$" in tex and "prefill tok/s" in tex   # 2 repeats: mean ± CI

    index = json.loads((art / "artifacts_index.json").read_text())
    listed = {Path(a["path"]).name: a for a in index["artifacts"]}
    assert listed["context.csv"]["kind"] == "table" and listed["context.csv"]["benchmark"] == ["ctx"]
    assert listed["behavior.csv"]["benchmark"] == ["beh"]
    assert listed["ctx.tex"]["kind"] == "latex" and listed["beh.tex"]["kind"] == "latex"
    assert all((res.run_dir / a["path"]).exists() for a in index["artifacts"])


@pytest.mark.parametrize("kind", ["fp32", "q8_0"])
def test_chunked_prefill_equals_full_prefill(kind: str) -> None:
    """The property the context benchmark relies on, checked directly on every position."""
    model = tiny_lm(seed=2)
    ids = torch.randint(0, 64, (2, 50))
    full = lm_logits(model, ids, InferenceCache(CacheSpec(kind=kind)))
    cache = InferenceCache(CacheSpec(kind=kind))
    chunks = torch.cat([lm_logits(model, ids[:, a:a + 16], cache) for a in range(0, 50, 16)], 1)
    assert torch.allclose(chunks, full, atol=1e-4, rtol=1e-4)
    if kind == "fp32":
        assert torch.allclose(full, lm_logits(model, ids), atol=1e-5, rtol=1e-5)  # and equals the no-cache forward


def test_behavior_tokenizer_outside_vocabulary_is_a_clear_error(tmp_path: Path) -> None:
    from caramba.engine.bench.run import load_cases
    from caramba.engine.manifest.schema_verify import TokenizerSpec
    from caramba.engine.verify.eval_cases import score_cases
    from caramba.engine.verify.tokenizers import make_tokenizer

    (tmp_path / "cases.yml").write_text(CASES)
    cases = load_cases(tmp_path / "cases.yml")
    with pytest.raises(CarambaError, match=r"token id 11\d, but the model's vocabulary has 64 tokens"):
        score_cases(tiny_lm(vocab=64), make_tokenizer(TokenizerSpec(type="byte")), cases, 4)
