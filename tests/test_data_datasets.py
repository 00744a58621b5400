"""Datasets: token files, random tokens, supervised arrays, sklearn, local text with
byte/BPE tokenizers and their caches, tiktoken refusal, and the resumable batch order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caramba.engine.data.base import DataContext, DataError
from caramba.engine.data.loader import BatchStream, eval_batches
from caramba.engine.data.registry import DATASETS
from caramba.engine.data.stats import unigram_entropy
from caramba.workspace import Workspace


def ctx(tmp_path, **kw) -> DataContext:
    return DataContext(Workspace(tmp_path), manifest_dir=tmp_path, **kw)


def build(ref: str, config: dict, c: DataContext):
    return DATASETS.get(ref)(config).build(c)


def test_token_npy_windows_are_next_token_pairs_and_split_is_contiguous(tmp_path):
    np.save(tmp_path / "toks.npy", np.arange(1000, dtype=np.uint16))
    s = build("dataset.tokens", {"path": "toks.npy", "block_size": 16, "val_frac": 0.1}, ctx(tmp_path))
    item = s.train[5]
    assert torch.equal(item["input_ids"], torch.arange(5, 21))
    assert torch.equal(item["target_ids"], torch.arange(6, 22))
    assert len(s.train) == 900 - 16
    val_starts = [int(s.val[i]["input_ids"][0]) for i in range(len(s.val))]
    assert min(val_starts) == 900 and all(b - a == 16 for a, b in zip(val_starts, val_starts[1:]))
    assert s.info["n_tokens"] == 1000


def test_token_bin_file_uses_dtype_and_block_size_from_run(tmp_path):
    np.arange(300, dtype=np.uint32).tofile(tmp_path / "toks.bin")
    s = build("dataset.tokens", {"path": "toks.bin", "dtype": "uint32"}, ctx(tmp_path, block_size=8))
    assert s.train[0]["input_ids"].tolist() == list(range(8)) and s.val is None


def test_token_file_errors_are_actionable(tmp_path):
    problems = DATASETS.get("dataset.tokens").check_config({"path": "x.txt", "blok_size": 3})
    assert problems and problems[0].path == ("blok_size",) and "block_size" in problems[0].expected
    assert DATASETS.get("dataset.tokens").check_config({"path": "x.txt"})[0].path == ("path",)
    with pytest.raises(DataError, match="not found") as e:
        build("dataset.tokens", {"path": "missing.npy", "block_size": 4}, ctx(tmp_path))
    assert "relative paths resolve" in e.value.fix
    np.save(tmp_path / "f.npy", np.zeros((4, 4), dtype=np.int64))
    with pytest.raises(DataError, match="1-D integer"):
        build("dataset.tokens", {"path": "f.npy", "block_size": 2}, ctx(tmp_path))
    np.save(tmp_path / "short.npy", np.arange(10))
    with pytest.raises(DataError, match="at least block_size"):
        build("dataset.tokens", {"path": "short.npy", "block_size": 32}, ctx(tmp_path))


def test_random_tokens_are_seeded(tmp_path):
    a = build("dataset.random_tokens", {"vocab_size": 50, "n_tokens": 500, "block_size": 8}, ctx(tmp_path, seed=3))
    b = build("dataset.random_tokens", {"vocab_size": 50, "n_tokens": 500, "block_size": 8}, ctx(tmp_path, seed=3))
    c = build("dataset.random_tokens", {"vocab_size": 50, "n_tokens": 500, "block_size": 8}, ctx(tmp_path, seed=4))
    assert torch.equal(a.train[7]["input_ids"], b.train[7]["input_ids"])
    assert not torch.equal(a.train[7]["input_ids"], c.train[7]["input_ids"])
    assert int(a.train[0]["input_ids"].max()) < 50 and a.info["vocab_size"] == 50


def test_npy_supervised_split_is_seeded_and_standardised_on_train(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(5.0, 3.0, size=(200, 4)))
    np.save(tmp_path / "y.npy", rng.integers(0, 3, size=200))
    cfg = {"x_path": "x.npy", "y_path": "y.npy", "val_frac": 0.25, "standardize": True}
    s1, s2 = build("dataset.npy_supervised", cfg, ctx(tmp_path, seed=1)), build("dataset.npy_supervised", cfg, ctx(tmp_path, seed=1))
    assert len(s1.train) == 150 and len(s1.val) == 50 and s1.info["n_classes"] == 3
    assert torch.equal(s1.val.x, s2.val.x)
    assert s1.train.x.mean(0).abs().max() < 1e-5 and (s1.train.x.std(0) - 1).abs().max() < 1e-4
    s3 = build("dataset.npy_supervised", cfg, ctx(tmp_path, seed=2))
    assert not torch.equal(s1.val.y, s3.val.y) or not torch.equal(s1.val.x, s3.val.x)
    np.save(tmp_path / "y_bad.npy", np.zeros(7, dtype=np.int64))
    with pytest.raises(DataError, match="one row per example"):
        build("dataset.npy_supervised", {**cfg, "y_path": "y_bad.npy"}, ctx(tmp_path))


def test_sklearn_digits_loads_offline(tmp_path):
    s = build("dataset.sklearn", {"name": "digits"}, ctx(tmp_path, seed=0))
    assert s.info["n_features"] == 64 and s.info["n_classes"] == 10
    assert len(s.train) + len(s.val) == 1797 and abs(len(s.val) - 359) <= 1
    assert s.train[0]["x"].dtype == torch.float32 and s.train[0]["y"].dtype == torch.int64
    assert DATASETS.get("dataset.sklearn").check_config({"name": "mnist"})[0].path == ("name",)


def _corpus(root, n=6):
    root.mkdir()
    for i in range(n):
        (root / f"f{i}.txt").write_text(f"def function_{i}(x):\n    return x * {i} + 1\n" * 40)
    (root / "skip.md").write_text("not selected")


def test_text_byte_tokenizer_and_cache(tmp_path):
    _corpus(tmp_path / "corpus")
    cfg = {"root": "corpus", "glob": "*.txt", "tokenizer": "byte", "block_size": 32, "val_frac": 0.1}
    s = build("dataset.text", cfg, ctx(tmp_path))
    raw = b"".join((tmp_path / "corpus" / f"f{i}.txt").read_bytes() for i in range(6))
    assert s.info["vocab_size"] == 256 and s.info["n_tokens"] == len(raw) and s.info["files"] == 6
    assert bytes(s.train[0]["input_ids"].tolist()) == raw[:32]
    cache = s.info["cache"]
    again = build("dataset.text", cfg, ctx(tmp_path))
    assert again.info["cache"] == cache
    (tmp_path / "corpus" / "f0.txt").write_text("changed")  # edits invalidate the cache
    assert build("dataset.text", cfg, ctx(tmp_path)).info["cache"] != cache
    with pytest.raises(DataError, match="no files match"):
        build("dataset.text", {**cfg, "glob": "*.rst"}, ctx(tmp_path))


def test_text_bpe_is_trained_once_and_cached(tmp_path):
    _corpus(tmp_path / "corpus")
    cfg = {"root": "corpus", "glob": "*.txt", "tokenizer": "bpe", "vocab_size": 300, "block_size": 16, "val_frac": 0.1}
    s = build("dataset.text", cfg, ctx(tmp_path))
    assert 256 < s.info["vocab_size"] <= 300 and s.info["n_tokens"] < s.info["n_bytes"]  # merges compress
    tok_files = list((tmp_path / ".caramba" / "cache" / "tokenizers").glob("*/tokenizer.json"))
    assert len(tok_files) == 1
    mtime = tok_files[0].stat().st_mtime_ns
    import shutil
    shutil.rmtree(s.info["cache"])  # drop the token cache, keep the tokenizer
    s2 = build("dataset.text", cfg, ctx(tmp_path))
    assert tok_files[0].stat().st_mtime_ns == mtime and s2.info["n_tokens"] == s.info["n_tokens"]


def test_text_stdlib_root_and_glob_checks(tmp_path):
    import sysconfig
    from pathlib import Path
    comp = DATASETS.get("dataset.text")({"root": "stdlib", "glob": "json/*.py"})
    root, files = comp.files(ctx(tmp_path))
    assert root == Path(sysconfig.get_paths()["stdlib"]).resolve() and any(f.name == "decoder.py" for f in files)
    assert DATASETS.get("dataset.text").check_config({"glob": "../*.py"})[0].path == ("glob",)


def test_tiktoken_requires_cached_files(tmp_path, monkeypatch):
    _corpus(tmp_path / "corpus")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    with pytest.raises(DataError, match="not cached") as e:
        build("dataset.text", {"root": "corpus", "glob": "*.txt", "tokenizer": "tiktoken", "block_size": 8},
              ctx(tmp_path))
    assert "TIKTOKEN_CACHE_DIR" in e.value.fix and "bpe" in e.value.fix


def test_batch_stream_order_resumes_exactly_and_reshuffles_per_epoch():
    ds = torch.utils.data.TensorDataset(torch.arange(10))

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return {"i": torch.tensor(i)}

    a = BatchStream(Items(), 3, seed=7)
    seq = [a.next_batch()["i"].tolist() for _ in range(7)]
    b = BatchStream(Items(), 3, seed=7)
    for _ in range(4):
        b.next_batch()
    c = BatchStream(Items(), 3, seed=7)
    c.load_state_dict(b.state_dict())
    assert [c.next_batch()["i"].tolist() for _ in range(3)] == seq[4:]
    assert sorted(sum(seq[:3], [])) == sorted(set(sum(seq[:3], [])))  # no repeats within an epoch
    assert seq[:3] != seq[3:6]
    with pytest.raises(DataError, match="same data and seed"):
        BatchStream(Items(), 3, seed=8).load_state_dict(b.state_dict())
    assert len(ds) == 10
    assert [len(x["i"]) for x in eval_batches(Items(), 4, None)] == [4, 4, 2]
    assert len(list(eval_batches(Items(), 4, 2))) == 2


def test_unigram_entropy():
    assert unigram_entropy(np.array([0, 1, 2, 3] * 10)) == pytest.approx(np.log(4))
    assert unigram_entropy(np.zeros(10, dtype=np.int64)) == 0.0
