"""caramba: manifest-driven neural-architecture research.

The repository root *is* this package (``pyproject.toml`` maps ``caramba`` to ``.``).
Importing ``caramba`` is deliberately cheap: heavy libraries (torch, falkordb, litellm,
google-adk) load only in the subpackages that need them.
"""

__version__ = "0.1.0"
