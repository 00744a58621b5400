"""``defaults.data`` reaches the datasets: ``tokenizer`` (byte, bpe, tiktoken/gpt2, and a
local ``llama``/``hf`` tokenizer.json built and saved by the test itself) and ``val_frac``;
a target's own data config wins; bad settings are reported with file, line and YAML path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from caramba.engine.data.base import DataContext
from caramba.engine.errors import ManifestError
from caramba.engine.manifest import load_manifest
from caramba.engine.runner import run_target
from caramba.engine.train.target import build_data
from caramba.workspace import Workspace

DOCS = ["def add(a, b):\n    return a + b\n", "class Point:\n    x: int = 0\n    y: int = 0\n",
        "for i in range(10):\n    print(i * i)\n"] * 4

MANIFEST = """\
version: 2
name: tok
defaults:
  data: {defaults}
  logging: {{instrument: none, tensorboard: false, eval_iters: 1}}
targets:
  - type: experiment
    name: lm
    task: task.language_modeling
    data:
      ref: dataset.text
      config: {data}
    system:
      ref: system.language_model
      config:
        model:
          type: TransformerModel
          embedder: {{type: token, vocab_size: {vocab}, d_model: 16}}
          topology:
            type: StackedTopology
            layers:
              - {{type: RMSNormLayer, d_model: 16}}
              - {{type: LinearLayer, d_in: 16, d_out: {vocab}}}
    objective: objective.next_token_ce
    trainer: trainer.standard
    runs:
      - id: train
        steps: 2
        train: {{batch_size: 2, block_size: 8, device: cpu}}
"""


def _llama_dir(folder: Path) -> tuple[Path, int]:
    """A Llama-style tokenizer folder (BPE + ``</s>``) trained here, saved as tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(DOCS, trainer=trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    return folder, tok.get_vocab_size(with_added_tokens=True)


def _write(tmp_path: Path, defaults: str, data: str, vocab: int = 256) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    for i, d in enumerate(DOCS):
        (corpus / f"doc{i:02d}.txt").write_text(d)
    path = tmp_path / "tok.yml"
    path.write_text(MANIFEST.format(defaults=defaults, data=data, vocab=vocab))
    return path


def _build(path: Path, tmp_path: Path):
    manifest = load_manifest(path)
    ctx = DataContext(Workspace(tmp_path), path.parent, seed=0, block_size=8,
                      val_frac=manifest.defaults.data.val_frac, tokenizer=manifest.defaults.data.tokenizer)
    return build_data(manifest, manifest.targets[0], ctx)


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_default_llama_tokenizer_from_a_local_folder_trains_end_to_end(tmp_path):
    from tokenizers import Tokenizer

    folder, vocab = _llama_dir(tmp_path / "llama_tok")
    path = _write(tmp_path, "{tokenizer: {type: llama, path: llama_tok}, val_frac: 0.25}",
                  "{root: corpus, glob: '*.txt'}", vocab=vocab)
    result = run_target(load_manifest(path), workspace=Workspace(tmp_path), console=False)
    assert result.state == "completed"
    splits = _build(path, tmp_path)  # the cached token stream the run trained on
    assert splits.info["tokenizer"] == f"llama:{folder / 'tokenizer.json'}" and splits.info["vocab_size"] == vocab
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    eos = tok.token_to_id("</s>")
    want = np.concatenate([np.array(tok.encode(d, add_special_tokens=False).ids + [eos]) for d in DOCS])
    stream = np.load(Path(splits.info["cache"]) / "tokens.npy")
    assert np.array_equal(stream, want)
    assert splits.info["n_train_tokens"] == len(want) - int(len(want) * 0.25)  # defaults.data.val_frac applied


def test_the_targets_own_tokenizer_and_val_frac_win_over_the_defaults(tmp_path):
    _llama_dir(tmp_path / "llama_tok")
    path = _write(tmp_path, "{tokenizer: 'hf:llama_tok', val_frac: 0.25}",
                  "{root: corpus, glob: '*.txt', tokenizer: byte, val_frac: 0.5}")
    splits = _build(path, tmp_path)
    n_bytes = sum(len(d.encode()) for d in DOCS)
    assert splits.info["tokenizer"] == "byte" and splits.info["vocab_size"] == 256
    assert splits.info["n_tokens"] == n_bytes and splits.info["n_train_tokens"] == n_bytes - n_bytes // 2
    bpe = _build(_write(tmp_path, "{tokenizer: {type: bpe, vocab_size: 300}}", "{root: corpus, glob: '*.txt'}"),
                 tmp_path)
    assert bpe.info["tokenizer"] == "bpe" and 260 <= bpe.info["vocab_size"] <= 300


@pytest.mark.parametrize("defaults, data, where, message, fix", [
    ("{tokenizer: llama}", "{root: corpus}", "defaults.data.tokenizer",
     "tokenizer 'llama' needs a local tokenizer", "{type: llama, path: <folder>}"),
    ("{tokenizer: lama}", "{root: corpus}", "defaults.data.tokenizer", "unknown tokenizer 'lama'",
     "did you mean 'llama'?"),
    ("{}", "{root: corpus, tokenizer: {type: hf}}", "targets[0].data.config.tokenizer",
     "tokenizer 'hf' needs a local tokenizer", "hf:<folder>"),
    ("{}", "{root: corpus, tokenizer: 'gpt2:x'}", "targets[0].data.config.tokenizer",
     "tokenizer 'gpt2' takes no ':' argument", "write just 'gpt2'"),
])
def test_bad_tokenizer_settings_are_located_when_the_manifest_loads(tmp_path, defaults, data, where, message, fix):
    path = _write(tmp_path, defaults, data)
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    issue = next(i for i in err.value.issues if i.path == where)
    assert message in issue.message and fix in (issue.fix or "")
    assert Path(issue.file).name == "tok.yml"
    assert issue.line == _line(path, "data: {" if where.startswith("defaults") else "config: {")


def test_tokenizers_that_cannot_be_loaded_are_located_where_they_were_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    cases = [
        ("{tokenizer: 'llama:no_such_dir'}", "{root: corpus}", "defaults.data.tokenizer",
         "llama tokenizer 'no_such_dir' not found"),
        ("{}", "{root: corpus, tokenizer: gpt2}", "targets[0].data.config.tokenizer",
         "tiktoken encoding 'gpt2' is not cached"),
        ("{tokenizer: {type: llama, path: spm}}", "{root: corpus}", "defaults.data.tokenizer",
         "is a SentencePiece model"),
        ("{tokenizer: 'hf:empty'}", "{root: corpus, glob: '*.txt'}", "defaults.data.tokenizer", "no tokenizer.json in"),
    ]
    (tmp_path / "spm").mkdir()
    (tmp_path / "spm" / "tokenizer.model").write_bytes(b"\x00")
    (tmp_path / "empty").mkdir()
    for defaults, data, where, message in cases:
        path = _write(tmp_path, defaults, data)
        with pytest.raises(ManifestError) as err:
            _build(path, tmp_path)
        (issue,) = err.value.issues
        assert issue.path == where and message in issue.message and issue.fix, issue.render()
        assert Path(issue.file).name == "tok.yml"
        assert issue.line == _line(path, "data: {" if where.startswith("defaults") else "config: {")
