"""The dispatch table: platform detection, routing by device, the rendered table, the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from caramba.kernels import dispatch, ops, reference
from caramba.kernels.platform import PLATFORM, Platform

H100 = Platform("cuda", "NVIDIA H100", (9, 0), "3.6.0", True, False, False)


def test_platform_detected_once_and_consistent() -> None:
    assert PLATFORM.device == ("cuda" if torch.cuda.is_available() else PLATFORM.device)
    assert PLATFORM.describe().startswith(PLATFORM.device)


def test_cuda_platform_routes_every_kernel_op_to_triton() -> None:
    rows = {label: (path, why) for label, path, why in dispatch.table(H100)}
    assert rows["RMSNorm"] == ("Triton fused fwd+bwd", None)
    assert rows["Attention"][0].startswith("Triton flash") and rows["Attention"][1] is None
    assert rows["AdamW"][0] == "Triton multi-tensor fused step"
    assert rows["SelectiveScan"][0].startswith("Triton chunked scan") and rows["SelectiveScan"][1] is None
    text = dispatch.render_table(H100)
    assert "sm_90" in text and "RMSNorm        Triton fused fwd+bwd\n" in text


@pytest.mark.parametrize("platform,reason", [
    (Platform("mps", "Apple GPU", None, None, True, False, False), "no Metal kernels"),
    (Platform("cpu", "cpu", None, "3.9.0", True, False, False), "CPU: Triton kernels need a CUDA GPU"),
    (Platform("cuda", "T4", (7, 5), "3.6.0", False, False, False), "sm_75"),
    (Platform("cuda", "H100", (9, 0), "3.6.0", True, False, True), "CARAMBA_KERNELS=reference"),
])
def test_slow_paths_are_marked_with_a_reason(platform: Platform, reason: str) -> None:
    for label, path, why in dispatch.table(platform):
        assert path == "PyTorch reference" and why is not None, label
    assert reason in dispatch.render_table(platform)
    assert "* not fastest" in dispatch.render_table(platform)


def test_cpu_tensors_route_to_reference_and_match() -> None:
    assert dispatch.route("rms_norm", "cpu") is reference.rms_norm
    assert dispatch.route("attention", "meta") is reference.attention
    x, w = torch.randn(3, 8), torch.randn(8)
    torch.testing.assert_close(ops.rms_norm(x, w, 1e-6), reference.rms_norm(x, w, 1e-6))
    q = torch.randn(1, 2, 4, 8)
    torch.testing.assert_close(ops.attention(q, q, q, causal=True), reference.attention(q, q, q, causal=True))


def test_meta_device_dry_run_shapes() -> None:
    x = torch.empty(2, 5, 16, device="meta")
    assert ops.layer_norm(x, None, None, 1e-5).shape == (2, 5, 16)


def test_cli_prints_table_and_bad_mode_is_actionable() -> None:
    env_ok = subprocess.run([sys.executable, "-m", "caramba", "kernels"], capture_output=True, text=True)
    assert env_ok.returncode == 0, env_ok.stderr
    lines = env_ok.stdout.splitlines()
    assert lines[0].startswith("kernels on ") and len(lines) == 1 + len(dispatch.OPS)
    bad = subprocess.run([sys.executable, "-m", "caramba", "kernels"], capture_output=True, text=True,
                         env={**__import__("os").environ, "CARAMBA_KERNELS": "fast"})
    assert bad.returncode == 2
    assert "CARAMBA_KERNELS='fast' is not a kernel mode" in bad.stderr and "fix:" in bad.stderr
