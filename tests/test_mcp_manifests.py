"""Manifest tools through the SDK's in-memory client against the real server object:
validation errors carry YAML paths and lines, dry-run gives parameter counts, write_manifest
validates before writing, python: impls need the server's permission, presets and the
component catalog (tools and resources)."""

from __future__ import annotations

import json

import anyio
import pytest
from mcp import Client

from caramba.tools.server import ServerOptions, build_server
from caramba.tests.support.mcp_manifests import tiny, tiny_bad_width, tiny_python_impl, tiny_self_granted
from caramba.tests.support.mcp_procs import error_text, structured


def _run(ws, body, **opts):
    server, _ = build_server(ServerOptions(workspace=ws, **opts))

    async def main() -> None:
        async with Client(server) as client:
            await body(client)

    anyio.run(main)


def test_validate_dry_run_and_write(tmp_path):
    async def body(client):
        bad = structured(await client.call_tool("validate_manifest", {"text": tiny_bad_width()}))
        assert bad["ok"] is False and len(bad["issues"]) == 1
        issue = bad["issues"][0]
        assert issue["path"] == "targets[0].system.config.model.topology.layers[1].d_model"
        assert issue["line"] == tiny_bad_width().splitlines().index(
            next(line for line in tiny_bad_width().splitlines() if "d_model: 48" in line)) + 1
        assert issue["expected"] == "32" and issue["found"] == "48" and issue["fix"]

        ok = structured(await client.call_tool("validate_manifest", {"text": tiny()}))
        assert ok == {"ok": True, "name": "tiny", "targets": ["train"], "issues": [], "message": ""}

        # an override can break it too, and the path names the overridden field
        over = structured(await client.call_tool("validate_manifest", {
            "text": tiny(), "overrides": ["targets[0].system.config.model.topology.layers[2].d_in=31"]}))
        assert over["ok"] is False and "layers[2].d_in" in over["issues"][0]["path"]

        plan = structured(await client.call_tool("dry_run_manifest", {"text": tiny()}))["plan"]
        tgt = plan["targets"][0]
        # embedding 64*32, RMSNorm 32, SwiGLU 3*32*64, head 32*64 (+64 bias)
        assert tgt["tree"]["children"][0]["children"][0]["params"] == 64 * 32
        assert tgt["params"] == sum(c["params"] for c in tgt["tree"]["children"])
        assert tgt["runs"][0]["steps"] == 4

        err = error_text(await client.call_tool("dry_run_manifest", {"text": tiny_bad_width()}))
        assert "layers[1].d_model" in err and "fix:" in err

        # write: validated first, confined to manifests/, no silent overwrite
        assert "layers[1].d_model" in error_text(await client.call_tool(
            "write_manifest", {"path": "manifests/bad.yml", "text": tiny_bad_width()}))
        assert not (tmp_path / "manifests" / "bad.yml").exists()
        assert "under manifests/" in error_text(await client.call_tool(
            "write_manifest", {"path": "notes/x.yml", "text": tiny()}))
        assert "outside the workspace" in error_text(await client.call_tool(
            "write_manifest", {"path": "manifests/../../x.yml", "text": tiny()}))
        w = structured(await client.call_tool("write_manifest", {"path": "manifests/tiny.yml", "text": tiny()}))
        assert w["path"] == "manifests/tiny.yml" and (tmp_path / "manifests" / "tiny.yml").read_text() == tiny()
        assert "already exists" in error_text(await client.call_tool(
            "write_manifest", {"path": "manifests/tiny.yml", "text": tiny(8)}))

        # the written file is now a workspace preset, validated by path
        presets = structured(await client.call_tool("list_presets", {}))["presets"]
        mine = [p for p in presets if p["name"] == "tiny"]
        assert mine and mine[0]["origin"] == "workspace" and "toy LM" in mine[0]["description"]
        assert structured(await client.call_tool("get_preset", {"name": "tiny"}))["text"] == tiny()
        assert structured(await client.call_tool("validate_manifest", {"path": "preset:tiny"}))["ok"]
        assert structured(await client.call_tool("validate_manifest", {"path": "manifests/tiny.yml"}))["ok"]
        assert "exactly one" in error_text(await client.call_tool(
            "validate_manifest", {"path": "manifests/tiny.yml", "text": tiny()}))
        assert "no preset named" in error_text(await client.call_tool("get_preset", {"name": "nope"}))

        res = await client.read_resource("caramba://presets/tiny")
        assert res.contents[0].text == tiny()

        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert {"propose_ablation", "explain_run", "review_manifest"} <= prompts
        msg = await client.get_prompt("propose_ablation", {"manifest": "manifests/tiny.yml", "question": "is SwiGLU needed"})
        text = msg.messages[0].content.text
        assert tiny() in text and "is SwiGLU needed" in text and "validate_manifest" in text
        with pytest.raises(Exception, match="outside the workspace"):
            await client.get_prompt("review_manifest", {"manifest": "../secret.yml"})

    _run(tmp_path, body)


def test_python_impl_needs_server_permission(tmp_path):
    async def refused(client):
        v = structured(await client.call_tool("validate_manifest", {"text": tiny_python_impl()}))
        assert v["ok"] is False and v["issues"][0]["path"] == "targets[0].trainer.impl"
        err = error_text(await client.call_tool("validate_manifest", {"text": tiny_self_granted()}))
        assert "--allow-python-impl" in err
        err = error_text(await client.call_tool("run_manifest", {"text": tiny_self_granted()}))
        assert "--allow-python-impl" in err
        assert not (tmp_path / "runs").exists()

    _run(tmp_path, refused)

    async def allowed(client):
        assert structured(await client.call_tool("validate_manifest", {"text": tiny_self_granted()}))["ok"]

    _run(tmp_path, allowed, allow_python_impl=True)


def test_catalog_and_size_limit(tmp_path):
    async def body(client):
        layers = structured(await client.call_tool("layer_catalog", {"family": "layers"}))["components"]
        by_name = {c["name"]: c for c in layers}
        assert "RMSNormLayer" in by_name and "rms_norm" in by_name["RMSNormLayer"]["aliases"]
        fields = {f["name"] for f in by_name["AttentionLayer"]["fields"]}
        assert {"d_model", "n_heads"} <= fields
        one = structured(await client.call_tool("layer_catalog", {"name": "swiglu", "with_schema": True}))
        assert [c["name"] for c in one["components"]] == ["SwiGLULayer"]
        assert "properties" in one["components"][0]["config_schema"]
        assert "no component named" in error_text(await client.call_tool("layer_catalog", {"name": "Nope"}))
        bad = await client.call_tool("layer_catalog", {"family": "gadgets"})
        assert bad.is_error  # rejected by the input schema (Literal enum)

        sections = structured(await client.call_tool("layer_catalog", {"family": "sections", "name": "train"}))
        (train,) = sections["components"]
        assert train["family"] == "sections" and "compile_mode" in {f["name"] for f in train["fields"]}
        data = structured(await client.call_tool("layer_catalog", {"family": "datasets"}))["components"]
        assert "dataset.sklearn" in {c["name"] for c in data}

        res = await client.read_resource("caramba://catalog/systems")
        names = [c["name"] for c in json.loads(res.contents[0].text)]
        assert "system.language_model" in names

        big = "# " + "x" * 300_000 + "\n" + tiny()
        assert "limit" in error_text(await client.call_tool("validate_manifest", {"text": big}))

    _run(tmp_path, body)
