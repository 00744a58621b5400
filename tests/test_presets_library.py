"""The issue-3 presets run end to end with a few steps, and every shipped preset dry-runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from caramba.engine.manifest import load_manifest
from caramba.engine.plan import make_plan
from caramba.engine.runner import run_target
from caramba.workspace import Workspace
from caramba.tests.library_fixtures import one_thread  # noqa: F401, E402

pytestmark = pytest.mark.usefixtures("one_thread")

MANIFESTS = Path(__file__).resolve().parent.parent / "manifests"

# small but real: a few optimizer steps on short blocks, one eval at the end
LM = ["defaults.logging.eval_iters=2", "targets[*].runs[0].steps=3", "targets[*].runs[0].train.eval_every=3",
      "targets[*].runs[0].train.batch_size=4", "targets[*].data.config.block_size=32"]
FAST = {
    "dba.yml": (["standard", "decoupled"], LM),
    "moe_transformer.yml": (["moe"], LM),
    "mamba_ssm.yml": (["mamba"], LM),
    "graph_node_classification.yml": (["sbm_gcn", "karate_gat"], ["vars.steps=5"]),
    "vit.yml": (["digits"], ["vars.steps=3", "defaults.logging.eval_iters=2"]),
    "diffusion_vector.yml": (["mixture", "swiss_roll"], ["vars.steps=5", "defaults.logging.eval_iters=1",
                                                         "targets[*].runs[0].train.batch_size=16",
                                                         "targets[*].data.config.n_samples=200"]),
}


def _overrides(manifest: str, raw: list[str]) -> list[str]:
    n = len(load_manifest(MANIFESTS / manifest).targets)
    out: list[str] = []
    for item in raw:
        out += [item.replace("[*]", f"[{i}]") for i in range(n)] if "[*]" in item else [item]
    return out


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("manifest", sorted(FAST))
def test_preset_trains_a_few_steps(tmp_path, manifest: str) -> None:
    targets, raw = FAST[manifest]
    m = load_manifest(MANIFESTS / manifest, overrides=_overrides(manifest, raw))
    for target in targets:
        res = run_target(m, target=target, workspace=Workspace(tmp_path), console=False, device="cpu")
        assert res.state == "completed", target
        metrics = next(iter(res.results.values()))
        assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
        assert "val_loss" in metrics
        if manifest == "moe_transformer.yml":
            assert any(k.startswith("train_aux_") for k in metrics), metrics


def test_lora_preset_finetunes_the_pretrained_target(tmp_path) -> None:
    m = load_manifest(MANIFESTS / "lora_finetune.yml", overrides=[
        *_overrides("lora_finetune.yml", LM), "targets[0].runs[0].steps=4", "targets[0].data.config.max_bytes=60000"])
    ws = Workspace(tmp_path)
    with pytest.raises(Exception, match="has no completed run"):
        run_target(m, target="finetune", workspace=ws, console=False, device="cpu")
    pre = run_target(m, target="pretrain", workspace=ws, console=False, device="cpu")
    fin = run_target(m, target="finetune", workspace=ws, console=False, device="cpu")
    assert fin.state == "completed"
    events = {e["event"]: e for e in _events(fin.run_dir)}
    assert events["weights_loaded"]["path"].startswith(str(pre.run_dir))
    applied = events["peft_applied"]
    assert len(applied["modules"]) == 12 and 0 < applied["trainable"] < applied["total"] / 4
    from safetensors.torch import load_file
    before = load_file(events["weights_loaded"]["path"])
    after_dir = fin.run_dir / "checkpoints" / "lora"
    after = load_file(str(after_dir / (after_dir / "latest").read_text().strip() / "model.safetensors"))
    emb = "model.embedder.token.weight"
    assert torch.equal(before[emb], after[emb])  # frozen
    lora_b = [k for k in after if k.endswith("lora_B")]
    assert lora_b and any(after[k].abs().sum() > 0 for k in lora_b)  # adapters moved off zero


def test_every_shipped_preset_dry_runs() -> None:
    for path in sorted(MANIFESTS.glob("*.yml")):
        m = load_manifest(path)
        plan = make_plan(m)
        assert plan.to_dict(), path.name
