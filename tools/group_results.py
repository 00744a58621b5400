"""Result tools: ``get_results``, ``get_artifact``, ``compare_runs``.

* ``get_results`` returns the run's ``results.json`` (final metrics per ``runs[].id``,
  verification verdicts, benchmark tables) as structured JSON.
* ``get_artifact`` returns a file of the run directory: CSV/JSON/TeX/text as text, PNG as
  MCP image content (so an assistant can look at the loss curve).
* ``compare_runs`` lines up the final metrics of several jobs. Rows that repeat — the
  same ``runs[].id`` (or the same ``exp`` name) across jobs or seeds — are pooled into
  mean ± 95% CI (Student's t, :mod:`caramba.tools.stats`).
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.errors import CarambaError
from caramba.tools.common import ToolDeps, run_blocking, tool_errors
from caramba.tools.job_store import JobState
from caramba.tools.run_files import read_json
from caramba.tools.stats import Summary, summary

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
TEXT_SUFFIXES = {".csv", ".json", ".jsonl", ".tex", ".txt", ".md", ".yml", ".yaml", ".log"}


class Results(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_id: str
    state: JobState
    results: dict[str, Any] | None = Field(description="results.json, or None while the run has not written it")
    artifacts: list[str] = Field(description="files under artifacts/, relative to the run directory")


class ArtifactInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_id: str
    path: str = Field(description="path relative to the run directory")
    kind: str = Field(description="'image' or 'text'")
    bytes: int
    truncated: bool


class MetricRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(description="the runs[].id (or exp) the values were pooled under")
    jobs: list[str]
    metrics: dict[str, Summary] = Field(description="metric → mean, sample std, 95% CI half-width, values")


class Comparison(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[MetricRow]


def _run_dir(deps: ToolDeps, job_id: str) -> tuple[Any, Path]:
    rec = deps.jobs.get(job_id)
    run_dir = deps.jobs.run_dir(rec)
    if run_dir is None:
        raise CarambaError(f"job '{job_id}' has no run directory yet (state {rec.state})",
                           fix="wait_run until it has started, or see run_status for why it failed")
    return rec, run_dir


def _results(deps: ToolDeps, job_id: str) -> Results:
    rec, run_dir = _run_dir(deps, job_id)
    art = run_dir / "artifacts"
    files = sorted(str(p.relative_to(run_dir)) for p in art.rglob("*") if p.is_file()) if art.is_dir() else []
    return Results(job_id=job_id, state=rec.state, results=read_json(run_dir / "results.json"), artifacts=files)


def _artifact(deps: ToolDeps, job_id: str, path: str) -> CallToolResult:
    _, run_dir = _run_dir(deps, job_id)
    rel = path if "/" in path or path in ("results.json", "run.json", "manifest.yml") else f"artifacts/{path}"
    full = (run_dir / rel).resolve()
    if not full.is_relative_to(run_dir.resolve()) or "checkpoints" in full.relative_to(run_dir.resolve()).parts:
        raise CarambaError(f"'{path}' is not a file of run '{job_id}'",
                           fix="name an artifact as listed by get_results (e.g. 'artifacts/loss_curve.png')")
    if not full.is_file():
        raise CarambaError(f"run '{job_id}' has no file '{rel}'", fix="get_results lists the artifacts")
    size = full.stat().st_size
    limits = deps.sandbox.limits
    if full.suffix.lower() == ".png":
        if size > limits.max_image_bytes:
            raise CarambaError(f"'{rel}' is {size} bytes, over the image limit {limits.max_image_bytes}")
        info = ArtifactInfo(job_id=job_id, path=rel, kind="image", bytes=size, truncated=False)
        data = base64.b64encode(full.read_bytes()).decode()
        return CallToolResult(content=[ImageContent(type="image", data=data, mime_type="image/png")],
                              structured_content=info.model_dump(mode="json"))
    if full.suffix.lower() not in TEXT_SUFFIXES:
        raise CarambaError(f"'{rel}' is not a text or PNG artifact",
                           fix=f"get_artifact returns PNG images and text files ({', '.join(sorted(TEXT_SUFFIXES))})")
    with full.open("rb") as f:
        text = f.read(limits.max_read_bytes).decode("utf-8", errors="replace")
    info = ArtifactInfo(job_id=job_id, path=rel, kind="text", bytes=size, truncated=size > limits.max_read_bytes)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=info.model_dump(mode="json"))


def _numeric(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, int | float) and math.isfinite(float(v)):
            out[prefix + k] = float(v)
        elif isinstance(v, dict):
            out.update(_numeric(v, f"{prefix}{k}."))
    return out


def run_rows(results: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """``(key, numeric metrics)`` per ``runs[]`` entry of a results.json."""
    runs = results.get("runs")
    rows: list[tuple[str, dict[str, float]]] = []
    items = runs.items() if isinstance(runs, dict) else (
        (str(r.get("id")), r) for r in runs if isinstance(r, dict)) if isinstance(runs, list) else []
    for run_id, entry in items:
        if not isinstance(entry, dict):
            continue
        metrics = entry.get("metrics", entry)
        key = str(entry.get("exp") or run_id)
        rows.append((key, _numeric(metrics) if isinstance(metrics, dict) else {}))
    return rows


def _compare(deps: ToolDeps, job_ids: list[str], metrics: list[str] | None) -> Comparison:
    pooled: dict[str, tuple[list[str], dict[str, list[float]]]] = {}
    for job_id in job_ids:
        res = _results(deps, job_id)
        if res.results is None:
            raise CarambaError(f"job '{job_id}' has no results.json (state {res.state})",
                               fix="compare finished runs (wait_run first)")
        for key, values in run_rows(res.results):
            jobs, acc = pooled.setdefault(key, ([], {}))
            jobs.append(job_id)
            for name, v in values.items():
                if metrics is None or name in metrics:
                    acc.setdefault(name, []).append(v)
    rows = [MetricRow(key=k, jobs=sorted(set(j)), metrics={m: summary(v) for m, v in sorted(acc.items())})
            for k, (j, acc) in sorted(pooled.items())]
    return Comparison(rows=rows)


def register(server: MCPServer, deps: ToolDeps) -> None:
    """Add the result tools."""

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def get_results(job_id: Annotated[str, Field(description="job id (= run id)")]) -> Results:
        """Final metrics per run, verification verdicts and benchmark tables (results.json),
        plus the list of artifacts."""
        return await run_blocking(_results, deps, job_id)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def get_artifact(
        job_id: Annotated[str, Field(description="job id (= run id)")],
        path: Annotated[str, Field(description="artifact path as listed by get_results, e.g. 'artifacts/loss_curve.png'")],
    ) -> Annotated[CallToolResult, ArtifactInfo]:
        """Fetch a run artifact: PNG as an image, CSV/JSON/TeX/text as text."""
        return await run_blocking(_artifact, deps, job_id, path)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def compare_runs(
        job_ids: Annotated[list[str], Field(min_length=1, max_length=200, description="jobs to compare")],
        metrics: Annotated[list[str] | None, Field(description="only these metric names (dotted for nested)")] = None,
    ) -> Comparison:
        """Final metrics side by side; repeated runs (seeds) pooled into mean ± 95% CI."""
        return await run_blocking(_compare, deps, job_ids, metrics)
