"""Python source → facts, with the standard ``ast`` module only (the code is never executed).

One call, one file::

    facts = parse_python(source_bytes, path="pkg/mod.py", module="pkg.mod")
    facts.symbols   # modules, classes, functions/methods, module-level variables
    facts.imports   # what each ``import`` binds, as absolute dotted names
    facts.calls     # every call site: who calls, the callee expression, the line

Facts are *unresolved*: a call ``self.fit(x)`` is recorded as ``parts=("self", "fit")``
inside the caller's class; :mod:`caramba.codegraph.resolve` turns names into qualified
names once every file of the repository is known. A file that does not parse yields facts
with ``error=(line, message)`` and no symbols.

Qualified names: ``pkg.mod`` (module), ``pkg.mod.Class``, ``pkg.mod.Class.method``,
``pkg.mod.func``, ``pkg.mod.func.inner`` (nested), ``pkg.mod.CONSTANT``.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field

_DOC_MAX = 400  # docstrings are for search and display: the first paragraph is enough


@dataclass
class Symbol:
    """A module, class, function/method or module-level variable."""

    kind: str  # "module" | "class" | "function" | "method" | "variable"
    qualname: str
    name: str
    parent: str | None  # qualname of the containing symbol (None for the module)
    line: int
    end_line: int
    signature: str = ""
    decorators: list[str] = field(default_factory=list)  # source text, e.g. "register('X')"
    decorator_targets: list[tuple[str, ...]] = field(default_factory=list)  # dotted parts to resolve
    docstring: str = ""
    is_async: bool = False
    bases: list[tuple[str, ...]] = field(default_factory=list)  # classes: dotted base names
    base_texts: list[str] = field(default_factory=list)


@dataclass
class Import:
    """``import a.b as x`` → ``Import(bound="x", target="a.b")``; ``import a.b`` binds ``a``
    (``bound="a", target="a"``) and also records module ``a.b`` (``bound=None``);
    ``from . import y`` in ``pkg.m`` → ``bound="y", target="pkg.y"``; ``*`` → ``bound="*"``."""

    bound: str | None
    target: str
    line: int
    owner: str  # qualname of the module/function whose scope the import binds in


@dataclass
class Call:
    """One call site. ``parts`` is the callee as dotted names (``("np", "zeros")``), or None
    when the callee is not a plain dotted name (``f()()``, ``x[0]()``)."""

    caller: str
    line: int
    text: str
    parts: tuple[str, ...] | None
    in_class: str | None  # qualname of the enclosing class of the caller (for self./cls./super())


@dataclass
class FileFacts:
    path: str
    module: str
    sha: str
    lines: int
    symbols: list[Symbol] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    error: tuple[int, str] | None = None


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def dotted(node: ast.AST) -> tuple[str, ...] | None:
    """``a.b.c`` → ("a", "b", "c"); ``super().m`` → ("super()", "m"); else None."""
    out: list[str] = []
    while isinstance(node, ast.Attribute):
        out.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        out.append(node.id)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super":
        out.append("super()")
    else:
        return None
    return tuple(reversed(out))


def absolute_module(module: str, is_package: bool, level: int, name: str | None) -> str | None:
    """Resolve ``from <level dots><name> import …`` inside ``module`` to an absolute name."""
    if level == 0:
        return name
    parts = module.split(".") if module else []
    base = parts if is_package else parts[:-1]
    if level - 1 > len(base):
        return None  # beyond the top-level package
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([name] if name else [])]) or None


def _doc(node: ast.AST) -> str:
    doc = ast.get_docstring(node, clean=True) if isinstance(
        node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) else None
    return (doc or "").split("\n\n")[0][:_DOC_MAX]


def _short(node: ast.AST, limit: int = 120) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Visitor(ast.NodeVisitor):
    """Walks one module keeping a scope stack of (qualname, kind)."""

    def __init__(self, facts: FileFacts, is_package: bool) -> None:
        self.f = facts
        self.is_package = is_package
        self.scope: list[tuple[str, str]] = [(facts.module, "module")]

    # -- scopes
    @property
    def here(self) -> str:
        return self.scope[-1][0]

    def _class_of_caller(self) -> str | None:
        """The class a call belongs to: the class directly around the current function."""
        if len(self.scope) >= 2 and self.scope[-1][1] == "method":
            return self.scope[-2][0]
        return None

    def _decorators(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[list[str], list[tuple[str, ...]]]:
        texts, targets = [], []
        for d in node.decorator_list:
            texts.append(_short(d))
            parts = dotted(d.func if isinstance(d, ast.Call) else d)
            if parts:
                targets.append(parts)
            self._calls_in(d)  # register("X") is a call made by the enclosing scope
        return texts, targets

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        q = f"{self.here}.{node.name}"
        texts, targets = self._decorators(node)
        bases = [b for b in (dotted(x) for x in node.bases) if b]
        self.f.symbols.append(Symbol("class", q, node.name, self.here, node.lineno, node.end_lineno or node.lineno,
                                     decorators=texts, decorator_targets=targets, docstring=_doc(node),
                                     bases=bases, base_texts=[_short(b) for b in node.bases]))
        for kw in node.keywords:
            self._calls_in(kw.value)
        self.scope.append((q, "class"))
        for stmt in node.body:
            self.visit(stmt)
        self.scope.pop()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        q = f"{self.here}.{node.name}"
        kind = "method" if self.scope[-1][1] == "class" else "function"
        texts, targets = self._decorators(node)
        sig = f"({ast.unparse(node.args)})" + (f" -> {ast.unparse(node.returns)}" if node.returns else "")
        self.f.symbols.append(Symbol(kind, q, node.name, self.here, node.lineno, node.end_lineno or node.lineno,
                                     signature=sig, decorators=texts, decorator_targets=targets,
                                     docstring=_doc(node), is_async=isinstance(node, ast.AsyncFunctionDef)))
        for default in [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]:
            self._calls_in(default)
        self.scope.append((q, kind))
        for stmt in node.body:
            self.visit(stmt)
        self.scope.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    # -- imports
    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.asname:
                self.f.imports.append(Import(a.asname, a.name, node.lineno, self.here))
            else:
                head = a.name.split(".")[0]
                self.f.imports.append(Import(head, head, node.lineno, self.here))
                if head != a.name:
                    self.f.imports.append(Import(None, a.name, node.lineno, self.here))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = absolute_module(self.f.module, self.is_package, node.level, node.module)
        if base is None:
            return
        for a in node.names:
            if a.name == "*":
                self.f.imports.append(Import("*", base, node.lineno, self.here))
            else:
                self.f.imports.append(Import(a.asname or a.name, f"{base}.{a.name}", node.lineno, self.here))

    # -- module-level variables
    def _assign_targets(self, targets: list[ast.expr], node: ast.stmt) -> None:
        if self.scope[-1][1] != "module":
            return
        for t in targets:
            for n in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]):
                if isinstance(n, ast.Name):
                    self.f.symbols.append(Symbol("variable", f"{self.here}.{n.id}", n.id, self.here,
                                                 node.lineno, node.end_lineno or node.lineno))

    def visit_Assign(self, node: ast.Assign) -> None:
        self._assign_targets(node.targets, node)
        self._calls_in(node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._assign_targets([node.target], node)
        if node.value is not None:
            self._calls_in(node.value)

    # -- calls: every other statement is scanned for calls (nested defs are visited as scopes)
    def generic_visit(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import,
                                  ast.ImportFrom, ast.Assign, ast.AnnAssign)):
                self.visit(child)
            elif isinstance(child, ast.expr):
                self._calls_in(child)
            else:  # statements, except handlers, match cases, with items: recurse
                self.generic_visit(child)

    def _calls_in(self, expr: ast.AST) -> None:
        """Every call inside ``expr`` (a hand-rolled ``ast.walk``: this loop is most of the
        parse time, and skipping leaf fields such as ``Name.ctx`` halves it)."""
        stack = [expr]
        caller, in_class = self.here, self._class_of_caller()
        while stack:
            n = stack.pop()
            t = type(n)
            if t is ast.Call and not (type(n.func) is ast.Name and n.func.id == "super"):
                parts = dotted(n.func)
                # ast.unparse is slow pure Python: only for callees that are not plain dotted names
                text = ".".join(parts) if parts else _short(n.func)
                self.f.calls.append(Call(caller, n.lineno, text, parts, in_class))
            for name in _child_fields(t):
                v = getattr(n, name, None)
                if type(v) is list:
                    stack.extend(x for x in v if isinstance(x, ast.AST))
                elif isinstance(v, ast.AST):
                    stack.append(v)


_LEAF_FIELDS = {"ctx", "id", "attr", "arg", "kind", "type_comment", "conversion", "is_async", "level", "module",
                "name", "asname", "op"}
_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(t: type) -> tuple[str, ...]:
    """Fields of node type ``t`` that can hold sub-expressions (cached per type)."""
    f = _FIELDS.get(t)
    if f is None:
        f = tuple(x for x in t._fields if x not in _LEAF_FIELDS and not (t is ast.Constant and x == "value"))
        _FIELDS[t] = f
    return f


def parse_python(data: bytes, *, path: str, module: str) -> FileFacts:
    """Facts of one Python file. ``module`` is its dotted name (``pkg/__init__.py`` → ``pkg``)."""
    is_package = path.endswith("__init__.py")
    text = data.decode("utf-8", errors="replace")
    facts = FileFacts(path=path, module=module, sha=content_hash(data), lines=text.count("\n") + 1)
    try:
        tree = ast.parse(data, filename=path)
    except SyntaxError as e:
        facts.error = (e.lineno or 0, e.msg)
        return facts
    except ValueError as e:  # null bytes in source
        facts.error = (0, str(e))
        return facts
    except RecursionError:  # generated code: a 20 000-term expression, deeply nested literals
        facts.error = (0, "too deeply nested for Python's parser (RecursionError); not indexed")
        return facts
    name = module.rsplit(".", 1)[-1]
    facts.symbols.append(Symbol("module", module, name, None, 1, facts.lines, docstring=_doc(tree)))
    try:
        _Visitor(facts, is_package).generic_visit(tree)
    except RecursionError:  # parsed, but too deep to walk: keep the file, drop its partial facts
        fresh = FileFacts(path=path, module=module, sha=facts.sha, lines=facts.lines)
        fresh.error = (0, "too deeply nested to analyse (RecursionError); not indexed")
        return fresh
    return facts
