"""Prompt tokenizers for behavioural evals: ``encode(text) -> ids`` and ``decode(ids) -> text``.

``byte`` (UTF-8 bytes, what ``dataset.text`` with ``tokenizer: byte`` trains on) works
everywhere. ``hf``/``llama``/``gpt2``/``bpe`` load a local tokenizer with ``transformers``
(``path`` names a folder with ``tokenizer.json``/``tokenizer_config.json``, or a
``tokenizer.json`` file); nothing is downloaded. ``tiktoken`` is not wired for evals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from caramba.engine.errors import CarambaError


@dataclass
class PromptTokenizer:
    name: str
    encode: Callable[[str], list[int]]
    decode: Callable[[list[int]], str]


def make_tokenizer(spec: Any, base: Path | None = None) -> PromptTokenizer:
    """A tokenizer from a ``TokenizerSpec`` (``type``, ``path``, ``name``)."""
    kind = spec.type
    if kind == "byte":
        return PromptTokenizer("byte", lambda s: list(s.encode("utf-8")),
                               lambda ids: bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace"))
    if kind in ("hf", "llama", "gpt2", "bpe"):
        if not spec.path:
            raise CarambaError(f"tokenizer type '{kind}' needs 'path' (a local tokenizer folder or tokenizer.json)",
                               fix="add tokenizer.path, or use type: byte")
        p = Path(spec.path).expanduser()
        if not p.is_absolute() and base is not None:
            p = base / p
        if not p.exists():
            raise CarambaError(f"tokenizer path {p} does not exist", fix="point tokenizer.path at a local folder/file")
        if p.is_file():
            from tokenizers import Tokenizer
            tok = Tokenizer.from_file(str(p))
            return PromptTokenizer(kind, lambda s: tok.encode(s).ids, lambda ids: tok.decode(ids))
        from transformers import AutoTokenizer
        hf = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        return PromptTokenizer(kind, lambda s: hf.encode(s, add_special_tokens=False),
                               lambda ids: hf.decode(ids, skip_special_tokens=True))
    raise CarambaError(f"tokenizer type '{kind}' is not supported for evaluation prompts",
                       fix="use type: byte, or hf with a local path")
