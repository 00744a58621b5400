"""MCP overhead: p50/p95 latency of tool calls over stdio and streamable HTTP, against
calling the same Python function directly (the baseline).

    python bench/mcp.py                 # prints the table
    python bench/mcp.py --write         # … and rewrites the '## mcp' section of bench/RESULTS.md

Measured calls (each: warm-up, then ``--iters`` sequential calls from one client):

* ``validate_manifest`` of a small language-model manifest (parse, lower, validate),
  baseline ``caramba.engine.manifest.load_manifest(path)``;
* ``find_symbol`` on a code graph of caramba's ``tools/`` package (embedded FalkorDB),
  baseline ``caramba.codegraph`` ``find_symbol`` called in-process.

The servers are real ``caramba mcp serve`` subprocesses; the clients are the MCP SDK's.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

# This file is named like the SDK package: run as a script, its folder would shadow `mcp`.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import anyio  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def measure(fn: Callable[[], object], warmup: int, iters: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


async def measure_async(fn: Callable[[], Awaitable[object]], warmup: int, iters: int) -> list[float]:
    for _ in range(warmup):
        await fn()
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def checked(result: object) -> object:
    if getattr(result, "is_error", False):
        raise SystemExit(f"tool call failed: {result}")
    return result


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="update the '## mcp' section of bench/RESULTS.md")
    args = ap.parse_args()

    import mcp  # noqa: F401  (version below)
    from importlib.metadata import version

    from caramba.engine.manifest import load_manifest
    from caramba.tests.support.mcp_manifests import tiny
    from caramba.tests.support.mcp_procs import http_client, http_server, stdio_client, token_of
    from caramba.codegraph.server import stop_falkordb
    from caramba.tools.codegraph_bridge import CodeGraphTools
    from caramba.workspace import Workspace

    ws = Path(tempfile.mkdtemp(prefix="caramba-bench-mcp-"))
    try:
        (ws / "manifests").mkdir()
        (ws / "manifests" / "tiny.yml").write_text(tiny())
        shutil.copytree(ROOT / "tools", ws / "src" / "tools", ignore=shutil.ignore_patterns("__pycache__"))
        cases: dict[str, dict[str, list[float]]] = {"validate_manifest": {}, "find_symbol": {}}
        v_args = {"path": "manifests/tiny.yml"}
        f_args = {"name": "JobManager", "graph": "bench"}

        cases["validate_manifest"]["direct"] = measure(
            lambda: load_manifest(ws / "manifests" / "tiny.yml"), args.warmup, args.iters)
        bridge = CodeGraphTools(Workspace(ws))
        bridge.sync("src", graph="bench")
        cases["find_symbol"]["direct"] = measure(
            lambda: bridge.find_symbol("JobManager", graph="bench"), args.warmup, args.iters)

        async def over(client_factory: Callable[[], object], label: str) -> None:
            async with client_factory() as client:  # type: ignore[attr-defined]
                cases["validate_manifest"][label] = await measure_async(
                    lambda: _call(client, "validate_manifest", v_args), args.warmup, args.iters)
                cases["find_symbol"][label] = await measure_async(
                    lambda: _call(client, "find_symbol", f_args), args.warmup, args.iters)

        anyio.run(over, lambda: stdio_client(ws), "stdio")
        with http_server(ws) as (url, _proc, _err):
            anyio.run(over, lambda: http_client(url, token_of(ws)), "http")
    finally:
        stop_falkordb(Workspace(ws))
        shutil.rmtree(ws, ignore_errors=True)

    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "## mcp",
        "",
        f"`python bench/mcp.py` — {time.strftime('%Y-%m-%d')}, {cpu_name()} ({os.cpu_count()} cores), "
        f"Python {platform.python_version()}, mcp {version('mcp')}, {args.warmup} warm-up + {args.iters} "
        f"sequential calls per row from one client; latency in ms; overhead = p50 − direct p50 and "
        f"p50 / direct p50. Load average during the run: {load} (a shared machine: absolute "
        "numbers are noisy, the protocol overhead is the useful part).",
        "",
        "| call | path | p50 ms | p95 ms | mean ms | overhead p50 ms | ratio (p50) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for call, rows in cases.items():
        base = pct(rows["direct"], 0.5)
        for label in ("direct", "stdio", "http"):
            xs = rows[label]
            lines.append(f"| {call} | {label} | {pct(xs, 0.5):.2f} | {pct(xs, 0.95):.2f} | "
                         f"{statistics.fmean(xs):.2f} | {pct(xs, 0.5) - base:+.2f} | {pct(xs, 0.5) / base:.1f}x |")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        write_section(ROOT / "bench" / "RESULTS.md", section)


async def _call(client: object, name: str, arguments: dict[str, object]) -> object:
    return checked(await client.call_tool(name, arguments))  # type: ignore[attr-defined]


def write_section(path: Path, section: str) -> None:
    """Replace (or append) only the '## mcp' section of a shared results file, atomically."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(r"^## mcp\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _m: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
