"""`caramba rag index|search` as a researcher uses them: symlinks and overlapping paths keep
the index incremental (no duplicate rows per re-index, nothing pulled in from outside the
folder), an unsupported file is a clear error, and the hybrid ranking does not depend on -k.
Real DeepLake on local disk, through the CLI entry point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from caramba.cli import main

REPO = Path(__file__).resolve().parent.parent


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _hits(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    code, out, err = _run(capsys, "rag", "search", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(root))
    monkeypatch.chdir(root)
    return root


def test_symlinks_and_overlapping_paths_index_each_source_once(ws: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    notes = ws / "notes"
    notes.mkdir()
    (notes / "kv.md").write_text("# KV cache\n\nint8 quantised keys halve decode memory.\n")
    (notes / "rope.md").write_text("# RoPE\n\nrotary embeddings with theta 500000 extrapolate.\n")
    (notes / "kv_alias.md").symlink_to(notes / "kv.md")
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\n\nzanzibar passphrase lives here.\n")
    (notes / "leak.md").symlink_to(outside / "secret.md")
    (notes / "leakdir").symlink_to(outside, target_is_directory=True)

    counts = []
    for _ in range(3):  # re-indexing, with the folder and a file inside it both named
        code, out, err = _run(capsys, "rag", "index", "notes", "notes/kv.md")
        assert code == 0, err
        counts.append(int(out.split(";")[1].split()[0]))  # "...; N chunks in the index"
    assert counts == [2, 2, 2]
    hits = _hits(capsys, "int8 quantised keys", "-k", "10")
    assert sorted({h["path"] for h in hits}) == ["notes/kv.md", "notes/rope.md"]
    assert [h for h in hits if h["path"] == "notes/kv.md"][0]["text"].count("int8") == 1
    assert not any("zanzibar" in h["text"] for h in _hits(capsys, "zanzibar passphrase", "--mode", "keyword"))


def test_unsupported_file_is_a_clear_error(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ws / "data.csv").write_text("a,b\n1,2\n")
    code, out, err = _run(capsys, "rag", "index", "data.csv")
    assert code == 2
    assert "data.csv' is not a source the index reads" in err and "fix:" in err and ".md" in err
    assert "Traceback" not in err + out


def test_hybrid_top_hits_do_not_depend_on_k(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(REPO / "engine" / "train", ws / "train", ignore=shutil.ignore_patterns("__pycache__"))
    assert _run(capsys, "rag", "index", "train")[0] == 0
    for query in ("atomic checkpoint write", "resume from the latest checkpoint", "gradient clipping norm"):
        top3 = [(h["path"], h["start"]) for h in _hits(capsys, query, "-k", "3")]
        top10 = [(h["path"], h["start"]) for h in _hits(capsys, query, "-k", "10")]
        assert top3 == top10[:3], query


def test_a_broken_pdf_does_not_stop_a_folder_of_papers(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    papers = ws / "papers"
    papers.mkdir()
    (papers / "good.md").write_text("# Mamba\n\nselective state spaces scan in linear time.\n")
    (papers / "broken.pdf").write_bytes(b"%PDF-1.4\n")  # an interrupted download
    (papers / "html.pdf").write_text("<html>403 Forbidden</html>")
    code, out, err = _run(capsys, "rag", "index", "papers")
    assert code == 0, err  # was: "error: cannot read PDF …", nothing indexed
    assert out.startswith("indexed 1 sources (0 unchanged, 0 removed)")
    assert "warning: papers/broken.pdf: skipped, cannot read PDF" in out and "papers/html.pdf: skipped" in out
    assert "EOF marker" not in err + out  # pypdf's own log lines
    assert [h["path"] for h in _hits(capsys, "selective state spaces", "-k", "1")] == ["papers/good.md"]
