"""Closed registries: names in a manifest map to classes here, never to import paths.

Every component family (layers, topologies, models, datasets, …) owns one
:class:`Registry`. Adding a component is one decorated class in one file::

    @LAYERS.register("RMSNormLayer", aliases=("rms_norm",))
    class RMSNormLayer(nn.Module): ...

The registry is the single source for validation, building and ``caramba layers``.
A failed lookup lists what exists and suggests the closest name.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from caramba.engine.errors import CarambaError

T = TypeVar("T")


class UnknownComponent(CarambaError):
    """A name that no registry entry carries."""

    def __init__(self, family: str, name: str, known: list[str]) -> None:
        self.family, self.name, self.known = family, name, known
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        fix = f"did you mean '{close[0]}'?" if close else f"use one of: {', '.join(sorted(known))}"
        super().__init__(f"unknown {family} '{name}'", fix=fix)

    @property
    def suggestion(self) -> str | None:
        close = difflib.get_close_matches(self.name, self.known, n=1, cutoff=0.6)
        return close[0] if close else None


class Registry(Generic[T]):
    """Maps canonical names (and aliases) to registered objects of one family.

    ``modules`` lists the modules whose import registers the family's members; they are
    imported on first lookup so that registration stays declarative and import of the
    registry itself stays cheap.
    """

    def __init__(self, family: str, modules: tuple[str, ...] = ()) -> None:
        self.family = family
        self._modules = modules
        self._loaded = False
        self._loading = False
        self._load_lock = threading.RLock()  # servers look components up from worker threads
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise RuntimeError(f"{self.family} '{name}' registered twice")
            self._items[name] = obj
            for alias in aliases:
                self._aliases[alias] = name
            return obj
        return deco

    def _load(self) -> None:
        """Import the registering modules once. Thread-safe: other threads wait until the
        family is complete (never see it half-filled); a lookup made *during* the imports by
        the importing thread itself returns at once."""
        if self._loaded:
            return
        with self._load_lock:
            if self._loaded or self._loading:
                return
            self._loading = True
            try:
                for mod in self._modules:
                    importlib.import_module(mod)
                self._loaded = True
            finally:
                self._loading = False

    def canonical(self, name: str) -> str:
        """The canonical name for ``name`` (which may be an alias); raises if unknown."""
        self._load()
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        raise UnknownComponent(self.family, name, self.names())

    def get(self, name: str) -> T:
        return self._items[self.canonical(name)]

    def __contains__(self, name: object) -> bool:
        self._load()
        return isinstance(name, str) and (name in self._items or name in self._aliases)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def aliases(self) -> dict[str, str]:
        self._load()
        return dict(self._aliases)

    def items(self) -> Iterator[tuple[str, T]]:
        self._load()
        return iter(sorted(self._items.items()))
