"""`caramba memory add` when the language model misbehaves, as researchers' local models do:
JSON that ignores Graphiti's schema is a clear error (nothing written), and an unreachable
server is one error line on stderr with nothing from LiteLLM on stdout. Real Graphiti on
embedded FalkorDB; the scripted OpenAI-compatible server is the only fake."""

from __future__ import annotations

import json

import pytest

from caramba.cli import main
from caramba.tests.support.falkordb import falkordb_workspace  # noqa: F401 (fixture)
from caramba.tests.support.procs import free_port
from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401 (fixture)


def test_schema_violating_answer_is_a_clear_error(falkordb_workspace, scripted_llm: ScriptedLLM,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    ws, _ep = falkordb_workspace
    monkeypatch.chdir(ws.root)
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(ws.root))
    monkeypatch.delenv("CARAMBA_LLM_MODEL", raising=False)
    (ws.root / "caramba.yml").write_text(f"llm:\n  model: openai/scripted\n  api_base: {scripted_llm.base_url}\n")
    scripted_llm.on_json({"entities": [{"name": "int8 KV cache"}]})  # a model ignoring the schema
    capsys.readouterr()
    code = main(["memory", "add", "int8 KV cache halves decode memory", "--group", "kv"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "ExtractedEntities" in err and "does not follow its schema" in err and "extracted_entities" in err
    assert "fix:" in err and "structured output" in err and "Traceback" not in err
    assert main(["memory", "episodes", "--group", "kv", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # nothing half-written


def test_unreachable_llm_prints_one_error_and_nothing_on_stdout(falkordb_workspace, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import litellm

    ws, _ep = falkordb_workspace
    monkeypatch.chdir(ws.root)
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(ws.root))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("CARAMBA_LLM_MODEL", raising=False)
    monkeypatch.setattr(litellm, "suppress_debug_info", False)  # as in a fresh process
    (ws.root / "caramba.yml").write_text(f"llm:\n  model: openai/scripted\n  api_base: http://127.0.0.1:{free_port()}/v1\n")
    capsys.readouterr()
    code = main(["memory", "add", "RoPE theta 500k helped"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""  # was LiteLLM's "Give Feedback / Get Help" banner
    assert err.startswith("error: LLM call to openai/scripted") and "fix:" in err
    assert "LiteLLM.Info" not in err and "Traceback" not in err


def test_bad_windows_and_counts_are_clear_errors(falkordb_workspace, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    ws, _ep = falkordb_workspace
    monkeypatch.chdir(ws.root)
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(ws.root))
    cases = [
        # was: a FalkorDB "Limit operates only on non-negative integers" traceback
        (["memory", "episodes", "-n", "-1"], "number of episodes must be >= 1", "-n 20"),
        # was: the fix offered "last week" for --until, which refuses it
        (["memory", "search", "x", "--until", "last week"], "--until 'last week' is not a date", "go in --since"),
        # was: silently "no facts found"
        (["memory", "search", "x", "--since", "today", "--until", "2020-01-01"], "is before --since", "swap"),
        (["memory", "search", "x", "-k", "0"], "limit must be >= 1", "-k 10"),
    ]
    for argv, message, fix in cases:
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert message in err and "fix:" in err and fix in err and "Traceback" not in err, (argv, err)
    capsys.readouterr()
    assert main(["memory", "search", "x", "--since", "last 3 days", "--until", "2999-01-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
