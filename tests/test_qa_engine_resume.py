"""QA of ``caramba run`` as a researcher uses it: ``--resume`` with a changed manifest,
the resume command printed after Ctrl-C, a bad ``--device`` and a mistyped ``--set vars.*``.

Each test drives the real CLI (``caramba.cli.main`` or the ``caramba`` process) on the tiny
training manifest of ``tests/support/training.py`` (seconds on a CPU).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from caramba.cli import main
from caramba.engine.errors import ManifestError
from caramba.engine.manifest import load_manifest
from caramba.tests.support.training import read_jsonl, wait_for_event, write_tiny_lm

PRESETS = Path(__file__).resolve().parents[1] / "manifests"


def _run_dir(ws: Path, rid: str) -> Path:
    return ws / "runs" / "tiny_train" / "lm" / rid


def test_resume_refuses_a_different_experiment_but_may_train_longer(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(tmp_path))
    path = write_tiny_lm(tmp_path, steps=6, save_every=0, eval_every=0)
    assert main(["run", str(path), "--run-id", "r1"]) == 0
    rd = _run_dir(tmp_path, "r1")
    events_before = (rd / "events.jsonl").read_text()
    capsys.readouterr()

    # another learning rate: refused before anything runs, located in the manifest, old and new value
    assert main(["run", str(path), "--run-id", "r1", "--resume", "--set", "targets[0].runs[0].train.lr=0.05"]) == 2
    err = capsys.readouterr().err
    assert "targets[0].runs[0].train.lr: changed since run 'r1' started" in err
    assert "expected: 0.01" in err and "found: 0.05" in err and "without --resume" in err
    assert "Traceback" not in err
    # another MLP width: the checkpoint would not load; the same clear refusal instead of a traceback
    assert main(["run", str(path), "--run-id", "r1", "--resume",
                 "--set", "targets[0].system.config.model.topology.layers[1].layers[1].d_ff=48"]) == 2
    err = capsys.readouterr().err
    assert "layers[1].layers[1].d_ff: changed since run 'r1'" in err and "Traceback" not in err
    info = json.loads((rd / "run.json").read_text())
    assert info["state"] == "completed" and "resumed" not in info  # the refused resumes touched nothing
    assert (rd / "events.jsonl").read_text() == events_before

    # more steps (and another log cadence) is a continuation: allowed, recorded, manifest.yml follows
    assert main(["run", str(path), "--run-id", "r1", "--resume", "--set", "targets[0].runs[0].steps=9",
                 "--set", "targets[0].runs[0].train.log_every=3"]) == 0
    events = read_jsonl(rd / "events.jsonl")
    changed = [e for e in events if e["event"] == "manifest_changed"]
    assert changed and changed[0]["changes"] == ["targets[0].runs[0].steps: 6 -> 9",
                                                 "targets[0].runs[0].train.log_every: 1 -> 3"]
    started = [e for e in events if e["event"] == "run_started"]
    assert started[-1]["start_step"] == 6 and started[-1]["steps"] == 9
    assert load_manifest(rd / "manifest.yml").targets[0].runs[0].steps == 9
    assert json.loads((rd / "results.json").read_text())["runs"]["train"]["steps"] == 9
    out = capsys.readouterr().out  # the console says so too (plain lines, no Python reprs)
    assert "[target] manifest changed since the run started: targets[0].runs[0].steps: 6 -> 9" in out
    assert "[target] lm: resuming run r1 in " in out and "[target] artifact (table): " in out and "{'" not in out
    # fewer steps than already trained: a located refusal saying how many, not a failed run
    assert main(["run", str(path), "--run-id", "r1", "--resume", "--set", "targets[0].runs[0].steps=4"]) == 2
    err = capsys.readouterr().err
    assert "targets[0].runs[0].steps: run 'train' already trained 9 steps" in err and "steps=9 (or more)" in err
    assert json.loads((rd / "run.json").read_text())["state"] == "completed"


def test_a_device_that_does_not_exist_fails_before_making_a_run_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(tmp_path))
    path = write_tiny_lm(tmp_path, steps=3)
    assert main(["run", str(path), "--device", "gpu"]) == 2
    assert "unknown device 'gpu'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["run", str(path), "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
        path.write_text(path.read_text().replace("device: cpu", "device: cuda"))  # the manifest's own device
        assert main(["run", str(path)]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
    # no failed run directories: they would be what a later plain --resume picks up
    assert not (tmp_path / "runs").exists()


def test_set_of_a_variable_the_manifest_does_not_have_is_an_error(tmp_path):
    with pytest.raises(ManifestError) as e:
        load_manifest(PRESETS / "standard_transformer.yml", overrides=["vars.step=20"])
    issue = e.value.issues[0]
    assert issue.file == "--set" and issue.path == "vars.step" and "unknown variable 'step'" in issue.message
    assert issue.fix == "did you mean 'vars.steps'?"
    assert load_manifest(PRESETS / "standard_transformer.yml", overrides=["vars.steps=20"]).targets[0].runs[0].steps == 20
    # a variable the manifest uses but leaves to the command line is not unknown
    path = write_tiny_lm(tmp_path, steps=3)
    text = path.read_text().replace("        steps: 3\n", "        steps: ${n_steps}\n")
    path.write_text(text.replace("name: tiny_train\n", "name: tiny_train\nvars: {width: 16}\n"))
    assert load_manifest(path, overrides=["vars.n_steps=5"]).targets[0].runs[0].steps == 5


def test_the_resume_command_printed_after_ctrl_c_continues_the_same_run(tmp_path):
    path = write_tiny_lm(tmp_path, steps=3, save_every=0, eval_every=0)
    sets = ["--set", "targets[0].runs[0].steps=150", "--set", "targets[0].runs[0].train.lr=0.02"]
    env = {**os.environ, "CARAMBA_WORKSPACE": str(tmp_path), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "caramba", "run", str(path), "--run-id", "c1", *sets]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    rd = _run_dir(tmp_path, "c1")
    wait_for_event(proc, rd / "events.jsonl", lambda r: r["event"] == "progress" and r["step"] >= 3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-2000:]
    hint = next(line for line in out.decode().splitlines() if "continue with: " in line).split("continue with: ", 1)[1]
    argv = shlex.split(hint)
    assert argv[:2] == ["caramba", "run"] and "--resume" in argv and argv.count("--set") == 2
    assert "targets[0].runs[0].train.lr=0.02" in argv  # the overrides come back, or the resume is refused
    done = subprocess.run([sys.executable, "-m", "caramba", *argv[1:]], env=env, capture_output=True, cwd=tmp_path,
                          timeout=240)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    info = json.loads((rd / "run.json").read_text())
    assert info["state"] == "completed" and "resumed" in info
    assert json.loads((rd / "results.json").read_text())["runs"]["train"]["steps"] == 150
