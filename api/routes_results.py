"""Result routes: final results, artifacts (with real content types), model tree, compare.

* ``GET /api/runs/{id}/results`` → ``results.json`` (final metrics per ``runs[].id``,
  verification verdicts, benchmark tables; null until written) + artifact list;
* ``GET /api/runs/{id}/artifacts`` → files of ``artifacts/`` with kind and size;
* ``GET /api/runs/{id}/artifacts/{path}`` → the file itself: ``image/png``, ``text/csv``,
  ``application/json``, ``application/x-tex``, ``application/pdf``, ``text/plain`` …
  (``path`` relative to ``artifacts/``; also ``results.json``, ``run.json``,
  ``manifest.yml`` of the run directory; checkpoints are never served);
* ``GET /api/runs/{id}/tree`` → the model tree with parameter counts, rebuilt on the meta
  device from the run's resolved ``manifest.yml`` (no weights are read);
* ``GET /api/compare?ids=A&ids=B`` → final metrics side by side, repeated ``runs[].id`` /
  ``exp`` rows pooled into mean ± 95% CI (the MCP ``compare_runs`` tool's code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from caramba.api.app import get_deps
from caramba.api.errors import NotFound
from caramba.api.routes_runs import job_record
from caramba.tools import manifest_input
from caramba.tools.common import ToolDeps, run_blocking
from caramba.tools.group_results import Comparison, Results, _compare, _results

router = APIRouter(tags=["results"])

CONTENT_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".pdf": "application/pdf",
    ".csv": "text/csv; charset=utf-8", ".json": "application/json", ".jsonl": "application/x-ndjson",
    ".tex": "application/x-tex", ".bib": "application/x-bibtex", ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8", ".log": "text/plain; charset=utf-8",
    ".yml": "application/yaml", ".yaml": "application/yaml",
}
#: (workspace, run id) → model tree: a run's manifest never changes, so build it once
_TREES: dict[tuple[str, str], "Tree"] = {}
RUN_FILES = ("results.json", "run.json", "manifest.yml", "metrics.jsonl", "events.jsonl")


class Artifact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="relative to the run's artifacts/ folder (use it in the download URL)")
    content_type: str
    bytes: int


class Tree(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str
    params: int | None = Field(description="total parameters of the target's model")
    tree: dict[str, Any] | None = Field(description="ModelTree: name, type, params, children")


def _run_dir(deps: ToolDeps, job_id: str) -> Path:
    rec = job_record(deps, job_id)
    run_dir = deps.jobs.run_dir(rec)
    if run_dir is None:
        raise NotFound(f"run '{job_id}' has no run directory yet (state {rec.state})",
                       fix="wait until it has started; GET /api/runs/{id} says why it failed")
    return run_dir


def _results_of(deps: ToolDeps, job_id: str) -> Results:
    job_record(deps, job_id)
    return _results(deps, job_id)


@router.get("/runs/{job_id}/results", response_model=Results)
async def run_results(job_id: str, deps: ToolDeps = Depends(get_deps)) -> Results:
    """results.json (final metrics, verdicts, benchmark tables) and the artifact list."""
    return await run_blocking(_results_of, deps, job_id)


def _artifacts(deps: ToolDeps, job_id: str) -> list[Artifact]:
    art = _run_dir(deps, job_id) / "artifacts"
    files = sorted(p for p in art.rglob("*") if p.is_file()) if art.is_dir() else []
    return [Artifact(path=str(p.relative_to(art)), bytes=p.stat().st_size,
                     content_type=CONTENT_TYPES.get(p.suffix.lower(), "application/octet-stream"))
            for p in files if p.suffix.lower() in CONTENT_TYPES]


@router.get("/runs/{job_id}/artifacts", response_model=list[Artifact])
async def list_artifacts(job_id: str, deps: ToolDeps = Depends(get_deps)) -> list[Artifact]:
    """Files of the run's artifacts/ folder (CSV, PNG, TeX, JSON …)."""
    return await run_blocking(_artifacts, deps, job_id)


def _artifact_file(deps: ToolDeps, job_id: str, path: str) -> Path:
    run_dir = _run_dir(deps, job_id).resolve()
    base = run_dir if path in RUN_FILES else run_dir / "artifacts"
    full = (base / path).resolve()
    if "\x00" in path or not full.is_relative_to(base) or "checkpoints" in full.relative_to(run_dir).parts:
        raise NotFound(f"'{path}' is not an artifact of run '{job_id}'",
                       fix="GET /api/runs/{id}/artifacts lists them (paths relative to artifacts/)")
    if not full.is_file():
        raise NotFound(f"run '{job_id}' has no artifact '{path}'", fix="GET /api/runs/{id}/artifacts lists them")
    if full.suffix.lower() not in CONTENT_TYPES:
        raise NotFound(f"'{path}' is not a servable artifact type ({full.suffix or 'no suffix'})",
                       fix=f"artifacts are served for: {', '.join(sorted(CONTENT_TYPES))}")
    return full


@router.get("/runs/{job_id}/artifacts/{path:path}", response_class=FileResponse,
            responses={200: {"content": {t: {} for t in sorted(set(CONTENT_TYPES.values()))},
                             "description": "the file, with its content type"}})
async def get_artifact(job_id: str, path: str, deps: ToolDeps = Depends(get_deps)) -> FileResponse:
    """Download one artifact (or results.json / run.json / manifest.yml of the run)."""
    full = await run_blocking(_artifact_file, deps, job_id, path)
    return FileResponse(full, media_type=CONTENT_TYPES[full.suffix.lower()],
                        headers={"X-Content-Type-Options": "nosniff"})


def _tree(deps: ToolDeps, job_id: str) -> Tree:
    from caramba.engine.manifest import load_manifest
    from caramba.engine.plan import make_plan

    rec = job_record(deps, job_id)
    key = (str(deps.workspace.root), job_id)
    if key in _TREES:
        return _TREES[key]
    run_dir = _run_dir(deps, job_id)
    source = run_dir / "manifest.yml"
    if not source.is_file():
        raise NotFound(f"run '{job_id}' has no manifest.yml yet", fix="wait until the run has started")
    manifest = manifest_input.checked(deps, load_manifest(source, allow_python_impl=deps.allow_python_impl))
    plan = make_plan(manifest, rec.target).to_dict()
    tgt = next((t for t in plan["targets"] if t.get("name") == (rec.target or t.get("name"))), None)
    if tgt is None:
        raise NotFound(f"run '{job_id}': target '{rec.target}' is not in its manifest")
    tree = Tree(target=tgt["name"], params=tgt.get("params"), tree=tgt.get("tree"))
    _TREES[key] = tree
    return tree


@router.get("/runs/{job_id}/tree", response_model=Tree)
async def model_tree(job_id: str, deps: ToolDeps = Depends(get_deps)) -> Tree:
    """The run's model tree with parameter counts (rebuilt on the meta device)."""
    return await run_blocking(_tree, deps, job_id)


def _compare_known(deps: ToolDeps, ids: list[str], metrics: list[str] | None) -> Comparison:
    for job_id in ids:
        job_record(deps, job_id)
    return _compare(deps, ids, metrics)


@router.get("/compare", response_model=Comparison)
async def compare_runs(ids: list[str] = Query(..., min_length=1, max_length=200, description="run ids"),
                       metric: list[str] | None = Query(None, description="only these metrics (dotted)"),
                       deps: ToolDeps = Depends(get_deps)) -> Comparison:
    """Final metrics of several runs side by side; repeated runs pooled into mean ± 95% CI."""
    return await run_blocking(_compare_known, deps, ids, metric)
