"""Building blocks shared by the manifest schema modules.

* :class:`StrictModel` — every manifest section rejects unknown keys (``extra="forbid"``);
  the pipeline turns that into "unknown field 'lrr' — did you mean 'lr'?".
* Numbers: YAML 1.1 reads ``1e-5`` as a *string*. Schema fields typed ``float``/``int``
  use pydantic's lax mode, which accepts numeric strings, so ``lr: 1e-5`` works.
* :data:`Name` — names that become folder names (manifest, target, run id).
* :func:`problem` — raise from a validator with a message *and* a fix; the error
  translator shows both.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

#: error type used by :func:`problem`; the translator reads ``ctx["fix"]``.
PROBLEM = "caramba_problem"


class StrictModel(BaseModel):
    """Base of every manifest section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _not_bool(value: Any) -> Any:
    # pydantic's lax mode reads True as 1; in YAML 'steps: yes' is surely a mistake
    if isinstance(value, bool):
        raise problem(f"expected a number, found the boolean {str(value).lower()}",
                      "write a number (YAML reads yes/no/on/off/true/false as booleans)")
    return value


#: numbers that refuse booleans (YAML's ``yes``/``on``) but accept numeric strings.
Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]

Name = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128,
          description="letters, digits, '_', '-', '.'; used as a folder name"),
]

PositiveInt = Annotated[Int, Field(ge=1)]
NonNegInt = Annotated[Int, Field(ge=0)]
Fraction = Annotated[Float, Field(ge=0.0, le=1.0)]


def problem(message: str, fix: str, **extra: Any) -> PydanticCustomError:
    """An error for a validator to raise: ``raise problem("...", "do this")``."""
    return PydanticCustomError(PROBLEM, "{message}", {"message": message, "fix": fix, **extra})
