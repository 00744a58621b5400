"""What happens with a verdict: a ``verify`` event, a results entry, and — for a
``fail_fast`` gate that failed — :class:`GateFailed`, which stops the manifest with a
report of every violated bound."""

from __future__ import annotations

from typing import Any

from caramba.engine.errors import CarambaError
from caramba.engine.verify.gates import Verdict


class GateFailed(CarambaError):
    """A ``fail_fast`` verification gate failed; the run stops here."""

    def __init__(self, run_id: str, verdict: Verdict) -> None:
        self.verdict = verdict
        lines = "\n  - ".join(verdict.failures)
        super().__init__(f"runs[{run_id}].verify ({verdict.type}) failed with fail_fast: true:\n  - {lines}",
                         fix="improve the run (more steps, better init) or relax the bound; set fail_fast: false "
                         "to record the failure and continue")


def apply_verdict(run_id: str, spec: Any, verdict: Verdict, recorder: Any) -> dict[str, Any]:
    """Emit the ``verify`` event and return the verdict as stored in ``results.json``."""
    row = verdict.to_dict()
    recorder.event("verify", run_id, verdict="pass" if verdict.passed else "fail", type=verdict.type,
                   metrics=verdict.metrics, thresholds=verdict.thresholds, failures=verdict.failures,
                   fail_fast=bool(spec.fail_fast))
    if not verdict.passed and spec.fail_fast:
        raise GateFailed(run_id, verdict)
    return row
