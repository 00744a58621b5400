"""Dry-run plan from a real manifest, and the `caramba layers` / `caramba presets` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caramba.cli import main
from caramba.engine.cli_build import list_presets
from caramba.engine.manifest import load_manifest
from caramba.engine.plan import make_plan

MANIFEST = """\
version: 2
name: plan_demo
notes: two targets, one model
vars: {d: 48, heads: 4, layers: 3, vocab: 96}
targets:
  - type: experiment
    name: lm
    description: tiny GQA model
    task: task.language_modeling
    data: {ref: dataset.random_tokens, config: {vocab_size: '${vocab}', block_size: 16}}
    system:
      ref: system.language_model
      config:
        model:
          type: transformer
          tied_embeddings: true
          embedder: {type: token, vocab_size: '${vocab}', d_model: '${d}'}
          topology:
            type: stacked
            layers:
              - type: nested
                repeat: '${layers}'
                layers:
                  - type: residual
                    layers:
                      - {type: rms_norm, d_model: '${d}'}
                      - {type: attention, d_model: '${d}', n_heads: '${heads}', n_kv_heads: 2, mode: gqa}
                  - type: residual
                    layers:
                      - {type: rms_norm, d_model: '${d}'}
                      - {type: swiglu, d_model: '${d}', d_ff: 64}
              - {type: rms_norm, d_model: '${d}'}
              - {type: linear, d_in: '${d}', d_out: '${vocab}', bias: false}
    objective: objective.next_token_ce
    trainer: trainer.standard
    runs:
      - {id: short, steps: 10, seed: 3, train: {batch_size: 4, block_size: 16, lr: 0.001}}
      - {id: long, steps: 500, train: {batch_size: 8, lr: 0.0003}}
  - type: experiment
    name: mlp
    task: task.classification
    data: {ref: dataset.sklearn, config: {name: digits}}
    system: {ref: system.mlp_classifier, config: {d_in: 64, hidden: [32], n_classes: 10}}
    objective: objective.classification_ce
    trainer: trainer.standard
    runs: [{id: fit, steps: 5}]
"""


def expected_lm_params(d=48, heads=4, kv=2, layers=3, vocab=96, ff=64):
    hd = d // heads
    attn = d * d * 2 + 2 * d * kv * hd  # q, o + k, v
    mlp = d * 2 * ff + ff * d
    return vocab * d + layers * (attn + mlp + 2 * d) + d  # tied head counted once


@pytest.fixture
def manifest(tmp_path: Path):
    path = tmp_path / "plan_demo.yml"
    path.write_text(MANIFEST)
    return load_manifest(path)


def test_plan_counts_every_target_on_meta(manifest):
    plan = make_plan(manifest)
    lm, mlp = plan.targets
    assert lm.params == expected_lm_params()
    assert mlp.params == 64 * 32 + 32 + 32 * 10 + 10
    assert [r.id for r in lm.runs] == ["short", "long"]
    short = lm.runs[0]
    assert (short.steps, short.seed, short.batch_size, short.block_size, short.lr) == (10, 3, 4, 16, 0.001)
    assert lm.components["system"] == "system.language_model" and lm.components["data"] == "dataset.random_tokens"
    blocks = lm.tree.children[0].children[1].children[0]  # system → model → topology → nested
    assert blocks.type == "NestedTopology" and len(blocks.children) == 6


def test_plan_single_target_render_and_json(manifest):
    plan = make_plan(manifest, "mlp")
    assert [t.name for t in plan.targets] == ["mlp"]
    text = make_plan(manifest, "lm").render_text()
    assert "target lm [experiment]" in text and f"{expected_lm_params():,}" in text
    assert "× 3" in text  # the repeated block pair is folded
    assert "AttentionLayer" in text and "short" in text and "0.001" in text
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["targets"][0]["tree"]["type"] == "system.mlp_classifier"


def test_process_targets_are_listed_without_a_model():
    from types import SimpleNamespace

    manifest = SimpleNamespace(name="m", notes="", source_file=None, defaults=None, targets=[
        SimpleNamespace(name="write", type="process", team={"writer": "scribe"}, process={"type": "paper_write"})])
    (t,) = make_plan(manifest).targets
    assert (t.type, t.params, t.tree, t.runs) == ("process", None, None, [])
    assert t.components == {"team.writer": "scribe", "process": "paper_write"}
    assert "target write [process]" in make_plan(manifest).render_text()


def test_cli_layers_catalog_and_detail(capsys):
    assert main(["layers", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["AttentionLayer"]["aliases"] == ["attention"]
    assert rows["NestedTopology"]["family"] == "topology type"
    assert "system.language_model" in rows and "GPT2Initializer" in rows
    assert main(["layers", "attention", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    fields = {f["name"]: f for f in info["fields"]}
    assert info["name"] == "AttentionLayer"
    assert fields["n_heads"]["required"] and fields["rope_base"]["default"] == 10000.0
    assert fields["mode"]["type"] == "standard | gqa"
    assert {"standard", "gqa"} <= {v["name"] for v in info["variants"]}
    assert main(["layers", "SwiGLULayer"]) == 0
    out = capsys.readouterr().out
    assert "d_ff" in out and "(required)" in out and "Llama" in out


def test_cli_layers_lists_data_training_components_and_manifest_sections(capsys):
    assert main(["layers", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["dataset.text"]["family"] == "dataset" and rows["trainer.standard"]["family"] == "trainer"
    assert rows["objective.next_token_ce"]["family"] == "objective" and "task.language_modeling" in rows
    sections = {n for n, r in rows.items() if r["family"] == "manifest section"}
    assert {"train", "run", "defaults.runtime", "defaults.logging", "benchmarks.latency", "verify.compare"} <= sections
    assert main(["layers", "train", "--json"]) == 0
    fields = {f["name"]: f for f in json.loads(capsys.readouterr().out)["fields"]}
    assert fields["compile_mode"]["default"] == "default"
    assert "reduce-overhead" in fields["compile_mode"]["type"] and "CUDA graph" in fields["compile_mode"]["description"]
    assert fields["block_size"]["type"] == "int | None"  # constrained types print as their base type
    assert fields["num_workers"]["type"] == "int" and fields["num_workers"]["default"] == 0
    assert main(["layers", "dataset.text", "--json"]) == 0
    assert "tokenizer" in {f["name"] for f in json.loads(capsys.readouterr().out)["fields"]}
    assert main(["layers", "defaults.runtime"]) == 0
    out = capsys.readouterr().out
    assert "manifest section" in out and "save_every" in out and "allow_python_impl" in out


def test_cli_layers_unknown_type_is_a_clean_error(capsys):
    assert main(["layers", "RMSNormLyer"]) == 2
    err = capsys.readouterr().err
    assert "unknown component 'RMSNormLyer'" in err and "did you mean 'RMSNormLayer'" in err
    assert "Traceback" not in err


def test_presets_listing(tmp_path: Path, capsys):
    d = tmp_path / "manifests"
    d.mkdir()
    (d / "a.yml").write_text("version: 2\nname: alpha\nnotes: |\n  first line\n  second line\n")
    (d / "b.yml").write_text("name: [unclosed\n")
    rows = list_presets(d)
    assert rows[0] == {"file": "manifests/a.yml", "name": "alpha", "notes": "first line second line"}
    assert rows[1]["error"].startswith("unreadable")
    assert main(["presets", "--json"]) == 0
    shipped = json.loads(capsys.readouterr().out)
    for row in shipped:  # the shipped presets: names straight from the files
        assert row["name"] == load_manifest(Path(__file__).parent.parent / row["file"]).name
