"""Stage 1: positioned YAML loading, anchors/merge keys, x- keys, target templates, !include."""

from __future__ import annotations

from pathlib import Path

import pytest

from caramba.engine.errors import ManifestError
from caramba.engine.manifest import load_manifest
from caramba.engine.manifest.document import parse_document
from caramba.engine.manifest.includes import project_root
from caramba.engine.manifest.source import IssueCollector, SourceMap
from caramba.tests.support.manifests import GOOD, TOPO, line_of, mutate, write


def parse(path: Path) -> tuple[dict, SourceMap, IssueCollector]:
    smap = SourceMap()
    issues = IssueCollector(smap, str(path))
    data = parse_document(path, None, smap, issues)
    return data, smap, issues


def test_every_node_keeps_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    data, smap, issues = parse(path)
    assert not issues.issues
    origin = smap.get(("targets", 0, "runs", 0, "steps"))
    assert origin is not None and origin.file == str(path)
    assert origin.line == line_of(GOOD, "steps: 3")
    assert origin.column == GOOD.splitlines()[origin.line - 1].index("steps") + 1
    # a path below a known one is located at its nearest known ancestor
    parent, full = smap.locate(("targets", 0, "runs", 0, "train", "warmup_steps"))
    assert parent is not None and parent.line == line_of(GOOD, "train:")
    assert full == ("targets", 0, "runs", 0, "train", "warmup_steps")


def test_anchors_merge_keys_and_x_keys(tmp_path: Path) -> None:
    text = """\
version: 2
x-train: &train {batch_size: 4, lr: 0.01}
x-norm: &norm
  type: RMSNormLayer
  d_model: 8
targets:
  - type: process
    name: p
    process:
      norm: *norm
      train:
        <<: *train
        lr: 0.5
"""
    data, smap, issues = parse(write(tmp_path, text))
    assert not issues.issues
    assert "x-train" not in data and "x-norm" not in data
    proc = data["targets"][0]["process"]
    assert proc["norm"] == {"type": "RMSNormLayer", "d_model": 8}
    assert proc["train"] == {"batch_size": 4, "lr": 0.5}  # explicit key beats the merged one
    # values that came from an anchor point at the anchor's text
    assert smap.get(("targets", 0, "process", "norm", "d_model")).line == line_of(text, "d_model: 8")
    assert smap.get(("targets", 0, "process", "train", "lr")).line == line_of(text, "lr: 0.5")


def test_anchor_only_target_template_is_skipped(tmp_path: Path) -> None:
    text = """\
version: 2
targets:
  - &base
    process: {type: brainstorm}
  - <<: *base
    type: process
    name: a
  - <<: *base
    type: process
    name: b
    unknown_key: 1
"""
    path = write(tmp_path, text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    (issue,) = info.value.issues
    # the template is dropped, but paths keep the item numbers as written
    assert issue.path == "targets[2].unknown_key" and issue.line == line_of(text, "unknown_key")
    ok = load_manifest(path, text=text.replace("    unknown_key: 1\n", ""))
    assert [t.name for t in ok.targets] == ["a", "b"]


def test_target_without_type_and_anchor_is_an_error(tmp_path: Path) -> None:
    text = "version: 2\ntargets:\n  - name: a\n    process: {}\n"
    with pytest.raises(ManifestError) as info:
        load_manifest(write(tmp_path, text))
    (issue,) = info.value.issues
    assert issue.path == "targets[0].type" and issue.message == "missing 'type'"
    assert issue.line == 3 and issue.fix == "add 'type: experiment'"


def test_yaml_1_1_scalars_and_numeric_strings(tmp_path: Path) -> None:
    text = mutate(GOOD, "lr: ${lr}", "lr: 3e-4\n          use_amp: no")
    m = load_manifest(write(tmp_path, text))
    train = m.targets[0].runs[0].train
    assert train.lr == pytest.approx(3e-4) and isinstance(train.lr, float)  # '3e-4' is a YAML 1.1 string
    assert train.use_amp is False


# ---------------------------------------------------------------- includes

BLOCK = """\
type: ResidualTopology
layers:
  - type: RMSNormLayer
    d_model: ${width}
  - type: SwiGLULayer
    d_model: ${width}
    d_ff: 64
"""


SECOND_BLOCK = """\
                  - type: ResidualTopology
                    layers:
                      - type: RMSNormLayer
                        d_model: ${d_model}
                      - type: SwiGLULayer
                        d_model: ${d_model}
                        d_ff: 64
"""


def with_included_block(spec: str) -> str:
    """GOOD with its second residual block replaced by ``- <spec>``."""
    return mutate(GOOD, SECOND_BLOCK, f"                  - {spec}\n")


def test_include_with_vars_and_manifest_vars(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    write(tmp_path / "blocks", BLOCK, "ffn.yml")
    text = with_included_block("!include {path: ../blocks/ffn.yml, vars: {width: '${d_model}'}}")
    m = load_manifest(write(tmp_path / "exp", text))
    nest = m.targets[0].system.config["model"]["topology"]["layers"][0]
    assert [b["type"] for b in nest["layers"]] == ["ResidualTopology"] * 4  # repeat 2 of [attn block, included]
    assert nest["layers"][1]["layers"][1] == {"type": "SwiGLULayer", "d_model": 32, "d_ff": 64}


def test_error_inside_include_points_into_the_fragment(tmp_path: Path) -> None:
    write(tmp_path, BLOCK.replace("d_ff: 64", "d_ff: 64\n    d_fff: 1"), "ffn.yml")
    text = with_included_block("!include {path: ffn.yml, vars: {width: 32}}")
    with pytest.raises(ManifestError) as info:
        load_manifest(write(tmp_path, text))
    (issue,) = info.value.issues
    assert issue.file == str(tmp_path / "ffn.yml") and issue.line == 8
    assert issue.path == f"{TOPO}.layers[0].layers[1].layers[1].d_fff"


def test_include_escaping_the_project_root_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    write(tmp_path, "type: RMSNormLayer\nd_model: 32\n", "outside.yml")
    (project / "sub").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    text = mutate(GOOD, "notes: a tiny language model", "notes: !include ../../outside.yml")
    path = write(project / "sub", text)
    assert project_root(path.parent) == project.resolve()
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    (issue,) = info.value.issues
    assert issue.path == "notes" and issue.line == line_of(text, "!include")
    assert "outside the project root" in issue.message and str(project.resolve()) in issue.fix


def test_include_cycle_names_the_chain(tmp_path: Path) -> None:
    write(tmp_path, "inner: !include b.yml\n", "a.yml")
    write(tmp_path, "again: !include a.yml\n", "b.yml")
    text = mutate(GOOD, "notes: a tiny language model", "notes: a\nloop: !include a.yml")
    path = write(tmp_path, text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    (issue,) = [i for i in info.value.issues if "cycle" in i.message]
    assert issue.message == f"include cycle: {tmp_path}/a.yml -> {tmp_path}/b.yml -> {tmp_path}/a.yml"
    assert issue.file == f"{tmp_path}/b.yml" and issue.line == 1
    assert "remove one of these includes" in issue.fix


def test_missing_include_and_bad_include_form(tmp_path: Path) -> None:
    text = mutate(GOOD, "notes: a tiny language model", "notes: !include nope.yml\nname2: !include [a]")
    with pytest.raises(ManifestError) as info:
        load_manifest(write(tmp_path, text))
    by_path = {i.path: i for i in info.value.issues}
    assert "included file not found: 'nope.yml'" in by_path["notes"].message
    assert by_path["notes"].line == line_of(text, "nope.yml")
    assert "!include takes a path" in by_path["name2"].message


def test_text_source_anchors_includes(tmp_path: Path) -> None:
    write(tmp_path, "a fragment note\n", "note.yml")
    text = mutate(GOOD, "notes: a tiny language model", "notes: !include note.yml")
    m = load_manifest(tmp_path / "virtual.yml", text=text)
    assert m.notes == "a fragment note" and m.source_file == str(tmp_path / "virtual.yml")


def test_alias_bomb_is_a_located_error_not_a_hang(tmp_path: Path) -> None:
    """Aliases of aliases double at each level (a 'billion laughs' file): 2^29 values here.
    The loader stops expanding at MAX_VALUES and says why, in seconds."""
    from caramba.engine.manifest.yaml_loader import MAX_VALUES

    levels = ["blk0: &blk0 {type: AttentionLayer}"] + [f"blk{i}: &blk{i} [*blk{i - 1}, *blk{i - 1}]"
                                                      for i in range(1, 30)]
    path = tmp_path / "bomb.yml"
    path.write_text("x-defs:\n" + "\n".join("  " + x for x in levels) + "\nversion: 2\ntargets: [*blk29]\n")
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    text = str(err.value)
    assert f"expands to more than {MAX_VALUES:,} values through YAML aliases" in text
    assert "bomb.yml:2:" in text and "reference each anchor a bounded number of times" in text
