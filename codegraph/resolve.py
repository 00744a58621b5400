"""Names → qualified names, statically: imports, enclosing scopes, ``self``/``cls``/``super()``, MRO.

:class:`SymbolTable` knows every symbol of the repository (kind by qualname), the bases of
every class and what each scope's imports bind. :func:`link` uses it to turn one file's
:class:`~caramba.codegraph.parse.FileFacts` into edges:

* a call ``np.zeros(…)`` where ``import numpy as np`` → ``numpy.zeros`` if that symbol is
  in the repository, else an *unresolved* call kept with its text and line;
* ``self.fit()`` in ``pkg.m.Model`` → the first class along the (depth-first) MRO of
  ``Model`` that defines ``fit``; ``super().fit()`` starts after ``Model``;
* ``pkg.Model`` where ``pkg/__init__.py`` does ``from .m import Model`` → ``pkg.m.Model``
  (re-exports are followed, a few hops at most);
* ``Name()`` inside ``f`` finds ``f``'s nested definitions first, then the module.

Nothing is executed and nothing is guessed: a name that cannot be followed to a symbol
of the repository stays unresolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from caramba.codegraph.parse import FileFacts

_MAX_HOPS = 8  # re-export chains longer than this are almost certainly cycles


@dataclass
class SymbolTable:
    kinds: dict[str, str] = field(default_factory=dict)  # qualname -> kind
    bases: dict[str, list[str]] = field(default_factory=dict)  # class -> resolved base qualnames
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)  # scope -> {bound name: dotted target}
    stars: dict[str, list[str]] = field(default_factory=dict)  # scope -> modules star-imported

    def add_facts(self, facts: FileFacts) -> None:
        """Register a file's symbols and import bindings (bases are added by :func:`link_bases`)."""
        for s in facts.symbols:
            self.kinds[s.qualname] = s.kind
        for imp in facts.imports:
            if imp.bound == "*":
                self.stars.setdefault(imp.owner, []).append(imp.target)
            elif imp.bound:
                self.aliases.setdefault(imp.owner, {})[imp.bound] = imp.target

    # ---------------------------------------------------------------- lookups

    def mro(self, cls: str) -> list[str]:
        """Depth-first, left-to-right linearisation of resolved bases (cycle-safe)."""
        out: list[str] = []
        stack = [cls]
        while stack:
            c = stack.pop(0)
            if c in out:
                continue
            out.append(c)
            stack = self.bases.get(c, []) + stack
        return out

    def member(self, cls: str, name: str, *, skip_self: bool = False) -> str | None:
        for c in self.mro(cls)[1 if skip_self else 0:]:
            q = f"{c}.{name}"
            if q in self.kinds:
                return q
        return None

    def canonical(self, name: str, hops: int = 0) -> str | None:
        """The repository symbol a dotted name denotes, following re-exports and inheritance."""
        if name in self.kinds:
            return name
        if hops > _MAX_HOPS:
            return None
        parts = name.split(".")
        for i in range(len(parts) - 1, 0, -1):
            prefix, head, rest = ".".join(parts[:i]), parts[i], parts[i + 1:]
            kind = self.kinds.get(prefix)
            if kind is None:
                continue
            if kind == "module":
                target = self.aliases.get(prefix, {}).get(head)
                if target is None:
                    for star in self.stars.get(prefix, []):
                        if self.canonical(f"{star}.{head}", hops + 1):
                            target = f"{star}.{head}"
                            break
                if target is None:
                    return None
                return self.canonical(".".join([target, *rest]), hops + 1)
            if kind == "class":
                m = self.member(prefix, head)
                if m is None:
                    return None
                return self.canonical(".".join([m, *rest]), hops + 1) if rest else m
            return None  # attribute of a function or variable: not statically known
        return None

    def lookup(self, head: str, scope: str) -> str | None:
        """What the bare name ``head`` means in ``scope`` (a qualname): nested definitions and
        imports of the enclosing function/module scopes, innermost first; class bodies do not
        enclose their methods (Python's rule)."""
        chain = [scope]
        while "." in chain[-1] and self.kinds.get(chain[-1]) != "module":
            chain.append(chain[-1].rsplit(".", 1)[0])
        for i, s in enumerate(chain):
            if i > 0 and self.kinds.get(s) == "class":
                continue
            if f"{s}.{head}" in self.kinds:
                return f"{s}.{head}"
            target = self.aliases.get(s, {}).get(head)
            if target is not None:
                return target
            for star in self.stars.get(s, []):
                if self.canonical(f"{star}.{head}"):
                    return f"{star}.{head}"
        return None

    def resolve_parts(self, parts: tuple[str, ...], scope: str, in_class: str | None) -> str | None:
        head, rest = parts[0], parts[1:]
        if head in ("self", "cls") and in_class is not None and self.kinds.get(scope) == "method":
            if len(rest) != 1:
                return None  # self.attr.method(): the attribute's type is not known statically
            return self.member(in_class, rest[0])
        if head == "super()":
            if in_class is None or len(rest) != 1:
                return None
            return self.member(in_class, rest[0], skip_self=True)
        base = self.lookup(head, scope)
        if base is None:
            return None
        return self.canonical(".".join([base, *rest]))


@dataclass
class Links:
    """Edges out of one file, as rows ready for the graph writer."""

    calls: list[dict] = field(default_factory=list)  # {src, dst, line, text}
    unresolved: dict[str, list[str]] = field(default_factory=dict)  # caller -> ["line:text", …]
    inherits: list[dict] = field(default_factory=list)  # {src, dst}
    imports: list[dict] = field(default_factory=list)  # {src, dst, line, name}
    unresolved_imports: list[str] = field(default_factory=list)
    decorated: list[dict] = field(default_factory=list)  # {src, dst, text}


def link_bases(facts: FileFacts, table: SymbolTable) -> None:
    """Resolve the bases of this file's classes into ``table.bases`` (run for every file to
    be linked before :func:`link`, since ``self.m()`` may follow a base in another file)."""
    for s in facts.symbols:
        if s.kind == "class":
            resolved = [table.resolve_parts(b, s.parent or facts.module, None) for b in s.bases]
            table.bases[s.qualname] = [r for r in resolved if r and table.kinds.get(r) == "class"]


def link(facts: FileFacts, table: SymbolTable) -> Links:
    out = Links()
    for c in facts.calls:
        dst = table.resolve_parts(c.parts, c.caller, c.in_class) if c.parts else None
        if dst is not None:
            out.calls.append({"src": c.caller, "dst": dst, "line": c.line, "text": c.text})
        else:
            out.unresolved.setdefault(c.caller, []).append(f"{c.line}:{c.text}")
    for s in facts.symbols:
        for b in table.bases.get(s.qualname, []) if s.kind == "class" else []:
            out.inherits.append({"src": s.qualname, "dst": b})
        for parts, text in zip(s.decorator_targets, s.decorators):
            dst = table.resolve_parts(parts, s.parent or facts.module, None)
            if dst is not None:
                out.decorated.append({"src": s.qualname, "dst": dst, "text": text})
    seen: set[tuple[str, str]] = set()
    for imp in facts.imports:
        dst = table.canonical(imp.target) or _module_prefix(imp.target, table)
        if dst is None:
            out.unresolved_imports.append(imp.target)
        elif (imp.owner, dst) not in seen:
            seen.add((imp.owner, dst))
            out.imports.append({"src": imp.owner, "dst": dst, "line": imp.line, "name": imp.target})
    return out


def _module_prefix(target: str, table: SymbolTable) -> str | None:
    """``from pkg.m import missing`` still imports module ``pkg.m`` (only the direct parent:
    ``pkg.gone.x`` with ``pkg.gone`` deleted must not silently become an import of ``pkg``)."""
    parent = target.rpartition(".")[0]
    return parent if parent and table.kinds.get(parent) == "module" else None
