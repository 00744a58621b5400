"""The dry-run plan: what a manifest would build and run, without data or weights.

``caramba run FILE --dry-run`` prints ``make_plan(manifest, target).render()``; MCP
tools return ``to_dict()``. Every experiment target's system is built on the meta device
(shapes only, no memory, no data files), so the model tree and parameter counts are
exact even for models far larger than the machine::

    plan = make_plan(load_manifest("manifests/standard_transformer.yml"))
    rich.print(plan.render())        # targets, runs table, model tree with counts
    json.dumps(plan.to_dict())

The manifest is duck-typed on the contract in docs/internals.md (``targets``,
``target(name)``, ``ExperimentTarget.system`` a ComponentSpec, ``runs[].train``).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from typing import Any

from caramba.engine.model.tree import ModelTree


@dataclass
class RunRow:
    """One entry of a target's ``runs`` list."""

    id: str
    mode: str | None
    steps: int | None
    seed: int | None
    batch_size: int | None
    block_size: int | None
    lr: float | None
    device: str | None
    dtype: str | None


@dataclass
class TargetPlan:
    """One target: its components, model tree and runs (process targets: no model)."""

    name: str
    type: str
    description: str | None = None
    components: dict[str, str] = field(default_factory=dict)
    params: int | None = None
    tree: ModelTree | None = None
    runs: list[RunRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "description": self.description,
                "components": dict(self.components), "params": self.params,
                "tree": self.tree.to_dict() if self.tree else None, "runs": [asdict(r) for r in self.runs]}


@dataclass
class Plan:
    """Everything a dry run reports."""

    manifest: str
    source: str | None
    notes: str | None
    targets: list[TargetPlan]

    def to_dict(self) -> dict[str, Any]:
        return {"manifest": self.manifest, "source": self.source, "notes": self.notes,
                "targets": [t.to_dict() for t in self.targets]}

    def render(self) -> Any:
        """A rich renderable (``rich.print(plan.render())``)."""
        from caramba.engine.plan_render import render_plan

        return render_plan(self)

    def render_text(self, width: int = 110) -> str:
        """The rendering as plain text (for logs, tests and tools)."""
        from rich.console import Console

        buf = io.StringIO()
        Console(file=buf, width=width, color_system=None, force_terminal=False).print(self.render())
        return buf.getvalue()


def _ref(spec: Any) -> str | None:
    if spec is None:
        return None
    return spec if isinstance(spec, str) else getattr(spec, "ref", None)


def _run_row(run: Any) -> RunRow:
    train = getattr(run, "train", None)

    def t(name: str) -> Any:
        return getattr(train, name, None) if train is not None else None

    return RunRow(id=str(getattr(run, "id", "?")), mode=getattr(run, "mode", None), steps=getattr(run, "steps", None),
                  seed=getattr(run, "seed", None), batch_size=t("batch_size"), block_size=t("block_size"),
                  lr=t("lr"), device=t("device"), dtype=t("dtype"))


def _allow_python_impl(manifest: Any) -> bool:
    runtime = getattr(getattr(manifest, "defaults", None), "runtime", None)
    if isinstance(runtime, dict):
        return bool(runtime.get("allow_python_impl", False))
    return bool(getattr(runtime, "allow_python_impl", False))


def plan_target(target: Any, *, allow_python_impl: bool = False) -> TargetPlan:
    """The plan of one target; an experiment's system is built on the meta device."""
    from caramba.engine.systems.build import build_system

    system_spec = getattr(target, "system", None)
    kind = getattr(target, "type", None) or ("experiment" if system_spec is not None else "process")
    tp = TargetPlan(name=str(getattr(target, "name", "?")), type=str(kind),
                    description=getattr(target, "description", None))
    for part in ("task", "data", "system", "objective", "trainer"):
        ref = _ref(getattr(target, part, None))
        if ref:
            tp.components[part] = ref
    team = getattr(target, "team", None)
    if isinstance(team, dict):
        tp.components.update({f"team.{role}": str(persona) for role, persona in team.items()})
    process = getattr(target, "process", None)
    if isinstance(process, dict) and isinstance(process.get("type"), str):
        tp.components["process"] = process["type"]
    if system_spec is not None:
        system = build_system(system_spec, device="meta", allow_python_impl=allow_python_impl)
        tp.tree = system.describe()
        tp.params = tp.tree.params
    tp.runs = [_run_row(r) for r in getattr(target, "runs", None) or []]
    return tp


def make_plan(manifest: Any, target: str | None = None) -> Plan:
    """Plan every target of ``manifest`` (or only ``target``: a name or entrypoint)."""
    targets = [manifest.target(target)] if target is not None else list(manifest.targets)
    allow = _allow_python_impl(manifest)
    source = getattr(manifest, "source_file", None)
    return Plan(manifest=str(getattr(manifest, "name", "?")), source=str(source) if source else None,
                notes=getattr(manifest, "notes", None),
                targets=[plan_target(t, allow_python_impl=allow) for t in targets])
