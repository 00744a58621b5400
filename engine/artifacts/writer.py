"""Write a target run's artifacts and ``results.json``, announcing each as an
``artifact`` event.

``results.json``::

    {"target": "...", "task": "task.language_modeling", "primary": "val_loss",
     "higher_is_better": false, "runs": {"<run id>": {"steps": 100, "val_loss": ...}}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from caramba.engine.artifacts.plots import loss_curve
from caramba.engine.artifacts.tables import summary_csv, summary_tex
from caramba.engine.train.recorder import METRICS, read_jsonl
from caramba.engine.train.registry import TASKS
from caramba.engine.train.rundir import write_json, write_text


def write_artifacts(run_dir: Path, target: Any, results: dict[str, dict[str, float]], recorder: Any) -> list[Path]:
    task_cls = TASKS.get(target.task.ref)
    art = run_dir / "artifacts"
    art.mkdir(exist_ok=True)
    written: list[tuple[Path, str]] = []
    csv_path = art / "summary.csv"
    write_text(csv_path, summary_csv(results, task_cls.headline))
    written.append((csv_path, "table"))
    tex_path = art / "summary.tex"
    caption = f"Final metrics of {target.name} ({run_dir.name})."
    write_text(tex_path, summary_tex(results, task_cls.headline, caption=caption,
                                     label=f"tab:{target.name}"))
    written.append((tex_path, "latex"))
    rows = read_jsonl(run_dir / METRICS)
    if rows:
        png = art / "loss_curve.png"
        loss_curve(rows, png, title=f"{target.name} — {run_dir.name}", with_accuracy="accuracy" in task_cls.headline)
        written.append((png, "plot"))
    res_path = run_dir / "results.json"
    write_json(res_path, {"target": target.name, "task": target.task.ref, "primary": task_cls.primary,
                          "higher_is_better": task_cls.higher_is_better, "runs": results})
    written.append((res_path, "results"))
    for path, kind in written:
        recorder.event("artifact", None, path=str(path), kind=kind)
    return [p for p, _ in written]
