"""QA of ``caramba run``/``--set`` as a researcher types them: overriding a section the
manifest leaves out (``defaults.logging.*`` on a preset without ``defaults:``), typos in
such paths, and starting a finetune target before the target it starts from has run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from caramba.cli import main
from caramba.engine.errors import ManifestError
from caramba.engine.manifest import load_manifest
from caramba.tests.support.training import write_tiny_lm

PRESETS = Path(__file__).resolve().parents[1] / "manifests"


def test_set_creates_an_optional_section_the_manifest_leaves_out():
    preset = PRESETS / "graph_node_classification.yml"
    assert "\ndefaults:" not in preset.read_text()  # the case under test: no defaults block at all
    m = load_manifest(preset, overrides=["defaults.logging.eval_iters=2", "defaults.logging.instrument=plain"])
    assert m.defaults.logging.eval_iters == 2 and m.defaults.logging.instrument == "plain"
    assert all(r.train.eval_iters == 2 for t in m.targets for r in t.runs)  # inherited like a written default
    with pytest.raises(ManifestError) as e:  # a typo in the missing section: did-you-mean from the schema
        load_manifest(preset, overrides=["defaults.loging.eval_iters=2"])
    assert e.value.issues[0].fix == "did you mean 'logging'?"
    with pytest.raises(ManifestError) as e:  # not a section of the schema: not created
        load_manifest(preset, overrides=["defaults.logging.bogus.x=1"])
    assert "no key 'bogus'" in e.value.issues[0].message and "eval_iters" in e.value.issues[0].fix


def test_a_start_checkpoint_that_does_not_exist_yet_is_a_located_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(tmp_path))
    path = write_tiny_lm(tmp_path, steps=3)
    assert main(["run", str(path), "--set", "targets[0].runs[0].checkpoint=lm/train"]) == 2
    err = capsys.readouterr().err
    assert "--set: targets[0].runs[0].checkpoint: checkpoint 'lm/train'" in err  # where it was written
    assert f"fix: run it first: caramba run {path} --target lm" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # refused before a (failed) run directory existed
    # once the target it names has completed, the same command starts from its weights
    assert main(["run", str(path)]) == 0
    assert main(["run", str(path), "--set", "targets[0].runs[0].checkpoint=lm/train"]) == 0


def test_a_preset_named_without_its_path_gets_the_path_as_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a scratch workspace: manifests/ is not here
    for given in ("standard_transformer", "preset:standard_transformer", "manifests/standard_transformer.yml"):
        assert main(["run", given, "--dry-run"]) == 2
        err = capsys.readouterr().err
        assert f"manifest file not found: {given}" in err
        assert f"is a shipped preset: give its path, {PRESETS / 'standard_transformer.yml'}" in err
    assert main(["validate", "no_such_thing.yml"]) == 2
    assert "check the path" in capsys.readouterr().err  # not a preset: the plain hint


def test_a_tab_in_the_indentation_says_so(tmp_path, capsys):
    bad = tmp_path / "tabs.yml"
    bad.write_text("version: 2\nname: t\ntargets:\n\t- type: experiment\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:4:1: YAML syntax error" in err and "replace the tab(s) on this line with spaces" in err
