"""Tokenizers for ``dataset.text``, all usable offline.

* ``byte``: every UTF-8 byte is a token (vocabulary 256). Nothing to train or download.
* ``bpe``: a byte-level BPE trained locally with the ``tokenizers`` library on the
  dataset's own files, cached under ``<workspace>/.caramba/cache/tokenizers/<key>/`` where
  ``key`` hashes the file list (paths, sizes, mtimes) and the settings — the same corpus
  and settings reuse the same tokenizer.
* ``tiktoken``: OpenAI's encodings, accepted only when their files are already in
  tiktoken's cache (``$TIKTOKEN_CACHE_DIR``, ``$DATA_GYM_CACHE_DIR`` or
  ``<tmp>/data-gym-cache``); caramba never downloads them.
* ``llama`` / ``hf``: a local Hugging Face ``tokenizer.json`` (a Llama checkpoint's folder,
  or one written by ``tokenizers``/``transformers``), loaded with the ``tokenizers`` library.
  Documents are encoded without special tokens; the end-of-sequence token (``</s>``,
  ``<|end_of_text|>``, ``<|endoftext|>`` or ``<eos>``, the first the vocabulary has)
  follows each document.

How a manifest names them: :mod:`caramba.engine.data.tokenizer_spec`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from caramba.engine.data.base import DataError

#: tiktoken encodings and the blob URLs their constructors read (tiktoken_ext.openai_public).
_TIKTOKEN_FILES: dict[str, tuple[str, ...]] = {
    "gpt2": ("https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
             "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json"),
    "r50k_base": ("https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken",),
    "p50k_base": ("https://openaipublic.blob.core.windows.net/encodings/p50k_base.tiktoken",),
    "cl100k_base": ("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",),
    "o200k_base": ("https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",),
}


class TokenizerError(DataError):
    """The configured tokenizer cannot be loaded; ``origin`` is where it was configured:
    ``"config"`` (the dataset's own ``tokenizer``) or ``"defaults"`` (``defaults.data.tokenizer``)."""

    def __init__(self, message: str, *, fix: str | None = None, origin: str = "config") -> None:
        super().__init__(message, fix=fix)
        self.origin = origin


#: end-of-sequence tokens of common local tokenizers, in the order they are looked for
_EOS_NAMES = ("</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>")


class TextTokenizer:
    """Encodes a list of documents into one token stream; ``vocab_size`` bounds the ids."""

    def __init__(self, name: str, vocab_size: int, encode: Callable[[list[str]], list[list[int]]],
                 eot: int | None) -> None:
        self.name, self.vocab_size, self._encode, self.eot = name, vocab_size, encode, eot

    def encode_documents(self, docs: list[str]) -> np.ndarray:
        """All documents' tokens, each followed by the end-of-text token when there is one."""
        dtype = np.uint16 if self.vocab_size <= 65536 else np.uint32
        parts: list[np.ndarray] = []
        for ids in self._encode(docs):
            parts.append(np.asarray(ids, dtype=dtype))
            if self.eot is not None:
                parts.append(np.asarray([self.eot], dtype=dtype))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def byte_tokenizer() -> TextTokenizer:
    def enc(docs: list[str]) -> list[list[int]]:
        return [list(d.encode("utf-8")) for d in docs]
    return TextTokenizer("byte", 256, enc, eot=None)


def bpe_tokenizer(docs: list[str], *, vocab_size: int, corpus_key: str, cache_dir: Path) -> TextTokenizer:
    """Train (or load from the cache) a byte-level BPE on ``docs``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    key = hashlib.sha256(f"bpe|{vocab_size}|{corpus_key}".encode()).hexdigest()[:16]
    folder = cache_dir / "tokenizers" / key
    file = folder / "tokenizer.json"
    if file.exists():
        tok = Tokenizer.from_file(str(file))
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(docs, trainer=trainer, length=len(docs))
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{key}."))
        tok.save(str(tmp / "tokenizer.json"))
        _publish_dir(tmp, folder)
    eot = tok.token_to_id("<|endoftext|>")

    def enc(batch: list[str]) -> list[list[int]]:
        return [e.ids for e in tok.encode_batch(batch)]
    return TextTokenizer("bpe", tok.get_vocab_size(), enc, eot=eot)


def tokenizer_file(path: Path) -> Path:
    """The ``tokenizer.json`` of a local tokenizer folder (or ``path`` itself when a file)."""
    if path.is_file():
        if path.suffix == ".model":
            raise DataError(f"{path} is a SentencePiece model; caramba reads Hugging Face tokenizer.json files",
                            fix="convert it once: python -c \"from transformers import AutoTokenizer; "
                                f"AutoTokenizer.from_pretrained('{path.parent}').save_pretrained('{path.parent}')\" "
                                "(needs sentencepiece), then point path at the folder")
        return path
    file = path / "tokenizer.json"
    if file.is_file():
        return file
    if (path / "tokenizer.model").is_file():
        return tokenizer_file(path / "tokenizer.model")
    raise DataError(f"no tokenizer.json in {path}",
                    fix="point path at a folder holding tokenizer.json (a Hugging Face checkpoint folder) "
                        "or at the tokenizer.json file itself")


def local_tokenizer(file: Path, kind: str) -> TextTokenizer:
    """A local Hugging Face ``tokenizer.json`` (see the module docstring)."""
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as e:  # the library raises plain Exceptions for unreadable files
        raise DataError(f"cannot read tokenizer {file}: {e}",
                        fix="point path at a valid tokenizer.json (Tokenizer.save / save_pretrained writes one)") from None
    vocab = tok.get_vocab_size(with_added_tokens=True)
    if vocab > 2**32:
        raise DataError(f"tokenizer {file} has {vocab} tokens, more than uint32 ids hold", fix="use a smaller vocabulary")
    eot = next((i for i in (tok.token_to_id(n) for n in _EOS_NAMES) if i is not None), None)

    def enc(batch: list[str]) -> list[list[int]]:
        return [e.ids for e in tok.encode_batch(batch, add_special_tokens=False)]
    return TextTokenizer(f"{kind}:{file}", vocab, enc, eot=eot)


def tiktoken_cache_dir() -> Path:
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return Path(os.environ["TIKTOKEN_CACHE_DIR"])
    if "DATA_GYM_CACHE_DIR" in os.environ:
        return Path(os.environ["DATA_GYM_CACHE_DIR"])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def tiktoken_tokenizer(encoding: str) -> TextTokenizer:
    """A tiktoken encoding whose files are already cached locally (never downloads)."""
    if encoding not in _TIKTOKEN_FILES:
        raise DataError(f"unknown tiktoken encoding '{encoding}'",
                        fix=f"use one of: {', '.join(_TIKTOKEN_FILES)}")
    cache = tiktoken_cache_dir()
    missing = [u for u in _TIKTOKEN_FILES[encoding]
               if not (cache / hashlib.sha1(u.encode()).hexdigest()).exists()]
    if missing:
        raise DataError(f"tiktoken encoding '{encoding}' is not cached in {cache} (caramba does not download it)",
                        fix="use tokenizer: bpe (trained locally) or byte, or pre-fill the cache on a connected "
                            "machine (python -c \"import tiktoken; tiktoken.get_encoding('"
                            f"{encoding}')\") and point TIKTOKEN_CACHE_DIR at it")
    import tiktoken

    enc = tiktoken.get_encoding(encoding)

    def encode(batch: list[str]) -> list[list[int]]:
        return enc.encode_ordinary_batch(batch)
    return TextTokenizer(f"tiktoken:{encoding}", enc.n_vocab, encode, eot=enc.eot_token)


def _publish_dir(tmp: Path, final: Path) -> None:
    """Rename a fully written temp folder into place; another process may have won the race."""
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def write_json_atomic(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
