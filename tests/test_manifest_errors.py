"""Malformed manifests: each case checks the exact file, line, YAML path and fix text.

Every case starts from the valid ``GOOD`` manifest (real registered components) and
breaks one thing; the test then finds the issue by its YAML path and checks where it
points and what it says. A final test breaks several things at once and expects all of
them in one ``ManifestError``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from caramba.engine.errors import ManifestError, ManifestIssue
from caramba.engine.manifest import load_manifest
from caramba.tests.support.manifests import GOOD, TOPO, line_of, mutate, write

RES0 = f"{TOPO}.layers[0].layers[0].layers"  # first residual block of the repeated nest
RES1 = f"{TOPO}.layers[0].layers[1].layers"  # second residual block


def issues_of(path: Path, **kwargs: object) -> list[ManifestIssue]:
    with pytest.raises(ManifestError) as info:
        load_manifest(path, **kwargs)  # type: ignore[arg-type]
    return info.value.issues


def one_at(issues: list[ManifestIssue], yaml_path: str) -> ManifestIssue:
    found = [i for i in issues if i.path == yaml_path]
    assert len(found) == 1, f"expected one issue at {yaml_path}, got: " + "\n".join(i.render() for i in issues)
    return found[0]


# (case id, old text, new text, YAML path, line needle (occurrence), message part, fix part)
CASES = [
    ("misspelled_layer_type", "- type: RMSNormLayer", "- type: RMSNormLyer", f"{RES0}[0].type",
     ("RMSNormLyer", 1), "unknown layer type 'RMSNormLyer'", "did you mean 'RMSNormLayer'?"),
    ("wrong_width_in_nested_residual", "d_model: ${d_model}\n                        d_ff: 64",
     "d_model: 16\n                        d_ff: 64", f"{RES1}[1].d_model", ("d_model: 16", 1),
     "incoming width is 32", "d_model: 32"),
    ("n_heads_not_dividing", "n_heads: ${n_heads}", "n_heads: 5", f"{RES0}[1].n_heads", ("n_heads: 5", 1),
     "does not divide d_model 32", "n_heads in"),
    ("unknown_var_did_you_mean", "n_heads: ${n_heads}", "n_heads: ${n_head}", f"{RES0}[1].n_heads",
     ("${n_head}", 1), "unknown variable 'n_head'", "did you mean '${n_heads}'?"),
    ("unknown_var_lists_known", "d_ff: 64", "d_ff: ${ffn_width}", f"{RES1}[1].d_ff", ("${ffn_width}", 1),
     "unknown variable 'ffn_width'", "define it under 'vars:'"),
    ("var_cycle", "  lr: 1e-3\n", "  lr: 1e-3\n  a: ${b}\n  b: ${a}\n", "vars.b", ("b: ${a}", 1),
     "variable cycle: a -> b -> a", "break the cycle"),
    ("embedded_list_var", "notes: a tiny language model\nvars:\n", "notes: run ${sizes}\nvars:\n  sizes: [1, 2]\n",
     "notes", ("notes: run", 1), "variable 'sizes' holds a list", "as the whole value"),
    ("version_3", "version: 2", "version: 3", "version", ("version: 3", 1),
     "unsupported manifest version 3", "version: 2"),
    ("unknown_top_level_key", "entrypoints:", "entrypoint:", "entrypoint", ("entrypoint:", 1),
     "unknown field 'entrypoint'", "did you mean 'entrypoints'?"),
    ("entrypoint_to_missing_target", "  default: lm", "  default: lmm", "entrypoints.default",
     ("default: lmm", 1), "names a missing target 'lmm'", "did you mean 'lm'?"),
    ("unknown_train_field", "batch_size: 2", "batch_sze: 2", "targets[0].runs[0].train.batch_sze",
     ("batch_sze", 1), "unknown field 'batch_sze'", "did you mean 'batch_size'?"),
    ("string_where_int_expected", "steps: 3", "steps: three", "targets[0].runs[0].steps", ("steps: three", 1),
     "expected an integer", "whole number"),
    ("boolean_for_number", "steps: 3", "steps: yes", "targets[0].runs[0].steps", ("steps: yes", 1),
     "expected a number, found the boolean true", "yes/no/on/off"),
    ("vars_not_a_mapping", "vars:\n  d_model: 32\n  n_heads: 4\n  vocab: 64\n  lr: 1e-3\n", "vars: 32\n", "vars",
     ("vars: 32", 1), "'vars' must be a mapping", "vars: {d_model: 512"),
    ("bad_device", "batch_size: 2", "batch_size: 2\n          device: gpu", "targets[0].runs[0].train.device",
     ("device: gpu", 1), "invalid device", "device: auto"),
    ("missing_steps", "        steps: 3\n", "", "targets[0].runs[0].steps", ("- id: r1", 1),
     "missing required field 'steps'", "add 'steps: ...'"),
    ("negative_lr", "lr: ${lr}", "lr: -0.1", "targets[0].runs[0].train.lr", ("lr: -0.1", 1),
     "value out of range", "> 0"),
    ("scheduler_typo", "batch_size: 2", "batch_size: 2\n          scheduler: cosin",
     "targets[0].runs[0].train.scheduler", ("scheduler: cosin", 1), "invalid value", "did you mean 'cosine'?"),
    ("target_type_typo", "- type: experiment", "- type: experimnt", "targets[0].type", ("experimnt", 1),
     "unknown type 'experimnt'", "did you mean 'experiment'?"),
    ("unknown_dataset_ref", "ref: dataset.random_tokens", "ref: dataset.random_tokns", "targets[0].data.ref",
     ("random_tokns", 1), "unknown dataset 'dataset.random_tokns'", "did you mean 'dataset.random_tokens'?"),
    ("unknown_dataset_config_field", "block_size: 16", "block_sz: 16", "targets[0].data.config.block_sz",
     ("block_sz", 1), "unknown field 'block_sz'", "rename it to one of: block_size"),
    ("unknown_objective", "objective: objective.next_token_ce", "objective: objective.next_tokn_ce",
     "targets[0].objective", ("next_tokn_ce", 1), "unknown objective", "did you mean 'objective.next_token_ce'?"),
    ("python_impl_refused", "ref: system.language_model", "ref: system.language_model\n      impl: python:os:getcwd",
     "targets[0].system.impl", ("impl: python", 1), "python implementation 'python:os:getcwd' is refused",
     "allow_python_impl: true"),
    ("repeat_zero", "repeat: 2", "repeat: 0", f"{TOPO}.layers[0].repeat", ("repeat: 0", 1),
     "'repeat' must be a whole number", "repeat: 6"),
    ("duplicate_target_names", "entrypoints:", "  - type: process\n    name: lm\n    process: {type: brainstorm}\nentrypoints:",
     "targets[1].name", ("name: lm", 2), "duplicate target name 'lm' (first used at line 14)", "unique"),
    ("duplicate_run_ids", "entrypoints:", "      - id: r1\n        steps: 1\nentrypoints:",
     "targets[0].runs[1].id", ("- id: r1", 2), "duplicate run id 'r1'", "unique"),
    ("verify_type_typo", "        seed: 1", "        seed: 1\n        verify: {type: fidelty, max_delta_nll: 0.1}",
     "targets[0].runs[0].verify.type", ("fidelty", 1), "unknown type 'fidelty'", "did you mean 'fidelity'?"),
    ("benchmark_bad_quant", "entrypoints:",
     "    benchmarks:\n      - id: mem\n        config: {type: memory, quantization_modes: [fp16, q3]}\nentrypoints:",
     "targets[0].benchmarks[0].config.quantization_modes[1]", ("q3]", 1), "invalid value", "use one of"),
    ("duplicate_yaml_key", "        seed: 1\n", "        seed: 1\n        seed: 2\n", "targets[0].runs[0].seed",
     ("seed: 2", 1), "duplicate key 'seed'", "remove one"),
    ("flow_mapping_unquoted_var", "      config:\n        vocab_size: ${vocab}\n        block_size: 16",
     "      config: {vocab_size: ${vocab}, block_size: 16}", "", ("config: {vocab_size", 1),
     "YAML syntax error", "quote variable references"),
    ("bad_name", "name: tiny", "name: my tiny run", "name", ("name: my tiny run", 1), "invalid name", "folder names"),
    ("amp_with_half_params", "batch_size: 2", "batch_size: 2\n          use_amp: true\n          dtype: float16",
     "targets[0].runs[0].train", ("train:", 1), "use_amp with dtype float16", "dtype: float32"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_manifest(tmp_path: Path, case: tuple) -> None:
    _, old, new, yaml_path, (needle, occurrence), message, fix = case
    text = mutate(GOOD, old, new)
    path = write(tmp_path, text)
    issue = one_at(issues_of(path), yaml_path)
    assert issue.file == str(path)
    assert issue.line == line_of(text, needle, occurrence), issue.render()
    assert message in issue.message, issue.render()
    assert issue.fix is not None and fix in issue.fix, issue.render()


def test_yaml_syntax_error_reports_its_line(tmp_path: Path) -> None:
    text = mutate(GOOD, "    backend: torch\n", "    backend: torch\n    broken: [1, 2\n")
    issue = issues_of(write(tmp_path, text))[0]
    assert issue.message.startswith("YAML syntax error")
    # PyYAML notices the unclosed flow sequence on the next line
    assert issue.line in (line_of(text, "broken: [1, 2"), line_of(text, "broken: [1, 2") + 1)


def test_bad_set_path_has_did_you_mean(tmp_path: Path) -> None:
    issues = issues_of(write(tmp_path, GOOD), overrides=["targets[0].runz[0].steps=5"])
    issue = one_at(issues, "targets[0].runz[0].steps")
    assert issue.file == "--set"
    assert "no key 'runz'" in issue.message
    assert issue.fix == "did you mean 'runs'?"


def test_set_by_unknown_target_name(tmp_path: Path) -> None:
    issue = one_at(issues_of(write(tmp_path, GOOD), overrides=["targets.lmm.runs.r1.steps=5"]),
                   "targets.lmm.runs.r1.steps")
    assert "no item named 'lmm'" in issue.message and "did you mean 'lm'?" in issue.message


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    text = mutate(GOOD, "version: 2", "version: 3")
    text = mutate(text, "- type: RMSNormLayer", "- type: RMSNormLyer")
    text = mutate(text, "steps: 3", "steps: three")
    text = mutate(text, "batch_size: 2", "batch_sze: 2")
    text = mutate(text, "  default: lm", "  default: nope")
    issues = issues_of(write(tmp_path, text))
    paths = {i.path for i in issues}
    assert {"version", f"{RES0}[0].type", "targets[0].runs[0].steps", "targets[0].runs[0].train.batch_sze",
            "entrypoints.default"} <= paths
    # an anchor-free misspelling inside a repeated block is reported once, not per copy
    assert sum("RMSNormLyer" in i.message for i in issues) == 1


def test_error_inside_repeat_points_at_source_not_copy(tmp_path: Path) -> None:
    text = mutate(GOOD, "d_ff: 64", "d_ff: -64")
    issues = issues_of(write(tmp_path, text))
    ff = [i for i in issues if i.path.endswith("d_ff")]
    assert len(ff) == 1  # the two copies made by 'repeat: 2' are one source problem
    assert ff[0].path == f"{RES1}[1].d_ff" and ff[0].line == line_of(text, "d_ff: -64")


def test_broken_vars_do_not_echo_at_every_use(tmp_path: Path) -> None:
    text = mutate(GOOD, "vars:\n  d_model: 32\n  n_heads: 4\n  vocab: 64\n  lr: 1e-3\n", "vars: [32]\n")
    issues = issues_of(write(tmp_path, text))
    assert [i.path for i in issues] == ["vars"]


def test_missing_file_is_a_manifest_error(tmp_path: Path) -> None:
    issue = issues_of(tmp_path / "nope.yml")[0]
    assert "manifest file not found" in issue.message and issue.fix


def test_non_mapping_and_empty_manifests(tmp_path: Path) -> None:
    assert "must be a mapping" in issues_of(write(tmp_path, "- a\n- b\n", "list.yml"))[0].message
    assert "manifest is empty" in issues_of(write(tmp_path, "# nothing\n", "empty.yml"))[0].message


def test_unsupported_yaml_tag_is_refused(tmp_path: Path) -> None:
    text = mutate(GOOD, "notes: a tiny language model", "notes: !!python/name:os.system ''")
    issue = one_at(issues_of(write(tmp_path, text)), "notes")
    assert "unsupported YAML tag" in issue.message and issue.line == line_of(text, "notes:")
