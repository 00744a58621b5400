"""The manifest schema (version 2), as pydantic models.

This is the typed form of ``shared/seeds/manifest-reference.md``::

    version: 2                 # required; this caramba reads version 2
    name: my_experiment        # folder name under runs/ (default: the file's stem)
    notes: ...
    apples_to_apples: false    # every run comparable (also accepted under defaults.runtime)
    vars: {...}                # ${name} substitution, already applied here
    defaults: {data, logging, runtime, memory}
    targets: [experiment | process, ...]
    entrypoints: {default: target_name, quick: target:other}

A :class:`Manifest` is only ever built by :func:`caramba.engine.manifest.load_manifest`,
which runs the whole pipeline first; ``resolved_yaml()`` then gives the manifest after
substitution and lowering (what a run directory stores as ``manifest.yml``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, PrivateAttr, field_validator, model_validator

from caramba.engine.errors import CarambaError, ManifestIssue
from caramba.engine.manifest.schema_base import Float, Int, Fraction, Name, PositiveInt, StrictModel, problem
from caramba.engine.manifest.schema_bench import BenchmarkSpec
from caramba.engine.manifest.schema_train import TrainConfig
from caramba.engine.manifest.schema_verify import VerifySpec
from caramba.engine.manifest.source import SourceMap, YPath, did_you_mean, format_path
from caramba.workspace import MemoryDefaults

SUPPORTED_VERSION = 2


class ComponentSpec(StrictModel):
    """A registered component: ``system.language_model`` or ``{ref, impl, config}``."""

    ref: str = Field(description="registry name, e.g. dataset.tokens, system.language_model")
    impl: str | None = Field(
        None, description="python:package.module:Symbol replacing the registered class; refused unless "
                          "defaults.runtime.allow_python_impl is true")
    config: dict[str, Any] = Field(default_factory=dict, description="the component's own config mapping")

    @model_validator(mode="before")
    @classmethod
    def _bare_ref(cls, value: Any) -> Any:
        return {"ref": value} if isinstance(value, str) else value

    @field_validator("config", mode="before")
    @classmethod
    def _empty_config(cls, value: Any) -> Any:
        return {} if value is None else value


class DataDefaults(StrictModel):
    """Defaults every dataset of the manifest may use."""

    tokenizer: str | dict[str, Any] | None = Field(
        None, description="default tokenizer of text datasets: byte | bpe | tiktoken | gpt2 | tiktoken:<enc> | "
                          "hf:<dir> | llama:<dir> | {type, path, encoding, vocab_size} (engine/data/tokenizer_spec.py)")
    val_frac: Fraction | None = Field(None, description="validation split fraction; None = the dataset's")

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer_form(cls, value: Any) -> Any:
        from caramba.engine.data.tokenizer_spec import spec_problem

        bad = spec_problem(value) if value is not None else None
        if bad is not None:
            raise problem(bad.message, bad.fix)
        return value


class LoggingDefaults(StrictModel):
    """Console and experiment-tracker settings."""

    instrument: Literal["rich", "plain", "none"] = Field("rich", description="console progress style")
    tensorboard: bool = Field(True, description="write TensorBoard event files in the run directory")
    wandb: bool = Field(False, description="log to Weights & Biases (only if installed; never blocks)")
    wandb_project: str | None = Field(None, description="W&B project")
    wandb_entity: str | None = Field(None, description="W&B team or user")
    wandb_mode: Literal["online", "offline", "disabled"] = Field("online", description="W&B mode")
    eval_iters: PositiveInt = Field(20, description="default batches per evaluation for every run")


class RuntimeDefaults(StrictModel):
    """Execution settings for every run of the manifest."""

    save_every: Int = Field(0, ge=0, description="default checkpoint interval; 0 = only at the end")
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|meta|cuda(:\d+)?)$", description="default device")
    allow_python_impl: bool = Field(
        False, description="allow 'python:module:Symbol' implementations (runs code named by the manifest)")
    apples_to_apples: bool | None = Field(
        None, description="fixed seeds, deterministic algorithms, no numerics-changing autotuning")


class Defaults(StrictModel):
    """Manifest-wide defaults: ``data``, ``logging``, ``runtime``, ``memory``."""

    data: DataDefaults = Field(default_factory=DataDefaults, description="dataset defaults")
    logging: LoggingDefaults = Field(default_factory=LoggingDefaults, description="logging defaults")
    runtime: RuntimeDefaults = Field(default_factory=RuntimeDefaults, description="runtime defaults")
    memory: MemoryDefaults = Field(
        default_factory=MemoryDefaults,
        description="research memory for this manifest's runs and processes: the memory fields of caramba.yml "
                    "(enabled, group, embedder, deeplake_path) plus llm and falkordb; each field set here "
                    "overrides caramba.yml's")


class RunSpec(StrictModel):
    """One training run of an experiment target; runs execute in order."""

    id: Name = Field(description="unique within the target; names the checkpoint folder")
    mode: Literal["train"] = Field("train", description="what the run does (train)")
    exp: str | None = Field(None, description="experiment label for loggers")
    seed: Int = Field(1337, description="random seed (python, numpy, torch)")
    steps: PositiveInt = Field(description="optimizer steps")
    expected: dict[str, Any] = Field(default_factory=dict, description="expected values checked after the run")
    verify: VerifySpec | None = Field(None, description="quality gate after the run")
    train: TrainConfig = Field(default_factory=TrainConfig, description="training settings")
    checkpoint: str | None = Field(
        None, description="start from these weights: a checkpoint path, or 'target/run' of an earlier target")


class ExperimentTarget(StrictModel):
    """Data + system + objective + trainer, trained by its runs, then benchmarked."""

    type: Literal["experiment"]
    name: Name = Field(description="unique target name (runs/<manifest>/<name>/)")
    description: str = Field("", description="human-readable description")
    backend: Literal["torch"] = Field("torch", description="execution backend")
    task: ComponentSpec = Field(description="task.language_modeling, task.classification, ...")
    data: ComponentSpec = Field(description="dataset.tokens, dataset.text, dataset.sklearn, ...")
    system: ComponentSpec = Field(description="system.language_model, system.mlp_classifier, ...")
    objective: ComponentSpec = Field(description="objective.next_token_ce, objective.classification_ce, ...")
    trainer: ComponentSpec = Field(description="trainer.standard, trainer.upcycle, ...")
    runs: list[RunSpec] = Field(min_length=1, description="runs, executed in order")
    benchmarks: list[BenchmarkSpec] = Field(default_factory=list, description="measurements after the runs")


class ProcessTarget(StrictModel):
    """An agent workflow; the agents package owns ``process``'s contents."""

    type: Literal["process"]
    name: Name = Field(description="unique target name")
    description: str = Field("", description="human-readable description")
    team: dict[str, str] = Field(default_factory=dict, description="role → persona")
    process: dict[str, Any] = Field(description="the process definition (type, roles, outputs)")


Target = Annotated[ExperimentTarget | ProcessTarget, Field(discriminator="type")]


class Manifest(StrictModel):
    """A validated manifest. Build it with ``load_manifest``."""

    version: Int = Field(description="schema version; must be 2")
    name: Name = Field(description="experiment name: runs/<name>/")
    notes: str = Field("", description="what this experiment is about")
    apples_to_apples: bool | None = Field(None, description="make every run comparable (see defaults.runtime)")
    vars: dict[str, Any] = Field(default_factory=dict, description="variables (already substituted)")
    defaults: Defaults = Field(default_factory=Defaults, description="data/logging/runtime defaults")
    targets: list[Target] = Field(min_length=1, description="experiment and process targets")
    entrypoints: dict[str, str] = Field(default_factory=dict, description="name → target or 'target:NAME'")

    _source_file: str | None = PrivateAttr(None)
    _resolved: dict[str, Any] = PrivateAttr(default_factory=dict)
    _source_map: SourceMap = PrivateAttr(default_factory=SourceMap)

    @field_validator("version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != SUPPORTED_VERSION:
            raise problem(f"unsupported manifest version {v}",
                          f"this caramba reads version {SUPPORTED_VERSION} manifests: set 'version: 2' "
                          "and follow the manifest reference")
        return v

    @model_validator(mode="after")
    def _inherit_defaults(self) -> Manifest:
        runtime, top = self.defaults.runtime, self.apples_to_apples
        if top is not None and runtime.apples_to_apples is not None and top != runtime.apples_to_apples:
            raise problem("apples_to_apples is set both at the top level and in defaults.runtime, differently",
                          "keep one of the two")
        runtime.apples_to_apples = bool(top if top is not None else runtime.apples_to_apples)
        self.apples_to_apples = runtime.apples_to_apples
        inherited = {"device": runtime.device, "save_every": runtime.save_every,
                     "eval_iters": self.defaults.logging.eval_iters}
        for target in self.targets:
            if isinstance(target, ExperimentTarget):
                for run in target.runs:
                    for key, value in inherited.items():
                        if key not in run.train.model_fields_set:
                            setattr(run.train, key, value)
        return self

    @property
    def source_file(self) -> str | None:
        """The manifest file (or the name given with ``text=``)."""
        return self._source_file

    def resolved_yaml(self) -> str:
        """The manifest after ``${vars}``, includes, overrides and lowering, as YAML."""
        from caramba.engine.manifest.variables import escape_literals

        return yaml.safe_dump(escape_literals(self._resolved), sort_keys=False, allow_unicode=True)

    def issue(self, path: YPath, message: str, *, expected: str | None = None, found: str | None = None,
              fix: str | None = None) -> ManifestIssue:
        """A :class:`ManifestIssue` located at ``path`` of this manifest (file, line, source path).

        For problems found after loading, e.g. a runner raising ``NotImplementedYet`` for
        ``("targets", 0, "runs", 0, "train", "peft")`` can say where that was written.
        """
        origin, source_path = self._source_map.locate(tuple(path))
        return ManifestIssue(message=message, file=origin.file if origin else self._source_file,
                             line=origin.line if origin else None, column=origin.column if origin else None,
                             path=format_path(source_path), expected=expected, found=found, fix=fix)

    def target_names(self) -> list[str]:
        return [t.name for t in self.targets]

    def target(self, name: str | None = None) -> ExperimentTarget | ProcessTarget:
        """A target by name or entrypoint; ``None`` = ``entrypoints.default``, else the first."""
        if name is None:
            name = self.entrypoints.get("default")
            if name is None:
                return self.targets[0]
        by_name = {t.name: t for t in self.targets}
        if name in by_name:
            return by_name[name]
        if name in self.entrypoints:
            return by_name[entrypoint_target(self.entrypoints[name])]
        if name.startswith("target:") and name[7:] in by_name:
            return by_name[name[7:]]
        choices = sorted(by_name) + sorted(k for k in self.entrypoints if k not in by_name)
        close = did_you_mean(name, choices)
        raise CarambaError(f"no target or entrypoint '{name}' in manifest '{self.name}'",
                           fix=(f"did you mean '{close}'? " if close else "") + f"choose one of: {', '.join(choices)}")


def entrypoint_target(value: str) -> str:
    """``target:NAME`` or ``NAME`` → ``NAME``."""
    return value[len("target:"):] if value.startswith("target:") else value
