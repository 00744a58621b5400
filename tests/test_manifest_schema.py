"""Lowering (aliases, repeat), the schema and the public Manifest API."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from caramba.engine.errors import CarambaError, ManifestError
from caramba.engine.manifest import (
    ComponentSpec, ExperimentTarget, Manifest, ProcessTarget, RunSpec, TrainConfig, load_manifest,
)
from caramba.engine.manifest.lowering import Lowerer
from caramba.engine.manifest.source import IssueCollector, Origin, SourceMap
from caramba.tests.support.manifests import GOOD, TOPO, line_of, mutate, write

ALIASED = (GOOD.replace("type: TransformerModel", "type: transformer")
           .replace("type: StackedTopology", "type: stacked").replace("type: NestedTopology", "type: nested")
           .replace("type: ResidualTopology", "type: residual").replace("type: RMSNormLayer", "type: rms_norm")
           .replace("type: AttentionLayer", "type: attention").replace("type: SwiGLULayer", "type: swiglu")
           .replace("type: LinearLayer", "type: linear"))


def test_lower_case_aliases_are_canonicalised(tmp_path: Path) -> None:
    lowered = load_manifest(write(tmp_path, ALIASED))
    plain = load_manifest(write(tmp_path, GOOD, "plain.yml"))
    assert lowered.targets[0].system.config == plain.targets[0].system.config
    model = lowered.targets[0].system.config["model"]
    assert (model["type"], model["embedder"]["type"], model["topology"]["type"]) == (
        "TransformerModel", "TokenEmbedder", "StackedTopology")


def test_repeat_expands_nested_copies_with_source_map() -> None:
    block = {"type": "nested", "repeat": 2, "layers": [
        {"type": "linear", "d_in": 4, "d_out": 4},
        {"type": "nested", "repeat": 3, "layers": [{"type": "dropout", "p": 0.1}]},
    ]}
    data = {"targets": [{"type": "experiment", "system": {"ref": "system.x", "config": {"topology": block}}}]}
    base = ("targets", 0, "system", "config", "topology")
    smap = SourceMap({
        base + ("layers", 1, "layers", 0, "p"): Origin("m.yml", 12, 9, base + ("layers", 1, "layers", 0, "p")),
    })
    lowerer = Lowerer(smap, IssueCollector(smap, "m.yml"))
    out = lowerer.lower(data)["targets"][0]["system"]["config"]["topology"]
    assert "repeat" not in out and out["type"] == "NestedTopology"
    assert [layer["type"] for layer in out["layers"]] == ["LinearLayer", "NestedTopology"] * 2
    assert [d["type"] for d in out["layers"][3]["layers"]] == ["DropoutLayer"] * 3
    # the 3rd dropout of the 2nd copy maps back to the one dropout as written
    origin, source = lowerer.smap.locate(base + ("layers", 3, "layers", 2, "p"))
    assert origin is not None and origin.line == 12 and source == base + ("layers", 1, "layers", 0, "p")


def test_repeat_must_be_a_positive_integer(tmp_path: Path) -> None:
    text = mutate(GOOD, "repeat: 2", "repeat: two")
    with pytest.raises(ManifestError) as info:
        load_manifest(write(tmp_path, text))
    (issue,) = info.value.issues
    assert issue.path == f"{TOPO}.layers[0].repeat" and issue.line == line_of(text, "repeat: two")
    assert issue.expected == "an integer from 1 to 4096" and issue.found == "'two' (a string)"


def test_public_types_and_defaults(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, GOOD))
    assert isinstance(m, Manifest) and m.version == 2 and m.name == "tiny"
    target = m.target()
    assert isinstance(target, ExperimentTarget) and target.backend == "torch"
    assert target.data == ComponentSpec(ref="dataset.random_tokens", config={"vocab_size": 64, "block_size": 16})
    assert target.objective == ComponentSpec(ref="objective.next_token_ce")  # a bare string is the ref
    run = target.runs[0]
    assert isinstance(run, RunSpec) and isinstance(run.train, TrainConfig)
    # train inherits defaults.runtime / defaults.logging where it does not say otherwise
    assert (run.train.save_every, run.train.eval_iters, run.train.device) == (5, 20, "auto")
    assert run.train.betas == (0.9, 0.95) and run.train.scheduler == "none"


def test_explicit_train_values_beat_defaults(tmp_path: Path) -> None:
    text = mutate(GOOD, "batch_size: 2", "batch_size: 2\n          save_every: 2\n          distributed_strategy: ddp")
    run = load_manifest(write(tmp_path, text)).targets[0].runs[0]
    assert run.train.save_every == 2 and run.train.distributed == "ddp"  # alias accepted


def test_target_selection(tmp_path: Path) -> None:
    text = mutate(GOOD, "entrypoints:\n  default: lm\n",
                  "  - type: process\n    name: brainstorm\n    team: {lead: researcher}\n    process: {type: brainstorm}\n"
                  "entrypoints:\n  default: lm\n  ideas: target:brainstorm\n")
    m = load_manifest(write(tmp_path, text))
    assert m.target().name == "lm" and m.target("lm").name == "lm"
    ideas = m.target("ideas")
    assert isinstance(ideas, ProcessTarget) and ideas.team == {"lead": "researcher"}
    with pytest.raises(CarambaError) as info:
        m.target("brainstrom")
    assert "did you mean 'brainstorm'?" in info.value.fix and "ideas" in info.value.fix


def test_resolved_yaml_round_trips(tmp_path: Path) -> None:
    text = mutate(ALIASED, "notes: a tiny language model", "notes: costs $${dollars}")
    m = load_manifest(write(tmp_path, text))
    resolved = m.resolved_yaml()
    data = yaml.safe_load(resolved)
    nest = data["targets"][0]["system"]["config"]["model"]["topology"]["layers"][0]
    assert "repeat" not in nest and len(nest["layers"]) == 4 and "${" not in resolved.replace("$${", "")
    again = load_manifest(write(tmp_path, resolved, "resolved.yml"))
    assert again.model_dump() == m.model_dump() and again.notes == "costs ${dollars}"


def test_apples_to_apples_top_level_or_runtime(tmp_path: Path) -> None:
    top = load_manifest(write(tmp_path, mutate(GOOD, "name: tiny", "name: tiny\napples_to_apples: true")))
    assert top.defaults.runtime.apples_to_apples is True and top.apples_to_apples is True
    assert load_manifest(write(tmp_path, GOOD, "g.yml")).defaults.runtime.apples_to_apples is False
    clash = mutate(GOOD, "    save_every: 5", "    save_every: 5\n    apples_to_apples: false")
    clash = mutate(clash, "name: tiny", "name: tiny\napples_to_apples: true")
    with pytest.raises(ManifestError, match="set both at the top level and in defaults.runtime"):
        load_manifest(write(tmp_path, clash, "clash.yml"))


def test_verify_and_benchmark_specs(tmp_path: Path) -> None:
    extra = """\
        verify:
          type: eval
          tokenizer: {type: byte}
          thresholds: {min_student_accuracy: 0.5}
          cases:
            - {id: two, prompt: "1+1=", answer: 2, kind: int_greedy}
            - {id: cap, prompt: "Capital of France:", choices: [Paris, Rome], answer: Paris, kind: choice_logprob}
"""
    bench = """\
    benchmarks:
      - id: ppl
        config: {type: perplexity, num_batches: 5}
      - id: mem
        config: {type: memory, quantization_modes: [fp16, q8, q4_0]}
        models: [student, teacher]
      - id: ctx
        config: {type: context, context_lengths: [64], chunk_size: 16}
entrypoints:
"""
    text = mutate(mutate(GOOD, "        seed: 1\n", "        seed: 1\n" + extra), "entrypoints:\n", bench)
    target = load_manifest(write(tmp_path, text)).targets[0]
    verify = target.runs[0].verify
    assert verify is not None and verify.type == "eval" and [c.kind for c in verify.cases] == ["int_greedy", "choice_logprob"]
    assert [b.config.type for b in target.benchmarks] == ["perplexity", "memory", "context"]
    assert target.benchmarks[1].config.quantization_modes == ["fp16", "q8_0", "q4_0"]
    bad = mutate(text, "answer: Paris", "answer: Berlin")
    with pytest.raises(ManifestError) as info:
        load_manifest(write(tmp_path, bad, "bad.yml"))
    (issue,) = info.value.issues
    assert issue.path == "targets[0].runs[0].verify.cases[1]" and "not one of the choices" in issue.message


def test_python_impl_allowed_by_flag_or_manifest(tmp_path: Path) -> None:
    impl = "python:caramba.tests.support.model_impls:ScaleBy"
    text = mutate(GOOD, "              - type: RMSNormLayer\n                d_model: ${d_model}\n",
                  f"              - impl: {impl}\n                factor: 3.0\n")
    path = write(tmp_path, text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    (issue,) = info.value.issues  # refused once (the system's own refusal is an echo)
    assert issue.path == f"{TOPO}.layers[1].impl" and issue.line == line_of(text, "impl: python")
    assert "--allow-python-impl" in issue.fix
    allowed = load_manifest(path, allow_python_impl=True)
    assert allowed.defaults.runtime.allow_python_impl is True  # recorded in the resolved manifest
    assert "allow_python_impl: true" in allowed.resolved_yaml()
    in_file = mutate(text, "    save_every: 5", "    save_every: 5\n    allow_python_impl: true")
    assert load_manifest(write(tmp_path, in_file, "trusted.yml")).target().name == "lm"


def test_component_impl_must_import_when_allowed(tmp_path: Path) -> None:
    text = mutate(GOOD, "ref: system.language_model",
                  "ref: system.language_model\n      impl: python:caramba.tests.support.model_impls:Nope")
    with pytest.raises(ManifestError) as info:
        load_manifest(write(tmp_path, text), allow_python_impl=True)
    (issue,) = info.value.issues
    assert issue.path == "targets[0].system.impl" and "cannot import" in issue.message and "Nope" in issue.message


def test_service_can_forbid_manifests_allowing_python_themselves(tmp_path: Path) -> None:
    impl = "python:caramba.tests.support.model_impls:ScaleBy"
    text = mutate(GOOD, "              - type: RMSNormLayer\n                d_model: ${d_model}\n",
                  f"              - impl: {impl}\n")
    text = mutate(text, "    save_every: 5", "    save_every: 5\n    allow_python_impl: true")
    path = write(tmp_path, text)
    assert load_manifest(path).target().name == "lm"  # a file the user runs may trust itself
    with pytest.raises(ManifestError) as info:
        load_manifest(path, manifest_may_allow=False)
    by_path = {i.path: i for i in info.value.issues}
    grant = by_path["defaults.runtime.allow_python_impl"]
    assert grant.line == line_of(text, "allow_python_impl: true") and "only the operator" in grant.fix
    assert "is refused" in by_path[f"{TOPO}.layers[1].impl"].message


def test_manifest_locates_paths_after_loading(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, GOOD))
    issue = m.issue(("targets", 0, "runs", 0, "train", "peft"), "peft is not implemented yet")
    assert (issue.file, issue.line, issue.path) == (str(tmp_path / "m.yml"), line_of(GOOD, "train:"),
                                                    "targets[0].runs[0].train.peft")
    # a lowered path inside the second copy of the repeated block maps to the source block
    copy = m.issue(("targets", 0, "system", "config", "model", "topology", "layers", 0, "layers", 3,
                    "layers", 1, "d_ff"), "x")
    assert copy.path == f"{TOPO}.layers[0].layers[1].layers[1].d_ff" and copy.line == line_of(GOOD, "d_ff: 64")
