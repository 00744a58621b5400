"""The ``paper_review`` process: the reviewer scores a paper and proposes follow-ups.

``strictness`` (lenient | standard | strict) sets the bar in the prompt. Output:
``review.json`` ({score, summary, strengths, weaknesses, follow_ups: [{title, rationale,
base, overrides}]}) and ``review.md`` in the run directory; each follow-up that names a
base preset is checked with the MCP ``validate_manifest`` tool (``valid``, ``issues``).
"""

from __future__ import annotations

from typing import Any

from caramba.agents.replies import Review, ask_structured
from caramba.agents.session import ProcessContext
from caramba.agents.transcript import write_json, write_text
from caramba.engine.errors import CarambaError

BARS = {"lenient": "Be encouraging; flag only clear errors.",
        "standard": "Review as for a good workshop: soundness, clarity, evidence.",
        "strict": "Review as for a top venue: demand baselines, seeds, ablations and exact claims."}


async def run(ctx: ProcessContext) -> dict[str, Any]:
    paper = ctx.workspace.resolve(ctx.cfg.paper)
    if not paper.is_file():
        raise CarambaError(f"{ctx.spec.where}.paper: '{ctx.cfg.paper}' does not exist",
                           fix="point it at a .tex file written by paper_write (workspace-relative)")
    prompt = (f"Strictness: {ctx.cfg.strictness}. {BARS[ctx.cfg.strictness]}\n\nReview this paper and answer with one "
              "```json block {score: 0-10, summary, strengths: [...], weaknesses: [...], follow_ups: "
              "[{title, rationale, base, overrides}]} where each follow-up is a manifest change (a preset name and "
              f"'dotted.path=value' overrides).\n\n```latex\n{paper.read_text()[:60000]}\n```")
    review = await ask_structured(ctx, "reviewer", prompt, Review, "review")
    data = review.model_dump()
    for f in data["follow_ups"]:
        if f.get("base") and f.get("overrides") and ctx.link is not None:
            ok, res = await ctx.tool("validate_manifest", {"path": f"preset:{f['base']}", "overrides": f["overrides"]})
            f["valid"] = bool(ok and res.get("ok"))
            f["issues"] = (res.get("message") if ok else res) or ""
    write_json(ctx.run.dir / "review.json", data)
    md = [f"# Review of {ctx.cfg.paper} ({ctx.cfg.strictness})", "", f"Score: {data['score']}/10", "", data["summary"], "",
          "## Strengths", *(f"- {s}" for s in data["strengths"]), "", "## Weaknesses", *(f"- {s}" for s in data["weaknesses"]),
          "", "## Follow-up experiments", *(f"- {f['title']}: base `{f.get('base')}`, overrides {f.get('overrides')}"
                                            f"{'' if f.get('valid', True) else ' (INVALID: ' + str(f.get('issues')) + ')'}"
                                            for f in data["follow_ups"])]
    write_text(ctx.run.dir / "review.md", "\n".join(md) + "\n")
    return {"score": data["score"], "follow_ups": len(data["follow_ups"])}
