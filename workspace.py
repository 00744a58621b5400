"""The workspace: the folder caramba works in, and its configuration file.

Everything caramba writes lives under the workspace root: ``runs/``, ``manifests/``
written by tools, and tool state under ``.caramba/`` (the embedded FalkorDB data, the
DeepLake datasets, the MCP token, job records). Tools never read or write outside it.

The root is, in order: an explicit path, ``$CARAMBA_WORKSPACE``, the current directory.
Configuration is ``<root>/caramba.yml`` if present (user-edited, may be committed), merged
over nothing else — the defaults below are the embedded defaults of DESIGN.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from caramba.engine.errors import CarambaError, first_error

CONFIG_FILE = "caramba.yml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FalkorDBConfig(_Section):
    url: str | None = Field(None, description="redis://host:port of an external FalkorDB; None = embedded server")


class LLMConfig(_Section):
    model: str | None = Field(None, description="LiteLLM model string, e.g. openai/gpt-4o-mini; None = no LLM")
    api_base: str | None = Field(None, description="OpenAI-compatible base URL (vLLM, Ollama, a proxy)")
    api_key_env: str | None = Field(None, description="environment variable holding the API key, if not the provider's usual one")
    temperature: float = 0.2


class MemoryConfig(_Section):
    enabled: bool = Field(False, description="write run results to Graphiti memory when a run finishes")
    group_id: str = Field("default", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                          validation_alias=AliasChoices("group_id", "group"),
                          description="Graphiti group_id (also accepted as 'group'): one per research project; "
                                      "1-64 letters, digits, '-' or '_'")
    embedder: str = Field("local", description="'local' (offline hashing embedder) or a LiteLLM embedding model")
    deeplake_path: str | None = Field(None, description="DeepLake dataset path; None = <workspace>/.caramba/rag")


class MemoryDefaults(MemoryConfig):
    """``defaults.memory`` of a manifest: the ``memory`` fields of ``caramba.yml`` plus its
    ``llm`` and ``falkordb`` sections, for this manifest's runs and processes.

    Only the fields a manifest writes count: each one replaces the workspace's value of
    that field (:meth:`CarambaConfig.with_memory`), everything else stays as in
    ``caramba.yml``. So ``defaults.memory: {enabled: true, group: rope_sweep}`` records the
    runs into group ``rope_sweep`` with the workspace's LLM and embedder."""

    llm: LLMConfig = Field(default_factory=LLMConfig,
                           description="the LLM memory extracts facts with (fields as in caramba.yml llm:)")
    falkordb: FalkorDBConfig = Field(default_factory=FalkorDBConfig,
                                     description="the FalkorDB memory writes to (url: external server)")


def _overlay(base: BaseModel, over: BaseModel) -> Any:
    """``base`` with the fields ``over`` was given explicitly (its ``model_fields_set``)."""
    return base.model_copy(update={k: getattr(over, k) for k in over.model_fields_set if k in type(base).model_fields})


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int | None = None
    token: str | None = Field(None, description="bearer token; generated on first HTTP start if absent")


class CarambaConfig(_Section):
    falkordb: FalkorDBConfig = FalkorDBConfig()
    llm: LLMConfig = LLMConfig()
    memory: MemoryConfig = MemoryConfig()
    mcp: ServerConfig = ServerConfig()
    api: ServerConfig = ServerConfig()
    a2a: ServerConfig = ServerConfig()

    def with_memory(self, md: MemoryDefaults | None) -> "CarambaConfig":
        """This configuration with a manifest's ``defaults.memory`` merged over it, per
        field (the manifest wins for every field it sets)."""
        if md is None:
            return self
        return self.model_copy(update={"memory": _overlay(self.memory, md), "llm": _overlay(self.llm, md.llm),
                                       "falkordb": _overlay(self.falkordb, md.falkordb)})


class WorkspaceError(CarambaError):
    """A path or configuration problem in the workspace."""


class Workspace:
    """A workspace root with helpers that keep every path inside it."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        chosen = root or os.environ.get("CARAMBA_WORKSPACE") or os.getcwd()
        self.root = Path(chosen).expanduser().resolve()
        if not self.root.is_dir():
            raise WorkspaceError(f"workspace '{self.root}' is not a directory",
                                 fix="create it, or point CARAMBA_WORKSPACE at an existing folder")

    @property
    def state_dir(self) -> Path:
        """``.caramba/``: tool state (databases, tokens, job records). Created on demand."""
        d = self.root / ".caramba"
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def resolve(self, path: str | os.PathLike[str], *, must_exist: bool = False) -> Path:
        """Resolve ``path`` (relative to the root, or absolute) and refuse anything outside
        the workspace, including through symlinks and ``..``."""
        p = Path(path)
        full = (p if p.is_absolute() else self.root / p).resolve()
        if full != self.root and self.root not in full.parents:
            raise WorkspaceError(f"path '{path}' is outside the workspace {self.root}",
                                 fix="use a path inside the workspace (relative paths are resolved against it)")
        if must_exist and not full.exists():
            raise WorkspaceError(f"path '{path}' does not exist in the workspace {self.root}")
        return full

    def config(self) -> CarambaConfig:
        """Load ``caramba.yml`` (or the embedded defaults when it is absent)."""
        f = self.root / CONFIG_FILE
        if not f.exists():
            return CarambaConfig()
        try:
            raw: Any = yaml.safe_load(f.read_text()) or {}
            return CarambaConfig.model_validate(raw)
        except yaml.YAMLError as e:
            raise WorkspaceError(f"{f}: not valid YAML: {e}") from None
        except ValidationError as e:
            where, first = first_error(e)
            raise WorkspaceError(f"{f}: {where}: {first['msg']}",
                                 fix="see workspace.py (CarambaConfig) for the fields and their meaning") from None

    def save_config(self, cfg: CarambaConfig) -> None:
        """Write ``caramba.yml`` atomically (temp file + rename)."""
        f = self.root / CONFIG_FILE
        tmp = f.with_suffix(".yml.tmp")
        tmp.write_text(yaml.safe_dump(cfg.model_dump(exclude_defaults=True), sort_keys=False))
        os.replace(tmp, f)
