"""``loss_curve.png``: train and validation loss against the step, one colour per run,
plus a second panel with accuracy for classification targets. Matplotlib's Agg backend
(no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def loss_curve(rows: list[dict[str, Any]], out: Path, *, title: str, with_accuracy: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(dict.fromkeys(r["run"] for r in rows))
    panels = 2 if with_accuracy else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.2), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(runs):
        color = colors[i % len(colors)]
        for split, style in (("train", "-"), ("val", "--")):
            pts = [(r["step"], r) for r in rows if r["run"] == run and r["split"] == split]
            for ax, key in zip(axes[0], ("loss", "accuracy")[:panels]):
                xy = [(s, r[key]) for s, r in pts if r.get(key) is not None]
                if xy:
                    xs, ys = zip(*xy)
                    ax.plot(xs, ys, style, color=color, marker="o" if split == "val" else None,
                            markersize=3, label=_label(run, split, len(runs)))
    for ax, key in zip(axes[0], ("loss", "accuracy")[:panels]):
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats)" if key == "loss" else "accuracy")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = out.with_name(f".{out.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(out)


def _label(run: str, split: str, n_runs: int) -> str:
    """Legend text: the split alone for a single run (no "train train"), else "run: split"."""
    return split if n_runs == 1 else f"{run}: {split}"
