"""Resuming a run with a manifest that changed since the run started.

``caramba run FILE --resume`` continues a run directory from its checkpoints, so the
manifest it is given must describe the same experiment as the ``manifest.yml`` saved
when the run started. Resuming with a different learning rate, model width or dataset
would either crash while loading the checkpoint or, worse, quietly splice two different
experiments into one loss curve. This module compares the two resolved manifests:

* changes that only say how long or how verbosely to keep going are allowed — a run's
  ``steps`` (train longer, or stop earlier than planned but never before the newest
  checkpoint: :func:`check_resume_steps`), the eval/log/checkpoint cadence, the device,
  ``defaults.logging``, notes and descriptions. ``vars`` are skipped: their effect shows
  where they are used;
* anything else refuses the resume with a :class:`ManifestError` listing every changed
  value (file:line of the new manifest, YAML path, old and new value) and how to proceed.

::

    changes = check_resume_manifest(run_dir / "manifest.yml", manifest)   # raises if not allowed
    # -> ["targets[0].runs[0].steps: 30 -> 40"]   (the runner records them and saves the new manifest)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from caramba.engine.errors import CarambaError, ManifestError, ManifestIssue
from caramba.engine.manifest.source import YPath, format_path

#: ``train`` fields a resume may change: cadence and placement, not the optimisation itself.
#: (``distributed``: none↔ddp resume alike; fsdp's sharded checkpoint is refused, with its
#: own message, by ``dist_checkpoint.load_optimizer_state``.)
_TRAIN_FREE = frozenset({"eval_every", "log_every", "save_every", "eval_iters", "device", "num_workers",
                         "prefetch_factor", "distributed"})
_SHOWN = 6  # refused changes listed one by one; the rest are counted
_FIX = ("resume with the manifest and --set values the run started with (run.json 'argv' has that "
        "command), or start a fresh run without --resume; a resume may only change runs[].steps, "
        "the eval/log/save cadence, the device or distributed strategy, defaults.logging, notes and "
        "descriptions")


def allowed_change(path: YPath) -> bool:
    """True when a resumed run may differ from its saved manifest at ``path``."""
    if not path:
        return False
    head = path[0]
    if head in ("vars", "notes"):
        return True
    if head == "defaults":
        return len(path) >= 2 and (path[1] == "logging" or path[1:] in (
            ("runtime", "save_every"), ("runtime", "device"), ("runtime", "allow_python_impl")))
    if head == "targets" and len(path) >= 3:
        rest = path[2:]
        if rest == ("description",):
            return True
        if len(rest) >= 3 and rest[0] == "runs":
            field = rest[2:]
            return field == ("steps",) or (len(field) == 2 and field[0] == "train" and field[1] in _TRAIN_FREE)
    return False


def diff(old: Any, new: Any, path: YPath = ()) -> list[tuple[YPath, Any, Any]]:
    """Every leaf where ``old`` and ``new`` differ, as ``(path, old, new)``; a missing key is
    ``None`` on that side, a list whose length changed is one difference at the list."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[tuple[YPath, Any, Any]] = []
        for key in list(old) + [k for k in new if k not in old]:
            out += diff(old.get(key), new.get(key), (*path, key))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in diff(a, b, (*path, i))]
    return [] if old == new else [(path, old, new)]


def _short(value: Any) -> str:
    text = "(absent)" if value is None else yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    return text if len(text) <= 80 else text[:77] + "..."


def check_resume_manifest(saved: Path, manifest: Any, run_id: str) -> list[str]:
    """Compare ``manifest`` with the run's saved ``manifest.yml``; return the allowed changes
    (rendered ``path: old -> new``) or raise a :class:`ManifestError` for the others."""
    if not saved.exists():
        return []  # a run directory from before manifest.yml was written: nothing to compare
    try:
        old = yaml.safe_load(saved.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise CarambaError(f"cannot read the saved manifest of run '{run_id}' ({saved}): {e}",
                           fix="restore that file, or start a fresh run without --resume") from None
    new = yaml.safe_load(manifest.resolved_yaml())
    changes = diff(old, new)
    refused = [c for c in changes if not allowed_change(c[0])]
    if refused:
        issues: list[ManifestIssue] = []
        seen: set[tuple[Any, ...]] = set()
        for p, a, b in refused:  # one issue per source location (a repeated block changes many copies)
            issue = manifest.issue(p, f"changed since run '{run_id}' started; a resume must train the same "
                                      "experiment", expected=f"{_short(a)} (saved in {saved.name})",
                                   found=_short(b), fix=None if issues else _FIX)
            key = (issue.file, issue.line, issue.column, issue.path, issue.expected, issue.found)
            if key not in seen:
                seen.add(key)
                issues.append(issue)
        if len(issues) > _SHOWN:
            more = len(issues) - _SHOWN
            issues = issues[:_SHOWN] + [ManifestIssue(f"… and {more} more changed value{'s' * (more > 1)}; "
                                                      f"compare with {saved}", file=str(saved))]
        raise ManifestError(issues)
    return [f"{format_path(p)}: {_short(a)} -> {_short(b)}" for p, a, b in changes if p[0] != "vars"]


def check_resume_steps(run_dir: Path, manifest: Any, tgt: Any) -> None:
    """Refuse a resume whose ``runs[].steps`` is below what a run already trained (its
    newest checkpoint): a run can be continued or extended, not made shorter."""
    from caramba.engine.train.checkpoint import latest_checkpoint

    issues = []
    for j, run in enumerate(tgt.runs):
        if getattr(run.train, "phase", "standard") != "standard":
            continue  # a blockwise phase counts steps per block: its checkpoint step is no run length
        latest = latest_checkpoint(run_dir / "checkpoints" / run.id)
        done = int(latest.name.removeprefix("step_")) if latest is not None and latest.name.startswith("step_") else 0
        if done > run.steps:
            path = ("targets", manifest.targets.index(tgt), "runs", j, "steps")
            issues.append(manifest.issue(path, f"run '{run.id}' already trained {done} steps; a resume cannot "
                                               "make it shorter", expected=f">= {done}", found=str(run.steps),
                                         fix=f"resume with --set {format_path(path)}={done} (or more), or start "
                                             "a fresh run without --resume"))
    if issues:
        raise ManifestError(issues)
