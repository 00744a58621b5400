"""Read a finished run directory into a compact, searchable summary.

The layout is the one of ``docs/internals.md`` ("Training and runs"):
``run.json`` (manifest, target, run_id, created, state), ``results.json`` (final metrics
per run, verdicts, benchmark tables), ``metrics.jsonl`` (one record per logged step) and
``artifacts/``. Only ``run.json`` is required; the other files are summarised when
present. The summary text is what Graphiti receives as an episode and what the DeepLake
index stores as a ``run`` chunk, so both memories describe a run the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from caramba.engine.errors import CarambaError


@dataclass
class RunSummary:
    run_dir: Path
    manifest: str
    target: str
    run_id: str
    state: str
    created: str | None
    final_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    verdicts: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """A plain-language summary (one fact per line) for memories and search."""
        lines = [f"Run {self.run_id} of manifest '{self.manifest}', target '{self.target}', "
                 f"finished with state {self.state}" + (f" (started {self.created})." if self.created else ".")]
        for run, metrics in sorted(self.final_metrics.items()):
            vals = ", ".join(f"{k} = {_fmt(v)}" for k, v in sorted(metrics.items()))
            lines.append(f"Final metrics of run '{run}': {vals}.")
        lines.extend(f"Verdict: {v}" for v in self.verdicts)
        if self.artifacts:
            lines.append("Artifacts: " + ", ".join(self.artifacts[:20]) + ".")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CarambaError(f"{path}: not valid JSON ({e})",
                           fix="the run directory is damaged; re-run the target or delete the run") from None


def _verdicts(results: dict[str, Any]) -> list[str]:
    out: list[str] = []
    raw = results.get("verdicts") or results.get("verify") or []
    items = raw.items() if isinstance(raw, dict) else enumerate(raw)
    for key, v in items:
        if isinstance(v, dict):
            name = v.get("name") or v.get("check") or v.get("run") or key
            verdict = v.get("verdict") or v.get("status") or ("pass" if v.get("passed") else "fail" if "passed" in v else "")
            detail = v.get("message") or v.get("detail") or ""
            out.append(f"{name}: {verdict} {detail}".strip())
        else:
            out.append(f"{key}: {v}")
    return out


def _final_metrics(results: dict[str, Any], metrics_file: Path) -> dict[str, dict[str, float]]:
    final: dict[str, dict[str, float]] = {}
    per_run = results.get("runs") or results.get("metrics") or {}
    if isinstance(per_run, dict):
        for run, m in per_run.items():
            if isinstance(m, dict):
                flat = m.get("metrics", m)
                final[str(run)] = {k: v for k, v in flat.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if not final and metrics_file.exists():
        for line in metrics_file.read_text().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            key = f"{rec.get('run')}" + (f" ({rec['split']})" if rec.get("split") else "")
            final[key] = {k: v for k, v in rec.items()
                          if k not in ("run", "split") and isinstance(v, (int, float)) and not isinstance(v, bool)}
    return final


def _iso(created: object) -> str | None:
    """``run.json`` stores ``created`` as unix seconds (the engine's contract); older or
    hand-written files may hold an ISO string. Either way, return ISO 8601 (UTC)."""
    if created is None or created == "":
        return None
    if isinstance(created, int | float):
        return datetime.fromtimestamp(float(created), UTC).isoformat()
    return str(created)


def read_run(run_dir: Path) -> RunSummary:
    """Summarise one run directory; raises a CarambaError if it is not one."""
    run_dir = Path(run_dir)
    meta_file = run_dir / "run.json"
    if not meta_file.is_file():
        raise CarambaError(f"{run_dir} is not a run directory (no run.json)",
                           fix="pass runs/<manifest>/<target>/<run id>/ as written by `caramba run`")
    meta = _load_json(meta_file)
    results_file = run_dir / "results.json"
    results = _load_json(results_file) if results_file.is_file() else {}
    art_dir = run_dir / "artifacts"
    artifacts = sorted(p.relative_to(run_dir).as_posix() for p in art_dir.rglob("*") if p.is_file()) if art_dir.is_dir() else []
    return RunSummary(
        run_dir=run_dir, manifest=str(meta.get("manifest", "?")), target=str(meta.get("target", "?")),
        run_id=str(meta.get("run_id", run_dir.name)), state=str(meta.get("state", "unknown")),
        created=_iso(meta.get("created")),
        final_metrics=_final_metrics(results if isinstance(results, dict) else {}, run_dir / "metrics.jsonl"),
        verdicts=_verdicts(results) if isinstance(results, dict) else [],
        artifacts=artifacts, results=results if isinstance(results, dict) else {},
    )
