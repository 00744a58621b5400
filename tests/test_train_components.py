"""Objectives, tasks, optimizer groups, learning-rate schedules, train options, and
atomic checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from caramba.engine.errors import CarambaError
from caramba.engine.manifest.schema_train import TrainConfig
from caramba.engine.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from caramba.engine.train.optim import lr_multiplier, make_optimizer, param_groups
from caramba.engine.train.options import TrainOptions, resolve_train_options
from caramba.engine.train.registry import OBJECTIVES, TASKS, TRAINERS


class WithAux(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(2.0))

    def aux_losses(self):
        return {"balance": self.w * 0.5}


def test_next_token_ce_matches_torch_and_adds_aux_losses_separately():
    logits = torch.randn(2, 5, 11, requires_grad=True)
    targets = torch.randint(0, 11, (2, 5))
    obj = OBJECTIVES.get("objective.next_token_ce")({"aux_weight": 0.1})
    res = obj({"logits": logits}, {"target_ids": targets}, WithAux())
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1))
    assert float(res.metrics["ce"]) == pytest.approx(ce.item(), rel=1e-6)
    assert float(res.metrics["aux_balance"]) == pytest.approx(1.0)
    assert res.loss.item() == pytest.approx(ce.item() + 0.1, rel=1e-6)
    res.loss.backward()
    assert logits.grad is not None
    with pytest.raises(CarambaError, match="do not match"):
        obj({"logits": logits[:, :4]}, {"target_ids": targets}, None)
    with pytest.raises(CarambaError, match="no 'logits'"):
        obj({"hidden": logits}, {"target_ids": targets}, None)


def test_classification_ce_reports_accuracy_and_mse():
    logits = torch.tensor([[5.0, 0.0], [0.0, 5.0], [5.0, 0.0], [5.0, 0.0]])
    res = OBJECTIVES.get("objective.classification_ce")({})({"logits": logits}, {"y": torch.tensor([0, 1, 1, 0])})
    assert float(res.metrics["accuracy"]) == 0.75
    mse = OBJECTIVES.get("objective.mse")({})({"logits": torch.ones(3, 1)}, {"y": torch.zeros(3)})
    assert float(mse.loss) == pytest.approx(1.0)
    assert OBJECTIVES.get("objective.mse").check_config({"weight": 1})[0].path == ("weight",)


def test_tasks_derive_perplexity_and_name_headline():
    lm = TASKS.get("task.language_modeling")({})
    out = lm.derive({"loss": 2.0, "ce": 1.5})
    assert out["ppl"] == pytest.approx(math.exp(1.5))
    assert lm.derive({"loss": 1.0})["ppl"] == pytest.approx(math.e)
    cls = TASKS.get("task.classification")
    assert cls.primary == "val_accuracy" and cls.higher_is_better
    assert TRAINERS.canonical("trainer.train") == "trainer.standard"


def test_weight_decay_only_on_matrices_and_tied_params_once():
    emb = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10, bias=True)
    head.weight = emb.weight
    model = torch.nn.ModuleList([emb, head, torch.nn.LayerNorm(4)])
    groups = param_groups(model, 0.1)
    decayed = groups[0]["params"]
    assert groups[0]["weight_decay"] == 0.1 and len(decayed) == 1 and decayed[0] is emb.weight
    assert all(p.dim() == 1 for p in groups[1]["params"]) and groups[1]["weight_decay"] == 0.0
    opt = make_optimizer(model, TrainOptions(optimizer="sgd", lr=0.5, weight_decay=0.1))
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[1]["weight_decay"] == 0.0


@pytest.mark.parametrize("sched", ["cosine", "linear"])
def test_schedules_warm_up_then_decay_to_floor(sched):
    o = TrainOptions(scheduler=sched, warmup_steps=10, min_lr_ratio=0.1)
    m = [lr_multiplier(s, 100, o) for s in range(100)]
    assert m[0] == pytest.approx(0.1) and m[9] == pytest.approx(1.0)
    assert all(a >= b - 1e-12 for a, b in zip(m[10:], m[11:]))  # non-increasing after warm-up
    assert m[-1] == pytest.approx(0.1)
    if sched == "cosine":
        assert m[55] == pytest.approx(0.55, abs=0.02)  # half-way: mid-point of the cosine
    const = TrainOptions(scheduler="constant", warmup_steps=4)
    assert [lr_multiplier(s, 10, const) for s in (0, 3, 9)] == [0.25, 1.0, 1.0]
    assert lr_multiplier(0, 10, TrainOptions(scheduler="none", warmup_steps=4)) == 1.0


def test_train_options_from_manifest_train_config():
    opts = resolve_train_options(TrainConfig(lr=1e-3, save_every=5, eval_every=2), run_id="a")
    assert opts.lr == 1e-3 and opts.save_every == 5 and opts.eval_every == 2
    with pytest.raises(CarambaError, match=r"runs\[a\].train.teacher_ckpt applies only to upcycling"):
        resolve_train_options(TrainConfig(teacher_ckpt="hf://x"), run_id="a")
    up = resolve_train_options(TrainConfig(phase="blockwise", teacher_ckpt="t/train"), run_id="a")
    assert up.phase == "blockwise" and up.teacher_ckpt == "t/train"   # trainer.upcycle's fields pass through
    assert resolve_train_options(TrainConfig(distributed="ddp"), run_id="a").distributed == "ddp"
    with pytest.raises(CarambaError, match=r"runs\[a\].train.batch_size"):
        resolve_train_options({"batch_size": 0}, run_id="a")


def test_checkpoint_is_atomic_keeps_last_k_and_round_trips(tmp_path):
    emb = torch.nn.Embedding(5, 3)
    head = torch.nn.Linear(3, 5, bias=False)
    head.weight = emb.weight  # tied weights must survive safetensors
    model = torch.nn.ModuleDict({"emb": emb, "head": head})
    folder = tmp_path / "ck"
    for step in (1, 2, 3, 4):
        save_checkpoint(folder, step, model, {"marker": step}, keep=2)
    assert sorted(p.name for p in folder.glob("step_*")) == ["step_3", "step_4"]
    assert not list(folder.glob(".*tmp*"))
    latest = latest_checkpoint(folder)
    assert latest.name == "step_4"
    fresh = torch.nn.ModuleDict({"emb": torch.nn.Embedding(5, 3), "head": torch.nn.Linear(3, 5, bias=False)})
    fresh["head"].weight = fresh["emb"].weight
    state = load_checkpoint(latest, fresh)
    assert state["marker"] == 4 and state["step"] == 4 and "rng" in state
    assert torch.equal(fresh["emb"].weight, emb.weight) and fresh["head"].weight is fresh["emb"].weight
    with pytest.raises(CarambaError, match="does not fit the model"):
        load_checkpoint(latest, torch.nn.ModuleDict({"other": torch.nn.Linear(2, 2)}))
    assert latest_checkpoint(tmp_path / "none") is None
