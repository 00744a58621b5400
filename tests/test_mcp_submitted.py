"""Submitted manifest texts are saved atomically under ``.caramba/submitted/``: many
threads submitting the same text at once (as 20 concurrent MCP clients do) all get the
same complete file and none fails on a shared temp file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from caramba.tools.common import ToolDeps
from caramba.tools.jobs import JobManager
from caramba.tools.manifest_input import materialize
from caramba.tools.sandbox import Sandbox
from caramba.workspace import Workspace

TEXT = "version: 2\nname: same\ntargets: []\n" + "# padding\n" * 2000


def test_identical_texts_materialised_concurrently(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    deps = ToolDeps(workspace=ws, sandbox=Sandbox(ws), jobs=JobManager(ws))
    for _ in range(5):  # repeat: the race needs threads to overlap in the write/rename window
        for f in (ws.state_dir / "submitted").glob("*.yml") if (ws.state_dir / "submitted").exists() else []:
            f.unlink()
        with ThreadPoolExecutor(16) as pool:
            paths = list(pool.map(lambda _: materialize(deps, None, TEXT), range(32)))
        assert len(set(paths)) == 1 and paths[0].read_text() == TEXT
        assert not list(paths[0].parent.glob(".*.tmp"))
