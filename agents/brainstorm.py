"""The ``brainstorm`` process: a research team discussing a topic with shared context.

Non-interactive (``topic`` set, ``caramba brainstorm --topic T --rounds N``):

1. the lead opens (frames the question);
2. for each round every other member contributes, seeing the whole discussion so far;
   between rounds the lead moderates;
3. the lead ends with ranked proposals, each a concrete manifest change (a base preset
   plus ``dotted.path=value`` overrides), parsed and checked with ``validate_manifest``.

Each contribution is printed as it arrives (``persona> text``), and the ranked proposals
at the end, each with its base, ``--set`` overrides and whether it validated.

Interactive (no topic): a REPL. Plain text goes to the lead; ``@persona text`` routes to
that team member (``@claude …``); ``/wipe`` clears the shared context; ``/save`` writes
``discussion.md``; ``/exit`` (or end of input) stops.

Outputs in the run directory: ``events.jsonl`` (every turn and tool call),
``discussion.md``, ``proposals.json``. With ``memory.enabled`` (caramba.yml, or the
manifest's ``defaults.memory``, which wins per field) the discussion is also written to
Graphiti memory, in the group they name.
"""

from __future__ import annotations

from typing import Any

from caramba.agents.replies import Proposal, ask_structured
from caramba.agents.session import ProcessContext
from caramba.agents.transcript import write_json, write_text

HELP = "plain text → the lead · @persona text → one member · /wipe · /save · /exit"


class Discussion:
    """The shared context: who said what, in order."""

    def __init__(self) -> None:
        self.turns: list[tuple[str, str]] = []

    def add(self, speaker: str, text: str) -> None:
        self.turns.append((speaker, text))

    def render(self) -> str:
        return "\n\n".join(f"[{who}]: {text}" for who, text in self.turns) or "(nothing yet)"

    def markdown(self, title: str) -> str:
        body = "\n\n".join(f"**{who}**: {text}" for who, text in self.turns)
        return f"# {title}\n\n{body}\n"


def _prompt(topic: str, discussion: Discussion, ask: str) -> str:
    return f"Brainstorm topic: {topic}\n\nDiscussion so far:\n{discussion.render()}\n\n{ask}"


async def _say(ctx: ProcessContext, persona: str, discussion: Discussion, prompt: str) -> str:
    text = await ctx.team.ask(persona, prompt)
    discussion.add(persona, text)
    ctx.io.write(f"{persona}> {text}\n")  # the researcher follows the discussion as it happens
    return text


def _show_proposals(ctx: ProcessContext, proposals: list[dict[str, Any]]) -> None:
    """Print the ranked proposals: what to run, and whether the manifest change validated."""
    ctx.io.write(f"ranked proposals ({len(proposals)}; {ctx.run.dir / 'proposals.json'}):")
    for p in proposals:
        verdict = {True: "valid", False: "INVALID"}.get(p.get("valid"), "not checked")
        why = f" — {p['rationale']}" if p.get("rationale") else ""
        ctx.io.write(f"  {p['rank']}. {p['title']} [{verdict}]{why}")
        sets = " ".join(f"--set '{o}'" for o in p["overrides"])
        ctx.io.write(f"     base {p['base']} {sets}".rstrip())
        if p.get("valid") is False and p.get("issues"):
            ctx.io.write("     " + str(p["issues"]).replace("\n", "\n     "))


async def _proposals(ctx: ProcessContext, topic: str, discussion: Discussion) -> list[dict[str, Any]]:
    ask = ("Close the brainstorm: rank the best experiment proposals. Answer with one ```json block: a list "
           "of {rank, title, rationale, base, overrides, metric} where base is a preset name from "
           "list_presets and overrides are 'dotted.path=value' strings (as for `caramba run --set`).")
    proposals = await ask_structured(ctx, "lead", _prompt(topic, discussion, ask), list[Proposal], "proposals")
    proposals.sort(key=lambda p: p.rank)
    out: list[dict[str, Any]] = []
    for p in proposals:
        row: dict[str, Any] = p.model_dump()
        if ctx.cfg.validate_proposals and ctx.link is not None:
            ok, data = await ctx.tool("validate_manifest", {"path": f"preset:{p.base}" if "/" not in p.base
                                                            else p.base, "overrides": p.overrides})
            row["valid"] = bool(ok and data.get("ok"))
            row["issues"] = (data.get("message") if ok else data) or ""
        out.append(row)
    ctx.run.emit("proposals", ctx.persona("lead"), proposals=out)
    return out


async def _remember(ctx: ProcessContext, discussion: Discussion, name: str) -> None:
    from caramba.memory.settings import memory_config

    cfg = memory_config(ctx.workspace, ctx.spec.memory)  # caramba.yml + the manifest's defaults.memory
    if not cfg.memory.enabled:
        return
    from caramba.memory.record import record_transcript

    res = await record_transcript(ctx.workspace, discussion.render(), name=name, process="brainstorm",
                                  config=cfg)
    ctx.run.emit("memory", None, episode=res.episode.uuid, entities=res.entities, facts=res.facts)


async def run(ctx: ProcessContext) -> dict[str, Any]:
    if ctx.cfg.topic is None:
        return await repl(ctx)
    topic, lead = ctx.cfg.topic, ctx.persona("lead")
    members = [p for role, p in ctx.roles.items() if role != "lead" and p != lead]
    d = Discussion()
    await _say(ctx, lead, d, _prompt(topic, d, f"You moderate a brainstorm with {', '.join(members) or 'no one'}. "
                                              "Open it: frame the question and what to explore."))
    for r in range(1, ctx.cfg.rounds + 1):
        for m in members:
            await _say(ctx, m, d, _prompt(topic, d, f"Round {r}: contribute your most useful idea, concretely."))
        if r < ctx.cfg.rounds:
            await _say(ctx, lead, d, _prompt(topic, d, f"Moderate: sum up round {r} and steer round {r + 1}."))
    proposals = await _proposals(ctx, topic, d)
    write_text(ctx.run.dir / "discussion.md", d.markdown(f"Brainstorm: {topic}"))
    write_json(ctx.run.dir / "proposals.json", proposals)
    _show_proposals(ctx, proposals)
    await _remember(ctx, d, f"brainstorm {ctx.run.run_id}: {topic}")
    return {"turns": len(d.turns), "proposals": len(proposals)}


async def repl(ctx: ProcessContext) -> dict[str, Any]:
    """The interactive session (reads lines from ``ctx.io``)."""
    lead = ctx.persona("lead")
    d = Discussion()
    ctx.io.write(f"caramba brainstorm — team: {', '.join(dict.fromkeys(ctx.roles.values()))}\n{HELP}")
    saves = 0
    while True:
        line = ctx.io.read("you> ")  # blocking on purpose: Ctrl-C must reach the main thread
        if line is None or line.strip() == "/exit":
            break
        line = line.strip()
        if not line:
            continue
        if line == "/wipe":
            d = Discussion()
            ctx.run.emit("wipe", None)
            ctx.io.write("(context wiped)")
            continue
        if line == "/save":
            path = ctx.run.dir / "discussion.md"
            write_text(path, d.markdown("Brainstorm"))
            saves += 1
            ctx.run.emit("save", None, path=str(path))
            ctx.io.write(f"(saved {path})")
            continue
        if line.startswith("/"):
            ctx.io.write(f"unknown command {line.split()[0]} — {HELP}")
            continue
        target, text = lead, line
        if line.startswith("@"):
            name, _, text = line[1:].partition(" ")
            known = dict.fromkeys(ctx.roles.values())
            role_map = {role: p for role, p in ctx.roles.items()}
            target = role_map.get(name, name)
            if target not in known:
                ctx.io.write(f"no '{name}' on this team — choose one of: {', '.join(known)}")
                continue
        d.add("researcher", text)
        reply = await ctx.team.ask(target, _prompt("(interactive session)", d, f"Reply to the researcher as {target}."))
        d.add(target, reply)
        ctx.io.write(f"{target}> {reply}")
    write_text(ctx.run.dir / "discussion.md", d.markdown("Brainstorm"))
    if d.turns:
        await _remember(ctx, d, f"brainstorm {ctx.run.run_id}")
    return {"turns": len(d.turns), "saves": saves}
