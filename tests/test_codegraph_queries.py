"""Read-only enforcement (client check and the server's GRAPH.RO_QUERY) and name resolution errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from caramba.codegraph.queries import CodeGraph, CodeGraphError
from caramba.codegraph.server import connect
from caramba.codegraph.sync import sync_repository
from caramba.tests.support.falkordb import falkordb_workspace  # noqa: F401


def test_read_only_and_errors(falkordb_workspace, tmp_path: Path) -> None:
    ws, _ = falkordb_workspace
    src = tmp_path / "two"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x.py").write_text("def run():\n    pass\n")
    (src / "a" / "y.py").write_text("def run():\n    pass\n")
    db = connect(ws)
    with pytest.raises(CodeGraphError, match="no code graph exists"):
        CodeGraph.open(db)
    (src / "a" / "dangling.py").symlink_to(src / "a" / "missing.py")  # listed by the walk, unreadable
    rep = sync_repository(src, db=db)
    assert rep.files == 2 and [(e["file"], e["error"]) for e in rep.errors] == [
        ("a/dangling.py", "cannot read: No such file or directory")]
    cg = CodeGraph.open(db)
    for q in ["CREATE (:X)", "MATCH (n) SET n.x = 1", "match (n) detach delete n", "MERGE (:X)",
              "MATCH (n) REMOVE n.name", "CALL db.idx.fulltext.createNodeIndex('X', 'y')"]:
        with pytest.raises(CodeGraphError, match="read-only"):
            cg.query(q)
    # the server enforces it too, even if the client-side check were bypassed
    with pytest.raises(CodeGraphError, match="read-only"):
        cg._ro("CREATE (:X)")
    assert cg.query("RETURN 'CREATE (:X)' AS s")["rows"] == [["CREATE (:X)"]]  # text in a string is fine
    assert cg.query("MATCH (n:X) RETURN count(n)")["rows"] == [[0]]
    with pytest.raises(CodeGraphError, match="ambiguous: a.x.run, a.y.run"):
        cg.callers("run")
    assert cg.callers("a.x.run") == []
    with pytest.raises(CodeGraphError, match="rejected the query"):
        cg.query("MATCH (n RETURN n")
    with pytest.raises(CodeGraphError, match="no code graph named 'nope'"):
        CodeGraph.open(db, "nope")
