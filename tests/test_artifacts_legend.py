"""``loss_curve.png``'s legend: a single run shows just the split ("train", "val"), not the
run id repeated ("train train"); several runs are told apart as "run: split"."""

from __future__ import annotations

from pathlib import Path

import pytest

from caramba.engine.artifacts.plots import loss_curve


def _legends(rows: list[dict], out: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from matplotlib.figure import Figure

    seen: list[str] = []
    real = Figure.savefig

    def capture(fig, *a, **k):
        seen.extend(t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts())
        return real(fig, *a, **k)

    monkeypatch.setattr(Figure, "savefig", capture)
    loss_curve(rows, out, title="t", with_accuracy=False)
    assert out.stat().st_size > 0
    return seen


def test_single_run_legend_names_only_the_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"run": "train", "split": s, "step": i, "loss": 1.0 / i} for s in ("train", "val") for i in (1, 2)]
    assert _legends(rows, tmp_path / "one.png", monkeypatch) == ["train", "val"]
    two = rows + [{"run": "ft", "split": "train", "step": i, "loss": 0.5 / i} for i in (1, 2)]
    assert _legends(two, tmp_path / "two.png", monkeypatch) == ["train: train", "train: val", "ft: train"]
