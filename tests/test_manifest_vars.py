"""Stage 2 (${vars}) and stage 3 (--set overrides), as units and through load_manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from caramba.engine.errors import ManifestError
from caramba.engine.manifest import load_manifest
from caramba.engine.manifest.overrides import OverrideError, apply_override, parse_override
from caramba.engine.manifest.source import IssueCollector, Origin, SourceMap
from caramba.engine.manifest.variables import VarResolver
from caramba.tests.support.manifests import GOOD, TOPO, line_of, mutate, write


def resolver(raw: dict, smap: SourceMap | None = None) -> tuple[VarResolver, IssueCollector]:
    smap = smap or SourceMap()
    issues = IssueCollector(smap, "m.yml")
    return VarResolver(raw, issues, smap), issues


def test_exact_reference_keeps_the_type() -> None:
    raw = {"i": 3, "f": 0.5, "b": True, "l": [1, 2], "d": {"k": "v"}, "n": None}
    r, issues = resolver(raw)
    r.resolve_all()
    doc = {k: f"${{{k}}}" for k in raw}
    assert r.substitute(doc, ("doc",)) == raw
    assert not issues.issues


def test_embedded_references_interpolate_as_text() -> None:
    r, issues = resolver({"seed": 42, "amp": False, "lr": 1e-3, "name": "gpt"})
    r.resolve_all()
    assert r.substitute("${name}_s${seed}_amp-${amp}_lr${lr}", ("x",)) == "gpt_s42_amp-false_lr0.001"
    assert r.substitute("cost: $${dollars}", ("x",)) == "cost: ${dollars}"  # $${ escapes
    assert not issues.issues


def test_vars_may_use_vars_in_any_order() -> None:
    r, issues = resolver({"ff": "${d4}", "d4": "${d}x4", "d": 64, "both": ["${d}", "${ff}"]})
    out = r.resolve_all()
    assert out == {"ff": "64x4", "d4": "64x4", "d": 64, "both": [64, "64x4"]}
    assert not issues.issues


def test_long_cycle_is_reported_once_with_its_chain() -> None:
    smap = SourceMap({("vars", "c"): Origin("m.yml", 7, 3, ("vars", "c"))})
    r, issues = resolver({"a": "${b}", "b": "${c}", "c": "x${a}", "ok": 1}, smap)
    out = r.resolve_all()
    (issue,) = issues.issues
    assert issue.message == "variable cycle: a -> b -> c -> a"
    assert (issue.path, issue.line) == ("vars.c", 7)
    assert out["ok"] == 1


def test_mapping_var_carries_definition_positions(tmp_path: Path) -> None:
    text = mutate(GOOD, "  lr: 1e-3\n", "  lr: 1e-3\n  train:\n    batch_size: 2\n    lr: 0.01\n    warmup_stepz: 3\n")
    text = mutate(text, "        train:\n          batch_size: 2\n          lr: ${lr}\n", "        train: ${train}\n")
    with pytest.raises(ManifestError) as info:
        load_manifest(write(tmp_path, text))
    (issue,) = info.value.issues
    # reported at the run's path, but on the line where the var wrote the bad key
    assert issue.path == "targets[0].runs[0].train.warmup_stepz"
    assert issue.line == line_of(text, "warmup_stepz") and issue.fix == "did you mean 'warmup_steps'?"


def test_substituted_values_reach_the_components(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, GOOD))
    cfg = m.targets[0].system.config["model"]
    assert cfg["embedder"]["d_model"] == 32 and isinstance(cfg["embedder"]["d_model"], int)
    assert m.vars == {"d_model": 32, "n_heads": 4, "vocab": 64, "lr": "1e-3"}
    assert m.targets[0].runs[0].train.lr == pytest.approx(1e-3)


# ---------------------------------------------------------------- --set


def test_parse_override_forms() -> None:
    assert parse_override("targets[0].runs[1].steps=5") == (["targets", 0, "runs", 1, "steps"], "targets[0].runs[1].steps", 5)
    assert parse_override("targets.lm.runs[quick].train.lr=1e-3")[0] == ["targets", "lm", "runs", "quick", "train", "lr"]
    assert parse_override("vars.sizes=[1, 2]")[2] == [1, 2]
    assert parse_override("notes=")[2] is None
    for bad in ("steps", "a..b=1", "[0=1", "a.b=[1"):
        with pytest.raises(OverrideError):
            parse_override(bad)


def test_apply_override_by_index_name_and_new_key() -> None:
    data = {"targets": [{"name": "a", "runs": [{"id": "r", "steps": 1}]}]}
    assert apply_override(data, ["targets", "a", "runs", "r", "steps"], 9) == ("targets", 0, "runs", 0, "steps")
    apply_override(data, ["targets", -1, "runs", 0, "train"], {"lr": 1})
    assert data["targets"][0]["runs"][0] == {"id": "r", "steps": 9, "train": {"lr": 1}}
    with pytest.raises(OverrideError, match="index 3 is out of range"):
        apply_override(data, ["targets", 3, "name"], "x")


def test_set_overrides_vars_before_substitution(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, GOOD), overrides=[
        "vars.d_model=64", "vars.n_heads=8", "targets.lm.runs.r1.steps=7", "targets[0].runs[0].train.lr=0.02",
        "targets[0].runs[0].train.scheduler=cosine",
    ])
    topo = m.targets[0].system.config["model"]["topology"]
    assert topo["layers"][0]["layers"][0]["layers"][1] == {"type": "AttentionLayer", "d_model": 64, "n_heads": 8}
    run = m.targets[0].runs[0]
    assert run.steps == 7 and run.train.lr == pytest.approx(0.02) and run.train.scheduler == "cosine"
    assert "steps: 7" in m.resolved_yaml()


def test_set_value_is_validated_like_the_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(write(tmp_path, GOOD), overrides=["targets[0].runs[0].steps=lots", "vars.n_heads=5"])
    by_path = {i.path: i for i in info.value.issues}
    steps = by_path["targets[0].runs[0].steps"]
    assert steps.file == "--set" and steps.line is None and steps.message == "expected an integer"
    heads = by_path[f"{TOPO}.layers[0].layers[0].layers[1].n_heads"]  # the var feeds a width check
    assert "does not divide d_model 32" in heads.message
