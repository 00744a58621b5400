"""Tiny manifests for the MCP tests: a valid CPU language model that trains in seconds,
and variants with one deliberate mistake."""

from __future__ import annotations

TINY = """\
# tiny: a 2-layer toy LM on random tokens (MCP tests)
version: 2
name: tiny
vars:
  d: 32
  vocab: 64
defaults:
  logging: {instrument: none, tensorboard: false}
targets:
  - type: experiment
    name: train
    task: task.language_modeling
    data:
      ref: dataset.random_tokens
      config: {vocab_size: 64, n_tokens: 4096, block_size: 16}
    system:
      ref: system.language_model
      config:
        model:
          type: TransformerModel
          embedder:
            type: token
            vocab_size: ${vocab}
            d_model: ${d}
          topology:
            type: StackedTopology
            layers:
              - {type: RMSNormLayer, d_model: 32}
              - {type: SwiGLULayer, d_model: 32, d_ff: 64}
              - {type: LinearLayer, d_in: 32, d_out: 64}
    objective: objective.next_token_ce
    trainer: trainer.standard
    runs:
      - {id: a, steps: STEPS, seed: 1, train: {batch_size: 4, block_size: 16, lr: 0.001, device: cpu, log_every: 1, save_every: SAVE}}
"""


def tiny(steps: int = 4, save_every: int = 0) -> str:
    """``save_every`` > 0 writes a checkpoint every that many steps (0 = only at the end)."""
    return TINY.replace("STEPS", str(steps)).replace("SAVE", str(save_every))


def tiny_bad_width() -> str:
    """The SwiGLU layer's d_model does not match the width flowing in."""
    return tiny().replace("{type: SwiGLULayer, d_model: 32", "{type: SwiGLULayer, d_model: 48")


def tiny_python_impl() -> str:
    """A manifest that names a python: impl (refused unless the server allows it)."""
    return tiny().replace("trainer: trainer.standard", "trainer: {ref: trainer.standard, impl: 'python:os:system'}")


def tiny_self_granted() -> str:
    """A manifest that tries to grant itself python: impls."""
    return tiny().replace("  logging: {instrument: none, tensorboard: false}",
                          "  logging: {instrument: none, tensorboard: false}\n  runtime: {allow_python_impl: true}")
