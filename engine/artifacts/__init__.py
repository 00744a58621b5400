"""caramba.engine.artifacts: paper-ready outputs of a target run.

:func:`write_artifacts` writes ``artifacts/summary.csv``, ``artifacts/summary.tex``
(booktabs), ``artifacts/loss_curve.png`` and ``results.json`` into a run directory.
"""

from caramba.engine.artifacts.writer import write_artifacts

__all__ = ["write_artifacts"]
