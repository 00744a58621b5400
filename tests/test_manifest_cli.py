"""``caramba validate``: exit codes, located messages, JSON output, no tracebacks.

One test runs the real console script in a subprocess (what a user types); the others
call ``caramba.cli.main`` in-process, which is the same entry point.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from caramba.cli import main
from caramba.tests.support.manifests import GOOD, TOPO, line_of, mutate, write

BAD = mutate(mutate(GOOD, "n_heads: ${n_heads}", "n_heads: 5"), "batch_size: 2", "batch_sze: 2")


def test_validate_bad_manifest_subprocess(tmp_path: Path) -> None:
    # the console script of *this* interpreter's environment (PATH may not include the venv)
    exe = str(Path(sys.executable).parent / "caramba")
    assert Path(exe).is_file(), "the caramba console script is not installed in this environment"
    path = write(tmp_path, BAD, "bad.yml")
    proc = subprocess.run([exe, "validate", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out
    assert f"{path}:{line_of(BAD, 'n_heads: 5')}:" in out
    assert f"{TOPO}.layers[0].layers[0].layers[1].n_heads" in out
    assert "did you mean 'batch_size'?" in out


def test_validate_good_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD, "good.yml")
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {path}") and "lm (experiment, 1 runs)" in out


def test_validate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BAD, "bad.yml")
    assert main(["validate", str(path), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    heads = next(i for i in report["issues"] if i["path"].endswith("n_heads"))
    assert heads["file"] == str(path) and heads["line"] == line_of(BAD, "n_heads: 5")
    assert set(heads) == {"message", "file", "line", "column", "path", "expected", "found", "fix"}
    assert main(["validate", str(write(tmp_path, GOOD)), "--json"]) == 0
    good = json.loads(capsys.readouterr().out)
    assert good["ok"] is True and good["issues"] == [] and good["targets"][0]["runs"] == ["r1"]


def test_validate_with_set_and_bracketed_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD)
    assert main(["validate", str(path), "--set", "targets[lm].runs[r1].steps=9"]) == 0
    capsys.readouterr()
    assert main(["validate", str(path), "--set", "targets[lmm].runs[r1].steps=9"]) == 2
    err = capsys.readouterr().err
    # rich markup must not eat '[lmm]'
    assert "targets[lmm].runs[r1].steps" in err and "did you mean 'lm'?" in err


def test_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yml")]) == 2
    err = capsys.readouterr().err
    assert "manifest file not found" in err and "Traceback" not in err


def test_validate_allow_python_impl_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = mutate(GOOD, "              - type: RMSNormLayer\n                d_model: ${d_model}\n",
                  "              - impl: python:caramba.tests.support.model_impls:ScaleBy\n")
    path = write(tmp_path, text)
    assert main(["validate", str(path)]) == 2
    assert "--allow-python-impl" in capsys.readouterr().err
    assert main(["validate", str(path), "--allow-python-impl"]) == 0
