"""``${name}`` substitution from the manifest's ``vars``.

Rules (manifest reference, "Variables"):

* a value that is *exactly* ``${x}`` becomes x's value with its type — int, float, bool,
  list or mapping (``d_model: ${d_model}`` gives the integer 512);
* a reference inside longer text is interpolated as text (``"run_${seed}"`` →
  ``"run_42"``; booleans render as ``true``/``false``). Lists and mappings cannot be
  embedded in text;
* vars may use other vars; a cycle (``a: ${b}``, ``b: ${a}``) is an error naming the
  chain;
* an unknown name is an error at the node that uses it, with a did-you-mean;
* ``$${`` writes a literal ``${``.

Only values are substituted, never keys. A mapping or list inserted by an exact
reference keeps the source positions of the var's definition, so a problem inside it
points at the text that defined it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from caramba.engine.manifest.source import IssueCollector, SourceMap, YPath, did_you_mean

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_EXACT = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


class VarResolver:
    """Resolves ``vars`` (vars may use vars) and substitutes them into values.

    ``partial`` mode (used for ``!include {vars: ...}``) replaces only the names it
    knows and leaves everything else — unknown names and ``$${`` escapes — for the
    manifest-wide pass.
    """

    def __init__(self, raw: dict[str, Any], issues: IssueCollector, smap: SourceMap | None,
                 *, partial: bool = False, where: YPath = ("vars",), vars_broken: bool = False) -> None:
        self.raw = raw
        self.issues = issues
        self.smap = smap  # None: do not copy source positions of inserted mappings
        self.partial = partial
        self.vars_broken = vars_broken  # 'vars' itself was invalid (reported): no echo per use
        self.where = where
        self.resolved: dict[str, Any] = {}
        self._stack: list[str] = []
        self._failed: set[str] = set()

    def resolve_all(self) -> dict[str, Any]:
        """Every var with its references substituted (errors recorded, not raised)."""
        for name in self.raw:
            self._var(name, self.where + (name,))
        return {name: self.resolved.get(name, self.raw[name]) for name in self.raw}

    def _var(self, name: str, ref_path: YPath) -> tuple[bool, Any]:
        """(ok, value) of var ``name``; ``ref_path`` is the node that asked for it."""
        if name in self.resolved:
            return True, self.resolved[name]
        if name in self._failed:
            return False, None
        if name in self._stack:
            chain = " -> ".join([*self._stack[self._stack.index(name):], name])
            self.issues.add(ref_path, f"variable cycle: {chain}",
                            fix="break the cycle: give one of these vars a literal value")
            self.issues.poison(ref_path)
            return False, None
        self._stack.append(name)
        value = self.substitute(self.raw[name], self.where + (name,))
        self._stack.pop()
        if self.issues.is_poisoned(self.where + (name,)):
            self._failed.add(name)
            return False, None
        self.resolved[name] = value
        return True, value

    def substitute(self, value: Any, path: YPath) -> Any:
        """``value`` (which sits at ``path``) with every reference replaced."""
        if isinstance(value, dict):
            return {k: self.substitute(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v, path + (i,)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            return self._text(value, path)
        return value

    def _lookup(self, name: str, path: YPath) -> tuple[bool, Any]:
        if not _NAME.fullmatch(name):
            self.issues.add(path, f"invalid variable reference '${{{name}}}'",
                            fix="variable names are letters, digits and '_', e.g. ${d_model}; write $${ for a literal ${")
            self.issues.poison(path)
            return False, None
        if name not in self.raw:
            if self.partial:
                return False, None
            if self.vars_broken:
                self.issues.poison(path)
                return False, None
            close = did_you_mean(name, self.raw)
            fix = (f"did you mean '${{{close}}}'?" if close
                   else f"define it under 'vars:' ({', '.join(sorted(self.raw)) or 'none defined yet'})")
            self.issues.add(path, f"unknown variable '{name}'", fix=fix)
            self.issues.poison(path)
            return False, None
        ok, value = self._var(name, path)
        if not ok:
            self.issues.poison(path)  # the var itself is broken; that is reported there
        return ok, value

    def _text(self, text: str, path: YPath) -> Any:
        exact = _EXACT.fullmatch(text)
        if exact:
            ok, value = self._lookup(exact.group(1), path)
            if not ok:
                return text
            if isinstance(value, (dict, list)) and self.smap is not None:
                self.smap.drop_under(path)
                self.smap.copy_subtree(self.where + (exact.group(1),), path, keep_path=False)
            return copy.deepcopy(value)
        out: list[str] = []
        pos = 0
        for m in _TOKEN.finditer(text):
            out.append(text[pos:m.start()])
            pos = m.end()
            if m.group(0) == "$${":
                out.append("$${" if self.partial else "${")
                continue
            name = m.group(1)
            ok, value = self._lookup(name, path)
            if not ok:
                out.append(m.group(0))
            elif isinstance(value, (dict, list)):
                kind = "mapping" if isinstance(value, dict) else "list"
                self.issues.add(path, f"variable '{name}' holds a {kind} and cannot be embedded in text",
                                found=repr(text), fix=f"use it as the whole value ('${{{name}}}' alone)")
                self.issues.poison(path)
                out.append(m.group(0))
            else:
                out.append(_as_text(value))
        out.append(text[pos:])
        return "".join(out)


def escape_literals(value: Any) -> Any:
    """Re-escape literal ``${`` as ``$${`` so resolved data can be loaded again."""
    if isinstance(value, dict):
        return {k: escape_literals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_literals(v) for v in value]
    if isinstance(value, str):
        return value.replace("${", "$${")
    return value
