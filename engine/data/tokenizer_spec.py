"""Which tokenizer ``dataset.text`` uses: every form a manifest may write, parsed into one
:class:`TokenizerChoice`. The same forms are valid in ``defaults.data.tokenizer`` (the
manifest-wide default) and in a ``dataset.text`` config (which wins)::

    tokenizer: byte                        # UTF-8 bytes, 256 ids
    tokenizer: bpe                         # byte-level BPE trained here on the corpus (vocab_size)
    tokenizer: tiktoken                    # a tiktoken encoding already in tiktoken's cache (encoding)
    tokenizer: gpt2                        # = tiktoken, encoding gpt2
    tokenizer: tiktoken:cl100k_base        # tiktoken, that encoding
    tokenizer: hf:tokenizers/mine          # a local Hugging Face tokenizer.json (folder or file)
    tokenizer: llama:/models/llama-3-8b    # the same, for a Llama checkpoint's tokenizer folder
    tokenizer: {type: llama, path: /models/llama-3-8b}   # mapping form (also encoding, vocab_size)

``llama``/``hf`` always need a local path — caramba never downloads a tokenizer. A folder
must hold ``tokenizer.json`` (what ``transformers`` writes with ``save_pretrained``); a
SentencePiece ``tokenizer.model`` alone is refused with the conversion command. Relative
paths resolve like every data path: the manifest's folder, then the workspace.

This module only parses (no torch, no tokenizer libraries) so the manifest schema can
use it; :mod:`caramba.engine.data.tokenizer` builds the tokenizers.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from caramba.engine.errors import first_error

KINDS: tuple[str, ...] = ("byte", "bpe", "tiktoken", "gpt2", "llama", "hf")
LOCAL_KINDS: tuple[str, ...] = ("llama", "hf")
FORMS = ("byte | bpe | tiktoken | gpt2 | tiktoken:<encoding> | hf:<local folder> | llama:<local folder> | "
         "{type, path, encoding, vocab_size}")


class TokenizerChoice(BaseModel):
    """A parsed tokenizer setting."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["byte", "bpe", "tiktoken", "gpt2", "llama", "hf"] = Field(description="tokenizer family")
    path: str | None = Field(None, description="llama/hf: local folder with tokenizer.json, or the file itself")
    encoding: str | None = Field(None, description="tiktoken: encoding name (default gpt2)")
    vocab_size: int | None = Field(None, ge=260, le=65536, description="bpe: vocabulary size")


class TokenizerSpecError(ValueError):
    """A tokenizer setting that cannot be used as written; ``fix`` says how to write it."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message, self.fix = message, fix


def _did_you_mean(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name.lower(), KINDS, n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def parse_tokenizer(value: Any) -> TokenizerChoice:
    """The :class:`TokenizerChoice` a manifest value means; raises :class:`TokenizerSpecError`."""
    if isinstance(value, TokenizerChoice):
        return value
    if isinstance(value, str):
        kind, sep, arg = value.partition(":")
        if kind not in KINDS:
            raise TokenizerSpecError(f"unknown tokenizer '{value}'", f"{_did_you_mean(kind)}use one of: {FORMS}")
        if sep and not arg:
            raise TokenizerSpecError(f"tokenizer '{value}' names nothing after ':'",
                                     f"write {kind}:<{'encoding' if kind == 'tiktoken' else 'local folder'}>")
        if sep and kind not in ("tiktoken", *LOCAL_KINDS):
            raise TokenizerSpecError(f"tokenizer '{kind}' takes no ':' argument", f"write just '{kind}'")
        value = {"type": kind, **({"encoding": arg} if kind == "tiktoken" and arg else {}),
                 **({"path": arg} if kind in LOCAL_KINDS and arg else {})}
    if not isinstance(value, dict):
        raise TokenizerSpecError(f"a tokenizer is a name or a mapping, found {type(value).__name__} {value!r}",
                                 f"use one of: {FORMS}")
    try:
        choice = TokenizerChoice.model_validate(value)
    except ValidationError as e:
        where, err = first_error(e)
        where = where or "tokenizer"
        if err["type"] == "literal_error":
            found = value.get("type")
            raise TokenizerSpecError(f"unknown tokenizer type '{found}'",
                                     f"{_did_you_mean(str(found))}use one of: {', '.join(KINDS)}") from None
        raise TokenizerSpecError(f"tokenizer {where}: {err['msg']} (found {err.get('input')!r})",
                                 f"tokenizer mappings take type, path, encoding, vocab_size ({FORMS})") from None
    if choice.type in LOCAL_KINDS and not choice.path:
        raise TokenizerSpecError(
            f"tokenizer '{choice.type}' needs a local tokenizer (caramba never downloads one)",
            f"point it at a folder holding tokenizer.json: tokenizer: {{type: {choice.type}, path: <folder>}} "
            f"or tokenizer: {choice.type}:<folder> (relative to the manifest); or use byte, bpe (trained "
            "locally) or a cached tiktoken encoding")
    if choice.type == "gpt2" and choice.encoding not in (None, "gpt2"):
        raise TokenizerSpecError(f"tokenizer gpt2 with encoding '{choice.encoding}'",
                                 f"write tokenizer: tiktoken:{choice.encoding} for that encoding")
    if choice.path and choice.type not in LOCAL_KINDS:
        raise TokenizerSpecError(f"tokenizer '{choice.type}' takes no path",
                                 "remove path, or use type: hf | llama for a local tokenizer.json")
    return choice


def spec_problem(value: Any) -> TokenizerSpecError | None:
    """The problem with a tokenizer setting, or None when it parses."""
    try:
        parse_tokenizer(value)
    except TokenizerSpecError as e:
        return e
    return None
