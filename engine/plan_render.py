"""Rich rendering of a :class:`~caramba.engine.plan.Plan`.

Per target: a header with the components, a runs table and the model tree. Identical
consecutive siblings (the ``repeat``\\ ed blocks) are folded into one line ``× N`` so a
48-layer model still fits on a screen; the parameter count on a folded line is the total
over its copies.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from caramba.engine.model.tree import ModelTree


def human(n: int | None) -> str:
    """``124439808`` → ``124.44M``."""
    if n is None:
        return "-"
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def _fold(children: list[ModelTree]) -> list[tuple[list[ModelTree], int]]:
    """Group consecutive repeats of a block of ``p`` siblings (``p`` = 1, 2, …)."""
    sigs = [c.signature() for c in children]
    groups: list[tuple[list[ModelTree], int]] = []
    i = 0
    while i < len(children):
        best_p, best_n = 1, 1
        for p in range(1, (len(children) - i) // 2 + 1):
            n = 1
            while sigs[i + n * p: i + (n + 1) * p] == sigs[i: i + p]:
                n += 1
            if n > 1 and n * p > best_n * best_p:
                best_p, best_n = p, n
        groups.append((children[i: i + best_p], best_n))
        i += best_p * best_n
    return groups


def _label(node: ModelTree, copies: int) -> Text:
    label = Text(f"{node.name}: ", style="dim")
    label.append(node.type, style="bold")
    if copies > 1:
        label.append(f" × {copies}", style="cyan")
    label.append(f"  {human(node.params * copies)} params ({node.params * copies:,})")
    return label


def _add_group(branch: Tree, nodes: list[ModelTree], copies: int) -> None:
    if len(nodes) == 1:
        _add(branch, nodes[0], copies)
        return
    total = sum(n.params for n in nodes) * copies
    sub = branch.add(Text(f"[{nodes[0].name} … {nodes[-1].name}] × {copies}  {human(total)} params ({total:,})",
                          style="cyan"))
    for n in nodes:
        _add(sub, n)


def _add(branch: Tree, node: ModelTree, copies: int = 1) -> None:
    sub = branch.add(_label(node, copies))
    for group, n in _fold(node.children):
        _add_group(sub, group, n)


def render_tree(tree: ModelTree) -> Tree:
    root = Tree(Text(f"{tree.type}  {human(tree.params)} params ({tree.params:,})", style="bold"))
    for group, n in _fold(tree.children):
        _add_group(root, group, n)
    return root


def render_plan(plan: Any) -> Group:
    parts: list[Any] = [Text(f"plan: {plan.manifest}" + (f"  ({plan.source})" if plan.source else ""), style="bold")]
    if plan.notes:
        parts.append(Text(str(plan.notes).strip(), style="italic"))
    for t in plan.targets:
        head = Text(f"\ntarget {t.name} [{t.type}]", style="bold green")
        if t.params is not None:
            head.append(f"  {human(t.params)} parameters ({t.params:,})", style="bold")
        parts.append(head)
        if t.description:
            parts.append(Text(t.description))
        if t.components:
            parts.append(Text("  ".join(f"{k}: {v}" for k, v in t.components.items())))
        if t.runs:
            table = Table(title=None, show_lines=False)
            for col in ("run", "mode", "steps", "seed", "batch", "block", "lr", "device", "dtype"):
                table.add_column(col)
            for r in t.runs:
                table.add_row(r.id, str(r.mode or "-"), str(r.steps if r.steps is not None else "-"),
                              str(r.seed if r.seed is not None else "-"), str(r.batch_size or "-"),
                              str(r.block_size or "-"), f"{r.lr:g}" if r.lr is not None else "-",
                              str(r.device or "-"), str(r.dtype or "-"))
            parts.append(table)
        if t.tree is not None:
            parts.append(render_tree(t.tree))
    return Group(*parts)
