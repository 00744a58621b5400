"""``load_manifest``: the whole manifest pipeline, from a file to a validated :class:`Manifest`.

Stages, each in its own module::

    document   parse YAML with positions; anchors, merge keys, !include, x- keys
    overrides  --set vars.*  (before substitution, so vars can be overridden)
    variables  ${name} substitution (vars may use vars)
    overrides  every other --set path
    lowering   lower-case aliases → canonical names; NestedTopology.repeat expansion
    schema     pydantic models (schema*.py), errors translated by schema_errors
    validate   components' check_config, python impl permission, unique names, entrypoints

Every stage records problems in one :class:`IssueCollector` instead of raising, so a
bad manifest reports *all* its problems at once in a single
:class:`~caramba.engine.errors.ManifestError`. Only an unreadable file or broken YAML
stops early (there is nothing to check after that).

Example::

    from caramba.engine.manifest import load_manifest
    m = load_manifest("manifests/standard_transformer.yml", overrides=["targets[0].runs[0].steps=5"])
    target = m.target()            # entrypoints.default, else the first target
    print(m.resolved_yaml())
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from caramba.engine.manifest.document import parse_document
from caramba.engine.manifest.lowering import Lowerer
from caramba.engine.manifest.overrides import apply_overrides
from caramba.engine.manifest.schema import Manifest
from caramba.engine.manifest.schema_errors import report_schema_errors
from caramba.engine.manifest.source import IssueCollector, SourceMap
from caramba.engine.manifest.validate import ComponentChecker
from caramba.engine.manifest.variables import VarResolver


def _default_name(source: Path | str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(str(source)).stem).lstrip("_.-")
    return stem or "manifest"


def _substitute_vars(data: dict[str, Any], smap: SourceMap, issues: IssueCollector) -> dict[str, Any]:
    raw_vars = data.get("vars")
    broken = False
    if raw_vars is None:
        raw_vars = {}
    if not isinstance(raw_vars, dict):
        broken = True
        issues.add(("vars",), "'vars' must be a mapping of names to values", found=repr(raw_vars),
                   fix="write e.g. 'vars: {d_model: 512, lr: 3e-4}'")
        issues.poison(("vars",))
        raw_vars = {}
    resolver = VarResolver(raw_vars, issues, smap, vars_broken=broken)
    resolved = resolver.resolve_all()
    return {key: (resolved if key == "vars" and isinstance(value, dict) else resolver.substitute(value, (key,)))
            for key, value in data.items()}


def _python_allowed(data: dict[str, Any], allow_python_impl: bool, manifest_may_allow: bool,
                    issues: IssueCollector) -> bool:
    """Apply the caller's permission to the data (so the resolved manifest records it)."""
    defaults = data.get("defaults")
    runtime = defaults.get("runtime") if isinstance(defaults, dict) else None
    if not allow_python_impl and not manifest_may_allow and isinstance(runtime, dict) \
            and runtime.get("allow_python_impl") is True:
        issues.add(("defaults", "runtime", "allow_python_impl"),
                   "this manifest allows python implementations itself, which this caller does not accept",
                   fix="remove 'allow_python_impl: true' (and any python: impl); only the operator "
                       "of this service can allow them")
        return False
    if allow_python_impl:
        if defaults is None:
            data["defaults"] = defaults = {}
        if isinstance(defaults, dict):
            if runtime is None:
                defaults["runtime"] = runtime = {}
            if isinstance(runtime, dict):
                runtime["allow_python_impl"] = True
        return True
    return isinstance(runtime, dict) and runtime.get("allow_python_impl") is True


def load_manifest(source: Path | str, *, text: str | None = None, overrides: Sequence[str] = (),
                  allow_python_impl: bool = False, manifest_may_allow: bool = True) -> Manifest:
    """Parse, resolve, lower and validate a manifest; raise ``ManifestError`` listing every problem.

    ``source`` is the manifest file. With ``text=`` the YAML comes from that string and
    ``source`` only names it in messages and anchors relative ``!include`` paths.
    ``overrides`` are ``--set`` specs (``targets[0].runs[0].steps=5``).
    ``allow_python_impl=True`` permits ``python:module:Symbol`` implementations; the
    manifest may also permit them itself (``defaults.runtime.allow_python_impl: true``)
    unless ``manifest_may_allow=False`` (services that accept manifests from others:
    then that setting is an error, reported before any named code is imported).
    """
    smap = SourceMap()
    issues = IssueCollector(smap, str(source))
    parsed = parse_document(source, text, smap, issues)
    if parsed is None:  # unreadable file or broken YAML: nothing more can be checked
        issues.fail()
    specs = list(overrides)
    apply_overrides(parsed, specs, smap, issues, vars_only=True)
    data = _substitute_vars(parsed, smap, issues)
    apply_overrides(data, specs, smap, issues, vars_only=False)
    allowed = _python_allowed(data, allow_python_impl, manifest_may_allow, issues)
    if "name" not in data:
        data["name"] = _default_name(source)

    lowerer = Lowerer(smap, issues)
    data = lowerer.lower(data)
    issues.smap = lowerer.smap

    manifest: Manifest | None = None
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as e:
        report_schema_errors(e, Manifest, data, issues)
    ComponentChecker(issues, allow_python_impl=allowed).check(data)
    if manifest is None or issues.issues:  # a schema failure always records an issue
        issues.fail()
    manifest._source_file = str(source)
    manifest._resolved = copy.deepcopy(data)
    manifest._source_map = issues.smap
    return manifest
