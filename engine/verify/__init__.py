"""caramba.engine.verify: quality gates after a run (``runs[].verify``).

:func:`~caramba.engine.verify.gates.run_gate` runs one spec and returns a
:class:`~caramba.engine.verify.gates.Verdict`; :func:`~caramba.engine.verify.report.
apply_verdict` records it (``verify`` event, results) and raises
:class:`~caramba.engine.verify.report.GateFailed` when the spec says ``fail_fast``.
"""

from caramba.engine.verify.gates import Verdict, run_gate
from caramba.engine.verify.report import GateFailed, apply_verdict

__all__ = ["Verdict", "run_gate", "GateFailed", "apply_verdict"]
