"""The runner's post-run hooks: verify after each run, benchmark + artifacts after the target.

:class:`PostRun` is handed to :func:`caramba.engine.train.target.train_target`, which
calls :meth:`PostRun.after_run` when a run finishes (the run's ``verify`` gate runs then,
with the trainer's ``teacher`` when it has one — ``trainer.upcycle`` does); the runner
calls :meth:`PostRun.finish` after the training artifacts are written (benchmarks, their
artifacts, verdicts in ``results.json``, ``artifacts_index.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from caramba.engine.verify.gates import run_gate
from caramba.engine.verify.report import apply_verdict


class PostRun:
    def __init__(self, manifest: Any, target: Any, run_dir: Path, *, workspace_root: Path,
                 manifest_dir: Path | None) -> None:
        self.manifest, self.target, self.run_dir = manifest, target, run_dir
        self.workspace_root, self.manifest_dir = workspace_root, manifest_dir
        self.verdicts: dict[str, dict[str, Any]] = {}
        self.system: nn.Module | None = None
        self.teacher: nn.Module | None = None
        self.data: Any = None

    def after_run(self, run: Any, system: nn.Module, trainer: Any, data: Any, recorder: Any, *,
                  verify: bool = True) -> None:
        self.system = system
        self.teacher = getattr(trainer, "teacher", None) or self.teacher
        self.data = data if data is not None else self.data
        if verify and run.verify is not None:
            verdict = run_gate(run.verify, system, self.teacher, data, base_dir=self.manifest_dir,
                               batch_size=run.train.batch_size)
            self.verdicts[run.id] = apply_verdict(run.id, run.verify, verdict, recorder)

    def finish(self, recorder: Any, prior: list[Path]) -> list[Path]:
        from caramba.engine.artifacts.bench_writer import write_bench_artifacts
        from caramba.engine.bench.models import resolve_models
        from caramba.engine.bench.run import run_benchmarks

        benches: dict[str, dict[str, Any]] = {}
        if self.target.benchmarks and self.system is not None:
            names = {n for b in self.target.benchmarks for n in b.models}
            models = resolve_models(names, manifest=self.manifest, target=self.target, student=self.system,
                                    teacher=self.teacher, run_dir=self.run_dir, workspace_root=self.workspace_root,
                                    manifest_dir=self.manifest_dir)
            # the tokenizer the data was really built with (the dataset's own or defaults.data.tokenizer)
            tok = self.data.info.get("tokenizer") if self.data is not None else None
            benches = run_benchmarks(self.target, models=models, data=self.data, recorder=recorder,
                                     base_dir=self.manifest_dir, data_tokenizer=tok)
        return write_bench_artifacts(self.run_dir, self.target, benches, self.verdicts, prior, recorder)
