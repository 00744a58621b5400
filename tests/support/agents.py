"""Helpers for the agents tests: run the real CLI as a subprocess, read transcripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def agent_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: no LLM configured, no provider keys."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CARAMBA_LLM") and not k.endswith("_API_KEY") and k != "CARAMBA_MCP_TOKEN"}
    env.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "GRAPHITI_TELEMETRY_ENABLED": "false",
                "GOOGLE_API_USE_CLIENT_CERTIFICATE": "false", "PYTHONUNBUFFERED": "1", **extra})
    return env


def caramba(ws: Path, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "caramba", *args], cwd=ws, env=agent_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def only_run_dir(ws: Path, manifest: str, target: str) -> Path:
    runs = [d for d in (ws / "runs" / manifest / target).iterdir() if d.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


def llm_personas(evs: list[dict[str, Any]]) -> list[str]:
    return [e["persona"] for e in evs if e["event"] == "llm_turn"]
