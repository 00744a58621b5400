"""A small valid manifest (real registered components) and helpers for manifest tests.

``GOOD`` trains a 2-block transformer (``NestedTopology`` with ``repeat: 2``) on random
tokens; tests mutate it with :func:`mutate` and locate expected lines with
:func:`line_of`, so assertions name exact lines without hard-coding numbers.
"""

from __future__ import annotations

from pathlib import Path

GOOD = """\
version: 2
name: tiny
notes: a tiny language model
vars:
  d_model: 32
  n_heads: 4
  vocab: 64
  lr: 1e-3
defaults:
  runtime:
    save_every: 5
targets:
  - type: experiment
    name: lm
    backend: torch
    task: task.language_modeling
    data:
      ref: dataset.random_tokens
      config:
        vocab_size: ${vocab}
        block_size: 16
    system:
      ref: system.language_model
      config:
        model:
          type: TransformerModel
          embedder:
            type: token
            vocab_size: ${vocab}
            d_model: ${d_model}
          topology:
            type: StackedTopology
            layers:
              - type: NestedTopology
                repeat: 2
                layers:
                  - type: ResidualTopology
                    layers:
                      - type: RMSNormLayer
                        d_model: ${d_model}
                      - type: AttentionLayer
                        d_model: ${d_model}
                        n_heads: ${n_heads}
                  - type: ResidualTopology
                    layers:
                      - type: RMSNormLayer
                        d_model: ${d_model}
                      - type: SwiGLULayer
                        d_model: ${d_model}
                        d_ff: 64
              - type: RMSNormLayer
                d_model: ${d_model}
              - type: LinearLayer
                d_in: ${d_model}
                d_out: ${vocab}
    objective: objective.next_token_ce
    trainer: trainer.standard
    runs:
      - id: r1
        mode: train
        seed: 1
        steps: 3
        train:
          batch_size: 2
          lr: ${lr}
entrypoints:
  default: lm
"""

#: YAML path prefix of the topology's layers in GOOD.
TOPO = "targets[0].system.config.model.topology"


def mutate(text: str, old: str, new: str, count: int = 1) -> str:
    """``text`` with the first ``count`` occurrences of ``old`` replaced (which must exist)."""
    if old not in text:
        raise ValueError(f"{old!r} is not in the manifest text")
    return text.replace(old, new, count)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the ``occurrence``-th line containing ``needle``."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise ValueError(f"{needle!r} occurs fewer than {occurrence} times")


def write(folder: Path, text: str, name: str = "m.yml") -> Path:
    """Write ``text`` to ``folder/name`` (creating folders) and return the path."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
