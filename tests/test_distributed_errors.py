"""Distributed-training mistakes are refused up front with actionable messages (in-process,
one rank: no launcher needed), and the one-process ``ddp``/``fsdp`` path trains the
single-process curve, so the same manifest runs with or without torchrun."""

from __future__ import annotations

import pytest
import torch

from caramba.cli import main
from caramba.engine.errors import CarambaError
from caramba.engine.manifest import load_manifest
from caramba.engine.runner import run_target
from caramba.engine.train.distributed import DataParallel, DistributedError, target_strategy
from caramba.engine.train.parallelize import find_blocks
from caramba.workspace import Workspace
from caramba.tests.support.training import train_losses, write_tiny_lm

DIST = "targets[0].runs[0].train.distributed"


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_launch_refuses_a_target_without_a_strategy(tmp_path, monkeypatch, capsys):
    path = write_tiny_lm(tmp_path)
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(tmp_path))
    assert main(["run", str(path), "--nproc-per-node", "2"]) == 2
    err = capsys.readouterr().err
    assert "train.distributed: none" in err and "distributed=ddp" in err
    assert main(["run", str(path), "--nnodes", "2", "--set", f"{DIST}=ddp"]) == 2
    assert "--rdzv-endpoint" in capsys.readouterr().err
    assert main(["run", str(path), "--nnodes", "2", "--rdzv-endpoint", "127.0.0.1:29400",
                 "--set", f"{DIST}=ddp"]) == 2
    assert "--run-id" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing started


def test_nccl_on_cpu_and_uneven_batches_are_clear_errors(tmp_path):
    manifest = load_manifest(write_tiny_lm(tmp_path), overrides=[
        f"{DIST}=ddp", "targets[0].runs[0].train.distributed_backend=nccl"])
    with pytest.raises(CarambaError, match="nccl") as e:
        run_target(manifest, workspace=Workspace(tmp_path), console=False)
    assert "gloo" in e.value.fix
    rank = DataParallel("ddp", "gloo", rank=1, world_size=3, local_rank=1, owns_group=False)
    with pytest.raises(DistributedError, match="batch_size 4 does not split evenly over 3 ranks"):
        rank.local_rows(4)
    assert rank.local_rows(6) == (2, 4)
    assert [DataParallel("ddp", "gloo", r, 3, r, owns_group=False).eval_rows(5) for r in range(3)] == \
        [(0, 2), (2, 4), (4, 5)]


def test_runs_must_agree_on_the_strategy(tmp_path):
    manifest = load_manifest(write_tiny_lm(tmp_path))
    tgt = manifest.targets[0]
    second = tgt.runs[0].model_copy(update={"id": "more", "train": tgt.runs[0].train.model_copy(
        update={"distributed": "fsdp"})})
    tgt.runs.append(second)
    with pytest.raises(DistributedError, match="disagree"):
        target_strategy(tgt)


def test_one_process_fsdp_matches_plain_training_and_refuses_a_strategy_switch(tmp_path, monkeypatch, capsys):
    path = write_tiny_lm(tmp_path, steps=8, save_every=4, eval_every=4)
    ws = Workspace(tmp_path)
    plain = run_target(load_manifest(path), workspace=ws, console=False, run_id="plain")
    sharded = run_target(load_manifest(path, overrides=[f"{DIST}=fsdp"]), workspace=ws, console=False,
                         run_id="fsdp")
    assert [x for _, x in train_losses(sharded.run_dir)] == pytest.approx([x for _, x in train_losses(plain.run_dir)],
                                                                          abs=1e-6)
    assert (sharded.run_dir / "checkpoints" / "train" / "step_4" / "sharded" / ".metadata").exists()
    assert not torch.distributed.is_initialized()  # the one-process group is torn down
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(tmp_path))
    code = main(["run", str(path), "--run-id", "fsdp", "--resume", "--set", f"{DIST}=ddp",
                 "--set", "targets[0].runs[0].steps=12"])
    assert code == 2
    err = capsys.readouterr().err
    assert "written with distributed: fsdp" in err and "strategy the run was started with" in err


def test_blocks_are_the_repeated_topologies(tmp_path):
    from caramba.engine.systems.build import build_system

    manifest = load_manifest("manifests/standard_transformer.yml")
    system = build_system(manifest.targets[0].system, device="meta")
    blocks = find_blocks(system)
    assert len(blocks) == 8 and all(type(b).__name__ == "ResidualTopology" for b in blocks)
