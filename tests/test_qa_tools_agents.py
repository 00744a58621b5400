"""QA sweep of the agents CLI, as a researcher sees it in the terminal (session 3).

Real path everywhere: the ``caramba`` CLI as a subprocess, LiteLLM → HTTP → the scripted
OpenAI-compatible server (the only fake), ADK, MCP, A2A.

* ``caramba brainstorm --topic`` shows the discussion as it happens and ends with the
  ranked proposals (base, ``--set`` overrides, valid or not) — it used to print only the
  spend line and the run directory.
* ``caramba chat`` shows each reply once (the final answer was printed twice: streamed as
  a status update, then again as the final line), while intermediate messages still stream;
  a failed task shows its error as the reply (it was an empty reply after the error printed
  twice) and ``chat -m`` exits 2 (it exited 0).
* ``--api-base`` without ``--model`` is refused (it used to be silently ignored); so is a
  blank ``--topic`` (it started a brainstorm about nothing).
* a broken persona file no longer hides the other personas in ``caramba personas``.
* a failing model is one ``error: … fix: …`` plus one log line, not a 1000-line traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from caramba.tests.support.agents import agent_env, caramba
from caramba.tests.support.procs import free_port, stop_process
from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401
from caramba.tests.test_a2a_server import _wait_listening

PROPOSALS = """Ranked:
```json
[{"rank": 2, "title": "Broken idea", "rationale": "typo", "base": "mlp_classifier",
  "overrides": ["targets[0].runs[0].stepz=5"]},
 {"rank": 1, "title": "Train longer", "rationale": "loss still falling", "base": "mlp_classifier",
  "overrides": ["targets[0].runs[0].steps=900"], "metric": "val_loss"}]
```"""


def test_brainstorm_topic_shows_the_discussion_and_ranked_proposals(tmp_path: Path, scripted_llm: ScriptedLLM) -> None:
    llm = scripted_llm
    llm.add_turn("LEAD-OPEN: how do we make the digits MLP better?")
    llm.add_turn("ARCH-1: widen the hidden layers to 512.")
    llm.add_turn(PROPOSALS)
    done = caramba(tmp_path, "brainstorm", "--topic", "digits MLP", "--rounds", "1",
                   "--team", "lead=research_lead", "--team", "architect=architect",
                   "--model", "openai/scripted", "--api-base", llm.base_url)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    order = ["research_lead> LEAD-OPEN", "architect> ARCH-1", "ranked proposals (2;",
             "1. Train longer [valid] — loss still falling",
             "base mlp_classifier --set 'targets[0].runs[0].steps=900'",
             "2. Broken idea [INVALID] — typo", "stepz", "spent: 3 LLM calls"]
    positions = [out.find(s) for s in order]
    assert all(p >= 0 for p in positions), (order, out)
    assert positions == sorted(positions), out
    run_dir = next((tmp_path / "runs" / "brainstorm" / "brainstorm").iterdir())
    assert str(run_dir / "proposals.json") in out


def test_api_base_without_model_is_refused(tmp_path: Path) -> None:
    for args in (["personas"], ["brainstorm", "--topic", "x"], ["a2a", "serve", "--port", str(free_port())]):
        done = caramba(tmp_path, *args, "--api-base", "http://127.0.0.1:9/v1", timeout=120)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "--api-base http://127.0.0.1:9/v1 was given without --model" in done.stderr
        assert "fix: name the model served there" in done.stderr and "Traceback" not in done.stderr
    blank = caramba(tmp_path, "brainstorm", "--topic", "  ", "--model", "openai/x", "--api-base", "http://127.0.0.1:9/v1")
    assert blank.returncode == 2 and "the topic is blank" in blank.stderr, blank.stderr   # it used to ask the model
    assert not (tmp_path / "runs").exists()  # refused before any run directory was made


def test_chat_prints_each_reply_once(tmp_path: Path, scripted_llm: ScriptedLLM) -> None:
    llm = scripted_llm
    llm.add_turn("INTERIM: checking the presets.", tool_calls=[{"name": "list_presets", "arguments": {}}])
    llm.add_turn("FINAL: mlp_classifier is the smallest preset.")
    port = free_port()
    err = tmp_path / "a2a.stderr"
    with err.open("wb") as ferr:
        proc = subprocess.Popen([sys.executable, "-m", "caramba", "a2a", "serve", "--port", str(port),
                                 "--model", "openai/scripted", "--api-base", llm.base_url],
                                cwd=tmp_path, env=agent_env(), stdout=subprocess.DEVNULL, stderr=ferr)
    try:
        _wait_listening(proc, port, err)
        chat = caramba(tmp_path, "chat", "--a2a", f"http://127.0.0.1:{port}", "-m", "which preset is smallest?")
        failed = caramba(tmp_path, "chat", "--a2a", f"http://127.0.0.1:{port}", "-m", "nothing is scripted now")
    finally:
        stop_process(proc)
    assert chat.returncode == 0, chat.stderr
    served = err.read_text()
    assert "caramba a2a: serving" in served and "[EXPERIMENTAL]" not in served, served   # ADK's notices
    assert "Traceback" not in served, served
    out = chat.stdout
    assert out.count("FINAL: mlp_classifier is the smallest preset.") == 1, out
    assert "[TASK_STATE_COMPLETED]> FINAL: mlp_classifier is the smallest preset." in out
    assert out.count("INTERIM: checking the presets.") == 1, out          # intermediate text still shown …
    assert out.index("INTERIM") < out.index("FINAL"), out                  # … before the answer
    # a task that fails (the model endpoint answers 400): its error is the reply, shown once,
    # and `chat -m` exits 2 so a script notices
    assert failed.returncode == 2, (failed.stdout, failed.stderr)
    assert "error: the agent's task ended TASK_STATE_FAILED" in failed.stderr and "Traceback" not in failed.stderr
    last = failed.stdout.strip().splitlines()[-1]
    assert last.startswith("caramba research lead [TASK_STATE_FAILED]> ") and len(last) > 45, failed.stdout
    assert failed.stdout.count(last.split("> ", 1)[1]) == 1, failed.stdout


def test_personas_lists_every_persona_despite_a_broken_file(tmp_path: Path) -> None:
    (tmp_path / "personas").mkdir()
    (tmp_path / "personas" / "broken.yml").write_text("name: broken\nmodel: [\n")
    done = caramba(tmp_path, "personas", "--model", "openai/x", "--api-base", "http://127.0.0.1:9/v1", timeout=120)
    assert done.returncode == 2, (done.stdout, done.stderr)          # still an error for scripts …
    assert "research_lead" in done.stdout and "architect" in done.stdout  # … but the others are listed
    assert "broken" in done.stdout and "unusable: broken" in done.stdout
    assert f"error: {tmp_path / 'personas' / 'broken.yml'}: not valid YAML" in done.stderr
    assert "fix: fix the YAML syntax" in done.stderr and "Traceback" not in done.stderr


def test_a_failing_model_is_one_error_not_a_traceback_wall(tmp_path: Path, scripted_llm: ScriptedLLM) -> None:
    # nothing scripted: the endpoint answers 400, as a misconfigured provider would
    done = caramba(tmp_path, "brainstorm", "--topic", "x", "--team", "lead=research_lead",
                   "--model", "openai/scripted", "--api-base", scripted_llm.base_url)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "error: persona 'research_lead' (openai/scripted at" in done.stderr
    assert "Traceback" not in done.stderr and "╭─" not in done.stderr, done.stderr[:3000]
    assert len(done.stderr.splitlines()) < 12, done.stderr[:3000]      # it was ~1000 lines of Rich traceback
    assert "Give Feedback" not in done.stdout + done.stderr             # LiteLLM's banner
