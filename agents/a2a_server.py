"""``caramba a2a serve``: the research lead (or another persona) over the A2A protocol.

The research lead (an ADK ``LlmAgent``, with architect, experimenter, reviewer and writer
as sub-agents it can transfer to) is turned into an A2A Starlette app with ADK's
``to_a2a`` — which adds its routes when the app starts, so it is served with uvicorn
(lifespan on). The agent card at ``/.well-known/agent-card.json`` advertises streaming
and four skills: brainstorm, design experiment, run manifest, summarise results. Message
send (blocking or streamed), task states (submitted → working → completed/failed) and
``tasks/cancel`` come from ADK's executor and the a2a-sdk request handler.

As in every process, models are resolved before anything starts (exit 2 with the persona
and model named), the agents use caramba's MCP tools through an embedded MCP server, and
every model/tool call lands in a transcript: ``runs/a2a/research_lead/<run id>/events.jsonl``.

``--persona NAME`` serves another persona instead (``runs/a2a/NAME/…``; its card has one
skill, the persona's description), e.g. a reviewer that another caramba's lead lists as a
remote sub-agent (``sub_agents: [{name: remote_reviewer, a2a: http://127.0.0.1:9001}]``)
and delegates to over A2A (:mod:`caramba.agents.remote`).
The server binds 127.0.0.1 by default; A2A carries no authentication here, so another
address needs ``--allow-remote`` (put it behind an authenticating proxy).
"""

from __future__ import annotations

import sys
from typing import Any

from caramba.agents.budget import Accountant, Budget, check_priced
from caramba.agents.mcp_link import McpLink
from caramba.agents.models import ModelOverride, resolve_team_models
from caramba.agents.personas import load_persona
from caramba.agents.team import Team
from caramba.agents.transcript import ProcessRun
from caramba.engine.errors import CarambaError
from caramba.workspace import Workspace

LEAD = "research_lead"
SKILLS = (
    ("brainstorm", "Brainstorm", "Discuss an architecture question with the team and rank experiment proposals, "
                                 "each a concrete manifest change.", ["research", "ideas"],
     ["Brainstorm ways to cut attention cost at 8k context."]),
    ("design_experiment", "Design experiment", "Turn a goal into a valid caramba manifest (validated and dry-run).",
     ["manifest", "design"], ["Design an ablation of RoPE theta on the standard transformer preset."]),
    ("run_manifest", "Run manifest", "Start a caramba run, follow its progress and report its metrics.",
     ["run", "training"], ["Run preset mlp_classifier with 50 steps and tell me the accuracy."]),
    ("summarise_results", "Summarise results", "Read runs' results and artifacts and summarise them, with numbers.",
     ["results", "analysis"], ["Compare the last two runs of tiny."]),
)


def agent_card(host: str, port: int, description: str, persona: str = LEAD) -> Any:
    """The A2A agent card (a2a-sdk 1.x protobuf types)."""
    import caramba
    from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill

    skills = [AgentSkill(id=i, name=n, description=d, tags=t, examples=e) for i, n, d, t, e in SKILLS]
    if persona != LEAD:
        skills = [AgentSkill(id=persona, name=persona.replace("_", " "), description=description, tags=[persona])]
    return AgentCard(name=f"caramba {persona.replace('_', ' ')}", description=description, version=caramba.__version__,
                     supported_interfaces=[AgentInterface(url=f"http://{host}:{port}", protocol_binding="JSONRPC",
                                                          protocol_version="1.0")],
                     capabilities=AgentCapabilities(streaming=True, push_notifications=False),
                     default_input_modes=["text/plain"], default_output_modes=["text/plain"], skills=skills)


def check_host(host: str, allow_remote: bool) -> None:
    from caramba.tools.auth import is_loopback

    if not is_loopback(host) and not allow_remote:
        raise CarambaError(f"refusing to serve A2A on {host}: it is not a loopback address and A2A requests "
                           "are not authenticated here",
                           fix="bind 127.0.0.1 (the default), or pass --allow-remote behind an authenticating proxy")


def serve_a2a(ws: Workspace, *, host: str, port: int, override: ModelOverride | None = None,
              allow_remote: bool = False, max_cost_usd: float | None = None, persona: str = LEAD) -> None:
    """Serve ``persona`` (with its sub-agents) until interrupted (blocking)."""
    from google.adk.a2a.utils.agent_to_a2a import to_a2a

    from caramba.tools.transports import listen_socket, run_uvicorn

    check_host(host, allow_remote)
    lead = load_persona(persona, ws.root)
    personas = [lead, *(load_persona(n, ws.root) for n in lead.local_sub_agents())]
    settings = resolve_team_models(personas, ws.config().llm, override)        # exit 2 before anything starts
    budget = Budget(max_llm_calls=10**9, max_tokens=10**15, max_cost_usd=max_cost_usd, max_wall_s=10**9)
    check_priced(budget, {n: s.model for n, s in settings.items()})
    sock = listen_socket(host, port)  # a busy port is an error before anything is started or written
    run = ProcessRun(ws.runs_dir, "a2a", persona, "a2a_server", argv=sys.argv)
    run.emit("process_started", process="a2a_server", url=f"http://{host}:{port}",
             team=[p.name for p in personas], remote=[r.model_dump() for r in lead.remote_sub_agents()],
             models={n: s.describe() for n, s in settings.items()})
    accountant = Accountant(budget)
    link = McpLink(ws)
    link.start()
    state = "completed"
    try:
        team = Team(personas, settings, link, run, accountant)
        agent = team.build_agent(persona, with_sub_agents=True)
        app = to_a2a(agent, host=host, port=port, agent_card=agent_card(host, port, lead.description, persona))
        print(f"caramba a2a: serving {persona} at http://{host}:{port} "
              f"(card: /.well-known/agent-card.json; transcript {run.dir})", file=sys.stderr, flush=True)
        run_uvicorn(app, sock, lifespan="on", timeout_graceful_shutdown=3)
    except BaseException:
        state = "failed"
        raise
    finally:
        link.stop()
        run.finish(state, totals=accountant.totals())
