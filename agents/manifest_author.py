"""The ``manifest_author`` process (aliases ``research_loop``, ``development``).

For each of ``max_iterations``:

1. **draft** — the experimenter (with the manifest/run/result/code-graph tools) gets the
   goal, the base preset, the leaderboard and the reviewer's last verdict, and answers
   with a complete manifest in a ```yaml block;
2. **validate → repair** — the process checks it with the MCP ``validate_manifest`` and
   ``dry_run_manifest`` tools; precise errors (file, line, YAML path, expected, fix) go
   back to the experimenter, at most ``max_repairs`` times;
3. **run → read** — ``run_manifest`` (on ``device``), ``wait_run``, ``get_results``; the
   goal's ``metric`` goes on the leaderboard;
4. **review** — the reviewer's verdict (accept/revise/reject, score, reasons).

Every generated manifest is saved under ``manifests/`` in the process's run directory
(``iter<i>_attempt<j>.yml``) and is re-runnable with ``caramba run``. Outputs:
``leaderboard.json`` (rewritten after each iteration), ``best.yml`` and ``report.md``.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

from caramba.agents.replies import Verdict, ask_structured, fenced
from caramba.agents.session import ProcessContext
from caramba.agents.transcript import write_json, write_text


def _draft_prompt(ctx: ProcessContext, board: list[dict[str, Any]], verdict: dict[str, Any] | None) -> str:
    c = ctx.cfg
    parts = [f"Goal: {c.goal}", f"Metric: {c.metric} ({'lower' if c.mode == 'min' else 'higher'} is better).",
             f"Runs use device {c.device or 'auto'}; keep them small and quick."]
    if c.base:
        parts.append(f"Start from the preset '{c.base}' (get_preset) and change what serves the goal.")
    if board:
        parts.append("Leaderboard so far:\n" + json.dumps(board, indent=1))
    if verdict:
        parts.append("Reviewer's last verdict:\n" + json.dumps(verdict))
    parts.append("Draft the next experiment. Reply with the complete manifest (version 2) in one ```yaml block.")
    return "\n\n".join(parts)


async def _check(ctx: ProcessContext, text: str) -> tuple[bool, str, dict[str, Any]]:
    """Validate, then dry-run: ``(ok, problems as text, plan)``."""
    ok, data = await ctx.tool("validate_manifest", {"text": text})
    if not ok:
        return False, str(data), {}
    if not data.get("ok"):
        return False, data.get("message") or json.dumps(data.get("issues")), {}
    ok, plan = await ctx.tool("dry_run_manifest", {"text": text})
    if not ok:
        return False, str(plan), {}
    return True, "", plan.get("plan", {})


async def _draft_valid(ctx: ProcessContext, it: int, prompt: str) -> tuple[str | None, str | None, dict[str, Any]]:
    """Draft and repair until valid: ``(workspace-relative path, text, plan)`` or Nones."""
    exp = ctx.persona("experimenter")
    reply = await ctx.team.ask(exp, prompt)
    folder = ctx.run.dir / "manifests"
    for attempt in range(1, ctx.cfg.max_repairs + 2):
        text = fenced(reply, "yaml")
        path = folder / f"iter{it}_attempt{attempt}.yml"
        if text is None:
            ok, problems, plan = False, "your reply has no ```yaml block with the manifest", {}
        else:
            write_text(path, text)
            ok, problems, plan = await _check(ctx, text)
        rel = str(path.relative_to(ctx.workspace.root)) if text is not None else None
        ctx.run.emit("manifest_attempt", exp, iteration=it, attempt=attempt, path=rel, valid=ok, problems=problems)
        if ok:
            return rel, text, plan
        if attempt > ctx.cfg.max_repairs:
            break
        reply = await ctx.team.ask(exp, f"The manifest is not valid yet:\n{problems}\n\n"
                                        "Fix every problem and reply with the whole corrected manifest in one ```yaml block.")
    return None, None, {}


def _metric(results: dict[str, Any] | None, metric: str) -> float | None:
    runs = (results or {}).get("runs") or {}
    values = [float(r[metric]) for r in runs.values() if isinstance(r, dict) and isinstance(r.get(metric), int | float)]
    return values[0] if len(values) == 1 else (min(values) if values else None)


async def _run(ctx: ProcessContext, rel: str) -> dict[str, Any]:
    ok, status = await ctx.tool("run_manifest", {"path": rel, **({"device": ctx.cfg.device} if ctx.cfg.device else {})})
    if not ok:
        return {"state": "failed", "message": status}
    job = status["job_id"]
    ok, waited = await ctx.tool("wait_run", {"job_id": job, "timeout_s": ctx.cfg.run_timeout_s})
    st = waited["status"] if ok else {"state": "unknown", "message": waited}
    ok, res = await ctx.tool("get_results", {"job_id": job})
    results = res.get("results") if ok else None
    return {"job_id": job, "state": st.get("state"), "run_dir": st.get("run_dir"), "message": st.get("message"),
            "results": results, "value": _metric(results, ctx.cfg.metric)}


def _rank(board: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    scored = [e for e in board if e.get("value") is not None]
    scored.sort(key=lambda e: e["value"], reverse=(mode == "max"))
    return scored + [e for e in board if e.get("value") is None]


async def run(ctx: ProcessContext) -> dict[str, Any]:
    c = ctx.cfg
    board: list[dict[str, Any]] = []
    verdict: dict[str, Any] | None = None
    for it in range(1, c.max_iterations + 1):
        rel, text, plan = await _draft_valid(ctx, it, _draft_prompt(ctx, _rank(board, c.mode), verdict))
        entry: dict[str, Any] = {"iteration": it, "manifest": rel, "metric": c.metric}
        if rel is None:
            entry.update(state="invalid", value=None)
        else:
            entry["params"] = [t.get("params") for t in plan.get("targets", [])]
            entry.update({k: v for k, v in (await _run(ctx, rel)).items() if k != "results"})
        review = (f"Goal: {c.goal}\nIteration {it} manifest:\n```yaml\n{text or '(no valid manifest)'}\n```\n"
                  f"Outcome: {json.dumps(entry)}\n\nGive your verdict as one ```json block "
                  "{verdict: accept|revise|reject, score: 0-10, reasons: [...]}.")
        verdict = (await ask_structured(ctx, "reviewer", review, Verdict, "verdict")).model_dump()
        entry["verdict"] = verdict
        board.append(entry)
        write_json(ctx.run.dir / "leaderboard.json", _rank(board, c.mode))
        ctx.run.emit("leaderboard", None, leaderboard=_rank(board, c.mode))
    ranked = _rank(board, c.mode)
    best = ranked[0] if ranked and ranked[0].get("value") is not None else None
    if best is not None:
        shutil.copyfile(ctx.workspace.root / best["manifest"], ctx.run.dir / "best.yml")
    write_text(ctx.run.dir / "report.md", _report(ctx, ranked, best))
    return {"iterations": len(board), "best": best["manifest"] if best else None,
            "best_value": best["value"] if best else None}


def _report(ctx: ProcessContext, ranked: list[dict[str, Any]], best: dict[str, Any] | None) -> str:
    c = ctx.cfg
    lines = [f"# Manifest authoring: {c.goal}", "", f"Metric: `{c.metric}` ({c.mode}).", "",
             "| rank | iteration | state | value | verdict | manifest | run |", "|---|---|---|---|---|---|---|"]
    for i, e in enumerate(ranked, 1):
        v = e.get("verdict") or {}
        lines.append(f"| {i} | {e['iteration']} | {e.get('state')} | {e.get('value')} | {v.get('verdict')} "
                     f"({v.get('score')}) | {e.get('manifest')} | {e.get('run_dir')} |")
    lines += ["", f"Best: `{best['manifest']}` ({c.metric} = {best['value']})" if best else "No run produced the metric.",
              "", "Re-run any manifest with `caramba run <manifest>`."]
    return "\n".join(lines) + "\n"
