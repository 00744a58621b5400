"""Turn the ``llm:`` section of ``caramba.yml`` into call arguments for LiteLLM.

Every part of caramba that talks to a language model (Graphiti memory, the agents)
starts here, so that "which model, which endpoint, which key" is decided in one place::

    from caramba.llm import resolve_llm
    settings = resolve_llm(workspace.config().llm)     # raises LLMNotConfigured if none
    await litellm.acompletion(messages=..., **settings.completion_kwargs())

Rules:

* ``llm.model`` is a LiteLLM model string: ``openai/gpt-4o-mini``,
  ``anthropic/claude-sonnet-4-5``, ``gemini/gemini-2.5-flash``, ``ollama/llama3.1``, or
  ``openai/<served-name>`` together with ``llm.api_base`` for any OpenAI-compatible
  server (vLLM, llama.cpp, LM Studio, a LiteLLM proxy). The env var
  ``CARAMBA_LLM_MODEL`` (and ``CARAMBA_LLM_API_BASE``) override the file, which is
  handy for one-off runs.
* API keys come from the provider's usual environment variable (``OPENAI_API_KEY``,
  ``ANTHROPIC_API_KEY``, ``GEMINI_API_KEY``/``GOOGLE_API_KEY``, …), or from the variable
  named by ``llm.api_key_env``. A missing key is reported before any request is made.
* A local OpenAI-compatible server usually needs no key; with ``api_base`` set and no
  key found, the placeholder ``"no-key"`` is sent (the OpenAI client refuses an empty
  key, local servers ignore it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from caramba.engine.errors import CarambaError
from caramba.workspace import LLMConfig

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

#: providers that never need an API key (they run locally or on a given api_base).
_KEYLESS_PROVIDERS = frozenset({"ollama", "ollama_chat", "hosted_vllm", "lm_studio", "llamafile"})

HOW_TO_CONFIGURE = (
    "set `llm.model` in caramba.yml (e.g. `llm: {model: openai/gpt-4o-mini}`, or "
    "`llm: {model: openai/<name>, api_base: http://127.0.0.1:8000/v1}` for a local "
    "OpenAI-compatible server), or export CARAMBA_LLM_MODEL; put the provider's API key "
    "in its usual environment variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, …)"
)


class LLMNotConfigured(CarambaError):
    """An operation needs a language model and none is configured."""


class LLMError(CarambaError):
    """The configured language model could not be used (bad key, unreachable server…)."""


@dataclass(frozen=True)
class LLMSettings:
    """A resolved model: what LiteLLM needs to make a call."""

    model: str
    provider: str
    api_base: str | None
    api_key: str | None
    temperature: float

    def completion_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``litellm.acompletion`` / ``litellm.aembedding``."""
        kw: dict[str, Any] = {"model": self.model}
        if self.api_base:
            kw["api_base"] = self.api_base
        if self.api_key:
            kw["api_key"] = self.api_key
        return kw

    def describe(self) -> str:
        return f"{self.model}" + (f" at {self.api_base}" if self.api_base else "")


def _provider_of(model: str, api_base: str | None) -> str:
    import litellm

    try:
        return str(litellm.get_llm_provider(model, api_base=api_base)[1])
    except Exception as e:  # litellm raises its own BadRequestError for unknown prefixes
        raise LLMError(
            f"LiteLLM does not recognise the model string '{model}' ({type(e).__name__})",
            fix="prefix the model with its provider: openai/…, anthropic/…, gemini/…, ollama/…; "
                "for an OpenAI-compatible server use openai/<name> with llm.api_base",
        ) from None


def resolve_model(model: str, *, api_base: str | None = None, api_key_env: str | None = None,
                  temperature: float = 0.2, what: str = "llm.model") -> LLMSettings:
    """Resolve one LiteLLM model string (chat or embedding) into :class:`LLMSettings`.

    ``what`` names the setting in error messages (``llm.model``, ``memory.embedder``).
    Every client built from these settings reports LiteLLM failures as a caramba error with
    the cause, so LiteLLM's own "Give Feedback / Get Help" banner (printed on stdout, where
    it broke ``--json`` output) is switched off here."""
    import litellm

    litellm.suppress_debug_info = True

    provider = _provider_of(model, api_base)
    key: str | None = None
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise LLMError(f"{what} = '{model}': the environment variable {api_key_env} "
                           "(named by llm.api_key_env) is not set",
                           fix=f"export {api_key_env}=<your key>, or remove llm.api_key_env "
                               "to use the provider's usual variable")
    elif provider not in _KEYLESS_PROVIDERS:
        check = litellm.validate_environment(model, api_base=api_base)
        missing = [k for k in check.get("missing_keys", []) if k.endswith("_KEY")]
        if missing and not check.get("keys_in_environment"):
            if api_base:
                key = "no-key"
            else:
                raise LLMError(f"{what} = '{model}' needs an API key and none is set "
                               f"(looked for {' or '.join(missing)})",
                               fix=f"export {missing[-1]}=<your key>, or set llm.api_key_env to "
                                   "the variable that holds it, or point llm.api_base at a "
                                   "local OpenAI-compatible server")
    return LLMSettings(model=model, provider=provider, api_base=api_base, api_key=key,
                       temperature=temperature)


def resolve_llm(cfg: LLMConfig | None) -> LLMSettings:
    """The chat model configured for this workspace; raises :class:`LLMNotConfigured`
    (with the exact way to configure one) when there is none."""
    cfg = cfg or LLMConfig()
    model = os.environ.get("CARAMBA_LLM_MODEL") or cfg.model
    api_base = os.environ.get("CARAMBA_LLM_API_BASE") or cfg.api_base
    if not model:
        raise LLMNotConfigured("this operation needs a language model and none is configured",
                               fix=HOW_TO_CONFIGURE)
    return resolve_model(model, api_base=api_base, api_key_env=cfg.api_key_env,
                         temperature=cfg.temperature)


def llm_configured(cfg: LLMConfig | None) -> bool:
    """True when a chat model is configured (it may still fail to resolve)."""
    return bool(os.environ.get("CARAMBA_LLM_MODEL") or (cfg and cfg.model))
