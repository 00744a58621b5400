"""``caramba run FILE --nproc-per-node N [--nnodes M --rdzv-endpoint HOST:PORT]``.

Starts ``N`` copies of ``python -m caramba run FILE …`` on this machine through PyTorch's
own launcher (``torch.distributed.run``, i.e. torchrun, with ``max_restarts 0``). Each
copy is one rank of the target's ``train.distributed`` group
(:mod:`caramba.engine.train.distributed`)::

    caramba run manifests/standard_transformer.yml --nproc-per-node 2 \\
        --set targets[0].runs[0].train.distributed=ddp
    # two nodes (run the same line on each; the run id names the shared run directory):
    caramba run my.yml --nnodes 2 --nproc-per-node 8 --rdzv-endpoint node0:29400 --run-id exp42

Before starting anything the launcher checks what it can once: the manifest (already
loaded by the CLI), that the target sets ``distributed``, and the run id — a fresh one is
chosen here and handed to every rank (with ``--resume`` the newest run is resolved
here), so all ranks share one run directory.

When a rank fails, torchrun stops the others; the launcher then raises
:class:`DistributedRunFailed` naming every failed rank with its exit code or signal and
the error that rank reported, marks ``run.json`` ``failed`` (if rank 0 could not), and
says how to continue with ``--resume`` — on the same or another number of processes.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caramba.engine.errors import CarambaError
from caramba.engine.train.distributed import DistributedError, target_strategy
from caramba.workspace import Workspace


class DistributedRunFailed(CarambaError):
    """A rank of a launched run failed (or the run was cancelled)."""

    exit_code = 1


@dataclass
class LaunchSpec:
    """The ``caramba run`` options a launch hands on to every rank."""

    file: Path
    nproc_per_node: int
    nnodes: int = 1
    rdzv_endpoint: str | None = None
    target: str | None = None
    overrides: tuple[str, ...] = ()
    resume: bool = False
    device: str | None = None
    run_id: str | None = None
    allow_python_impl: bool = False


def rank_argv(spec: LaunchSpec, run_id: str) -> list[str]:
    """The ``caramba run`` arguments of every rank (no launcher options: no recursion)."""
    argv = ["run", str(spec.file), "--run-id", run_id]
    if spec.target:
        argv += ["--target", spec.target]
    for item in spec.overrides:
        argv += ["--set", item]
    if spec.resume:
        argv.append("--resume")
    if spec.device:
        argv += ["--device", spec.device]
    if spec.allow_python_impl:
        argv.append("--allow-python-impl")
    return argv


def _check(spec: LaunchSpec, manifest: Any) -> Any:
    if spec.nproc_per_node < 1 or spec.nnodes < 1:
        raise DistributedError(f"--nproc-per-node {spec.nproc_per_node} --nnodes {spec.nnodes}: both must be >= 1",
                               fix="e.g. --nproc-per-node 2 (one process per GPU)")
    if spec.nnodes > 1 and not spec.rdzv_endpoint:
        raise DistributedError(f"--nnodes {spec.nnodes} needs --rdzv-endpoint HOST:PORT (where the nodes meet)",
                               fix="pass the same --rdzv-endpoint node0:29400 on every node")
    if spec.nnodes > 1 and not spec.run_id:
        raise DistributedError("a multi-node run needs --run-id (every node must name the same run directory)",
                               fix="pass the same --run-id on every node, e.g. --run-id exp42")
    tgt = manifest.target(spec.target)
    if getattr(tgt, "type", None) == "process":
        raise DistributedError(f"target '{tgt.name}' is a process (agent workflow): it cannot be launched on ranks",
                               fix="drop --nproc-per-node/--nnodes for process targets")
    strategy, _ = target_strategy(tgt)
    world = spec.nproc_per_node * spec.nnodes
    if strategy == "none" and world > 1:
        raise DistributedError(f"--nproc-per-node {spec.nproc_per_node} x --nnodes {spec.nnodes}, but target "
                               f"'{tgt.name}' has train.distributed: none (every process would train alone)",
                               fix="set train.distributed: ddp or fsdp on its runs "
                                   f"(e.g. --set targets[{tgt.name}].runs[0].train.distributed=ddp)")
    return tgt


def _failure_text(err: Any) -> tuple[str, bool]:
    """One line per failed rank; and whether every rank merely stopped on a signal (130)."""
    lines, cancelled = [], True
    # the cause first: ranks that torchrun itself stopped (SIGTERM) come after the one that failed
    order = sorted(err.failures.items(), key=lambda kv: (kv[1].exitcode == -signal.SIGTERM, kv[0]))
    for rank, f in order:
        how = f"killed by {f.signal_name()}" if f.exitcode < 0 else f"exit code {f.exitcode}"
        message = f.message if isinstance(f.message, str) else json.dumps(f.message)
        if message.startswith("Signal ") or message.startswith("To enable traceback"):
            message = ""
        lines.append(f"rank {rank} (local rank {f.local_rank}, pid {f.pid}): {how}"
                     + (f"\n    {message.strip()}" if message else ""))
        cancelled = cancelled and f.exitcode == 130
    return "\n  ".join(lines), cancelled


def _mark_failed(run_dir: Path, text: str) -> None:
    """Record the failure in the run directory when rank 0 died before it could."""
    from caramba.engine.train.recorder import RunRecorder
    from caramba.engine.train.rundir import RunInfo

    info_path = run_dir / "run.json"
    if not info_path.exists() or json.loads(info_path.read_text()).get("state") != "running":
        return
    recorder = RunRecorder(run_dir)
    try:
        recorder.event("error", None, message=f"distributed run failed: {text}")
        recorder.event("target_finished", None, state="failed")
    finally:
        recorder.close()
    info = RunInfo(run_dir, json.loads(info_path.read_text()))
    info.set_state("failed")


def launch(spec: LaunchSpec, manifest: Any, workspace: Workspace | None = None) -> Path:
    """Run the target on ``nproc_per_node x nnodes`` ranks; returns the run directory."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser
    from torch.distributed.run import run as torchrun

    from caramba.engine.train.rundir import choose_run_dir, new_run_id, target_dir

    tgt = _check(spec, manifest)
    folder = target_dir((workspace or Workspace()).runs_dir, manifest.name, tgt.name)
    if spec.resume:
        run_dir, run_id, _ = choose_run_dir(folder, run_id=spec.run_id, resume=True)
    else:
        run_dir, run_id, _ = choose_run_dir(folder, run_id=spec.run_id or new_run_id(), resume=False)
    args = ["--nnodes", str(spec.nnodes), "--nproc-per-node", str(spec.nproc_per_node), "--max-restarts", "0"]
    if spec.nnodes == 1 and not spec.rdzv_endpoint:
        args.append("--standalone")
    else:
        args += ["--rdzv-backend", "c10d", "--rdzv-endpoint", str(spec.rdzv_endpoint),
                 "--rdzv-id", f"caramba-{manifest.name}-{tgt.name}-{run_id}"]
    args += ["-m", "caramba", *rank_argv(spec, run_id)]
    try:
        torchrun(get_args_parser().parse_args(args))
    except ChildFailedError as e:
        text, cancelled = _failure_text(e)
        if not cancelled:
            _mark_failed(run_dir, text)
        resume = f"caramba run {spec.file} --target {tgt.name} --run-id {run_id} --resume --nproc-per-node N"
        err = DistributedRunFailed(f"distributed run {'cancelled' if cancelled else 'failed'} ({run_dir}):\n  {text}",
                                   fix=f"fix the cause above if any, then continue from the last checkpoint "
                                       f"(on any number of processes): {resume}")
        if cancelled:
            err.exit_code = 130
        raise err from None
    return run_dir
