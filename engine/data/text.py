"""``dataset.text``: local text files → tokenizer → cached token stream.

Files are found by ``glob`` under ``root`` (relative roots resolve against the manifest's
folder, then the workspace). ``root: stdlib`` means the Python standard library folder of
the running interpreter (``sysconfig.get_paths()["stdlib"]``) — a corpus of real source
code present on every machine, used by the ``standard_transformer`` preset::

    data:
      ref: dataset.text
      config: {root: stdlib, glob: "**/*.py", exclude: ["site-packages/**"], tokenizer: byte}

Files are read in sorted order as UTF-8 (undecodable bytes become U+FFFD). The tokens are
cached as ``.npy`` under ``<workspace>/.caramba/cache/text/<key>/`` where ``key`` hashes the
file list (relative paths, sizes, mtimes) and the tokenizer settings, so the second run
starts instantly and any edit to the corpus re-tokenizes it. Then the stream is split
and windowed like ``dataset.tokens``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.data.base import DataContext, DataError, DataSplits, DatasetComponent
from caramba.engine.data.registry import DATASETS
from caramba.engine.data.tokenizer import (TextTokenizer, TokenizerError, _publish_dir, bpe_tokenizer,
                                           byte_tokenizer, local_tokenizer, tiktoken_tokenizer, tokenizer_file,
                                           write_json_atomic)
from caramba.engine.data.tokenizer_spec import TokenizerChoice, parse_tokenizer, spec_problem
from caramba.engine.data.tokens import block_size_of, val_frac_of, window_splits
from caramba.engine.errors import ConfigProblem


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    root: str = Field(".", description="folder to search; 'stdlib' = this Python's standard library folder")
    glob: str = Field("**/*.txt", description="files to read, relative to root (** crosses folders)")
    exclude: list[str] = Field(default_factory=list, description="globs (relative to root) of files to skip")
    max_files: int | None = Field(None, gt=0, description="keep only the first N files (sorted order)")
    max_bytes: int | None = Field(None, gt=0, description="stop adding files once this many bytes are read")
    tokenizer: str | dict[str, Any] | None = Field(
        None, description="byte | bpe | tiktoken | gpt2 | tiktoken:<enc> | hf:<dir> | llama:<dir> | {type, path, "
                          "encoding, vocab_size}; default defaults.data.tokenizer, else byte")
    vocab_size: int = Field(2048, ge=260, le=65536, description="bpe vocabulary size")
    encoding: str = Field("gpt2", description="tiktoken encoding name (when the tokenizer names none)")
    block_size: int | None = Field(None, gt=0, description="window length; default runs[].train.block_size")
    val_frac: float | None = Field(None, ge=0, lt=1, description="last fraction of the stream kept for validation")


@DATASETS.register("dataset.text")
class TextDataset(DatasetComponent):
    """Local text files, tokenized and cached in the workspace."""

    Config = TextConfig

    @classmethod
    def semantic_problems(cls, cfg: TextConfig) -> list[ConfigProblem]:
        out = []
        if cfg.glob.startswith("/") or ".." in Path(cfg.glob).parts:
            out.append(ConfigProblem(("glob",), f"glob '{cfg.glob}' must stay under root",
                                     fix="put the folder in root and keep glob relative, e.g. '**/*.txt'"))
        bad = spec_problem(cfg.tokenizer) if cfg.tokenizer is not None else None
        if bad is not None:
            out.append(ConfigProblem(("tokenizer",), bad.message, found=repr(cfg.tokenizer)[:60], fix=bad.fix))
        return out

    def root_dir(self, ctx: DataContext) -> Path:
        cfg: TextConfig = self.config  # type: ignore[assignment]
        if cfg.root == "stdlib":
            return Path(sysconfig.get_paths()["stdlib"]).resolve()
        root = ctx.resolve_path(cfg.root, what="text root folder")
        if not root.is_dir():
            raise DataError(f"text root '{cfg.root}' is not a folder", fix="point root at a folder of text files")
        return root

    def files(self, ctx: DataContext) -> tuple[Path, list[Path]]:
        """The root and the selected files (sorted, filtered, capped)."""
        cfg: TextConfig = self.config  # type: ignore[assignment]
        root = self.root_dir(ctx)
        chosen: list[Path] = []
        total = 0
        for f in sorted(p for p in root.glob(cfg.glob) if p.is_file()):
            rel = f.relative_to(root).as_posix()
            if any(fnmatch.fnmatch(rel, pat) for pat in cfg.exclude):
                continue
            chosen.append(f)
            total += f.stat().st_size
            if (cfg.max_files and len(chosen) >= cfg.max_files) or (cfg.max_bytes and total >= cfg.max_bytes):
                break
        if not chosen:
            raise DataError(f"no files match '{cfg.glob}' under {root}",
                            fix="check root and glob (e.g. root: stdlib, glob: '**/*.py')")
        return root, chosen

    def build(self, ctx: DataContext) -> DataSplits:
        cfg: TextConfig = self.config  # type: ignore[assignment]
        choice, origin = self.tokenizer_choice(ctx)
        try:
            kind, setting = self._resolve(choice, ctx)
        except DataError as e:
            raise TokenizerError(e.message, fix=e.fix, origin=origin) from None
        root, files = self.files(ctx)
        listing = "\n".join(f"{f.relative_to(root).as_posix()}|{f.stat().st_size}|{f.stat().st_mtime_ns}" for f in files)
        corpus_key = hashlib.sha256(f"{root}\n{cfg.max_bytes}\n{listing}".encode()).hexdigest()
        settings = (f"{kind}|{setting}|" if kind != "tiktoken" else f"tiktoken||{setting}") if kind != "byte" else "byte||"
        key = hashlib.sha256(f"{corpus_key}|{settings}".encode()).hexdigest()[:16]
        folder = ctx.cache_dir / "text" / key
        if not (folder / "tokens.npy").exists():
            docs = [self._read(f, cfg.max_bytes) for f in files]
            try:
                tok = self._tokenizer(kind, setting, docs, corpus_key, ctx)
            except DataError as e:
                raise TokenizerError(e.message, fix=e.fix, origin=origin) from None
            tokens = tok.encode_documents(docs)
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{key}."))
            np.save(tmp / "tokens.npy", tokens)
            write_json_atomic(tmp / "meta.json", {"root": str(root), "files": len(files), "tokenizer": tok.name,
                                                  "vocab_size": tok.vocab_size, "n_tokens": int(tokens.size),
                                                  "n_bytes": sum(len(d.encode()) for d in docs)})
            _publish_dir(tmp, folder)
        import json

        meta = json.loads((folder / "meta.json").read_text())
        tokens = np.load(folder / "tokens.npy", mmap_mode="r")
        info = {"vocab_size": meta["vocab_size"], "tokenizer": meta["tokenizer"], "files": meta["files"],
                "n_bytes": meta["n_bytes"], "source": str(root), "cache": str(folder)}
        return window_splits(tokens, block_size_of(cfg.block_size, ctx), val_frac_of(cfg.val_frac, ctx), info)

    @staticmethod
    def _read(f: Path, max_bytes: int | None) -> str:
        return f.read_bytes().decode("utf-8", errors="replace")

    def tokenizer_choice(self, ctx: DataContext) -> tuple[TokenizerChoice, str]:
        """The tokenizer to use and where it was set: the dataset's own config wins over
        ``defaults.data.tokenizer``; neither → byte."""
        cfg: TextConfig = self.config  # type: ignore[assignment]
        if cfg.tokenizer is not None:
            return parse_tokenizer(cfg.tokenizer), "config"
        if ctx.tokenizer is not None:
            return parse_tokenizer(ctx.tokenizer), "defaults"
        return TokenizerChoice(type="byte"), "config"

    def _resolve(self, choice: TokenizerChoice, ctx: DataContext) -> tuple[str, str]:
        """``(kind, setting)``: byte|'' , bpe|vocab size, tiktoken|encoding, local|tokenizer.json path
        (also the token cache key, with the file's hash for local tokenizers)."""
        cfg: TextConfig = self.config  # type: ignore[assignment]
        if choice.type == "byte":
            return "byte", ""
        if choice.type == "bpe":
            return "bpe", str(choice.vocab_size or cfg.vocab_size)
        if choice.type in ("tiktoken", "gpt2"):
            return "tiktoken", choice.encoding or ("gpt2" if choice.type == "gpt2" else cfg.encoding)
        assert choice.path is not None  # parse_tokenizer requires it for llama/hf
        file = tokenizer_file(ctx.resolve_path(choice.path, what=f"{choice.type} tokenizer"))
        return choice.type, f"{file}|{hashlib.sha256(file.read_bytes()).hexdigest()}"

    def _tokenizer(self, kind: str, setting: str, docs: list[str], corpus_key: str, ctx: DataContext) -> TextTokenizer:
        if kind == "byte":
            return byte_tokenizer()
        if kind == "bpe":
            return bpe_tokenizer(docs, vocab_size=int(setting), corpus_key=corpus_key, cache_dir=ctx.cache_dir)
        if kind == "tiktoken":
            return tiktoken_tokenizer(setting)
        return local_tokenizer(Path(setting.split("|")[0]), kind)
